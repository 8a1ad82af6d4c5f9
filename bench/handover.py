"""Watch the host: ``python -m bench.handover [seconds]``.

Every few seconds, in one process on all threads: the µs of an empty Numba
parallel region (a hand-over between cores), a serial loop's time (one
core's speed) and fastbp's epoch on digits float32 (a fit of 10 over 10).
On the 2-core host of bench/results the first and the last doubled, and
rose by half, together, for minutes at a time, while the serial time stayed
put: the host had moved the two cores apart. Run it beside a bench run that
looks off.
"""

import argparse
import time

import numpy as np
from numba import njit

from .diagnostics import _best_fit_time
from .machine import parallel_region_us
from .workloads import REFERENCE, load


@njit(nogil=True)
def _serial(values, sweeps):
    total = 0.0
    for _ in range(sweeps):
        for v in values:
            total += v * 1.0000001
    return total


def watch(seconds):
    import numba

    from fastbp import MLPClassifier

    threads = numba.config.NUMBA_NUM_THREADS
    X, y = load(REFERENCE[0].data, np.dtype("float32"))
    model = MLPClassifier(REFERENCE[0].hidden, max_iter=10, n_iter_no_change=11, random_state=0)
    values = np.ones(4096)
    started = time.time()
    while time.time() - started < seconds:
        serial = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            _serial(values, 200)
            serial = min(serial, time.perf_counter() - start)
        print(f"t={time.time() - started:5.0f} s  parallel region {parallel_region_us(threads):.2f} µs "
              f"({threads} threads)  serial {1e3 * serial:.3f} ms  "
              f"digits float32 epoch {1e2 * _best_fit_time(model, X, y, 100):.3f} ms", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.handover", description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=60.0, help="how long to watch (default 60)")
    watch(parser.parse_args().seconds)
