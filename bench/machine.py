"""What the figures were measured on."""

import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from numba import njit, prange


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


@njit(parallel=True, nogil=True)
def _region(a, n):
    for i in prange(n):
        a[i * 16] += 1.0  # one cache line per thread


@njit(nogil=True)
def _launches(a, n, count):
    for _ in range(count):
        _region(a, n)


def parallel_region_us(threads, calls=20000):
    """Microseconds per empty Numba parallel region on `threads` threads, launched
    from compiled code: the cost of one hand-over between cores. It doubled on this
    host at times (about 0.9 → 2 µs with 2 threads) while serial speed stayed put:
    the cores then sat farther apart, and every cache line one thread wrote and the
    other read took longer too (see README, Speed)."""
    a = np.zeros(16 * threads)
    _launches(a, threads, 10)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        _launches(a, threads, calls)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6
