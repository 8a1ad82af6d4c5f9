"""What the figures were measured on."""

import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version


def cpu():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        model = found.group(1).strip() if found else model
        found = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        flags = set(found.group(1).split()) if found else flags
    except OSError:
        pass
    vector = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {"model": model, "vector_extensions": vector, "logical_cores": os.cpu_count()}


def versions():
    found = {"python": platform.python_version()}
    for name in ("fastbp", "numpy", "numba", "scipy", "scikit-learn", "torch", "jax"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return None
