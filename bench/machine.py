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
    # A virtual machine's model name can hide the generation ("AMD EPYC"); the
    # CPU LLVM compiles the kernels for does not.
    from llvmlite import binding

    return {"model": model, "llvm_cpu": binding.get_host_cpu_name(), "vector_extensions": vector,
            "logical_cores": os.cpu_count()}


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
