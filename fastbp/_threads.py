"""How many threads a fit uses, and when compiled code must run serially.

The rule for ``n_threads=None``, in order:

1. NUMBA_NUM_THREADS when set in the environment (joblib's loky sets it in
   its workers, to the cores divided among them);
2. inside a Dask worker or a Ray task, the thread budget the cluster gives
   each task: its OMP_NUM_THREADS (both set 1), since Numba ignores that
   variable;
3. 1 when the fit runs off the main thread (joblib's threading backend, a
   ThreadPoolExecutor): the other threads are busy fitting too;
4. else every core Numba sees.

An explicit ``n_threads`` wins over all of these (capped at Numba's count).

Serial execution: with one thread, and in a child forked from a process that
already ran fastbp's parallel kernels, the kernels take their serial path,
which never enters the threading layer. GNU OpenMP, the layer Numba picks on
Linux, kills or hangs a forked child that launches a parallel region after
its parent did; one thread also needs no launch at all. The workqueue layer
aborts the process when two threads launch parallel regions at once, so
launches are serialized by a lock under it.

BLAS's thread count is one setting for the whole process, unlike Numba's,
which is per thread: ``thread_limits`` changes it only where a fit calls BLAS,
and restores the process's own setting when the last fit that changed it
ends, whatever the order in which concurrent fits end.
"""

import os
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache

import numba
from threadpoolctl import ThreadpoolController

_state = {"parallel_used": False, "forked_child": False}
_launch_lock = threading.Lock()


def _after_fork_in_child():
    if _state["parallel_used"]:
        _state["forked_child"] = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _in_dask_worker():
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _in_ray_task():
    ray = sys.modules.get("ray")
    return bool(ray and ray.is_initialized() and ray.get_runtime_context().get_task_id() is not None)


def _cluster_task_budget():
    """Inside a Dask worker or a Ray task, the threads the cluster gives a task:
    its OMP_NUM_THREADS (both set 1), since Numba ignores that variable."""
    if _in_dask_worker() or _in_ray_task():
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    return None


def default_threads():
    """The thread count of ``n_threads=None`` (see the module docstring)."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return numba.config.NUMBA_NUM_THREADS
    budget = _cluster_task_budget()
    if budget is not None:
        return min(budget, numba.config.NUMBA_NUM_THREADS)
    if threading.current_thread() is not threading.main_thread():
        return 1
    return numba.config.NUMBA_NUM_THREADS


def effective_threads(n_threads):
    if n_threads is None:
        return default_threads()
    return min(int(n_threads), numba.config.NUMBA_NUM_THREADS)


def serial():
    """Whether compiled code must run without Numba's thread pool now."""
    return _state["forked_child"] or numba.get_num_threads() == 1


def kernel_threads():
    """The thread count the compiled kernels split their work over now; 1
    sends them down their serial path."""
    return 1 if serial() else numba.get_num_threads()


@contextmanager
def parallel_launches():
    """Around compiled calls: record that the thread pool was used, and under
    the workqueue layer let one thread at a time launch parallel regions."""
    if serial():
        yield
        return
    _state["parallel_used"] = True
    layer = numba.config.THREADING_LAYER
    if layer == "workqueue" or _loaded_layer() == "workqueue":
        with _launch_lock:
            yield
    else:
        yield


def _loaded_layer():
    try:
        return numba.threading_layer()
    except ValueError:
        return None


@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, scanned once: a scan
    reads the process's memory map and costs milliseconds."""
    return ThreadpoolController()


# The limits asked for by the fits now running, and the limiter that holds the
# process's own settings, kept while any of them runs.
_blas = {"lock": threading.Lock(), "limits": Counter(), "original": None}


@contextmanager
def _blas_limit(limit):
    """BLAS on at most `limit` threads (the least any running fit asked for)
    while the body runs; the process's own setting back once no fit asks."""
    with _blas["lock"]:
        _blas["limits"][limit] += 1
        if _blas["original"] is None:
            _blas["original"] = _blas_controller().limit(limits=limit, user_api="blas")
        else:
            _blas_controller().limit(limits=min(_blas["limits"]), user_api="blas")
    try:
        yield
    finally:
        with _blas["lock"]:
            _blas["limits"][limit] -= 1
            if _blas["limits"][limit] == 0:
                del _blas["limits"][limit]
            if _blas["limits"]:
                _blas_controller().limit(limits=min(_blas["limits"]), user_api="blas")
            else:
                _blas["original"].restore_original_limits()
                _blas["original"] = None


@contextmanager
def thread_limits(backend, n_threads, blas_between_calls=False):
    """Run the body on n_threads threads (None: the rule above); yields the
    count the computation runs on.

    The loop backend computes on Numba's threads (a count local to the calling
    thread); it calls no BLAS, except where scipy's L-BFGS-B runs between its
    loss evaluations (blas_between_calls), which then gets one BLAS thread: two
    thread pools taking turns on the same cores wake and spin against each
    other, measured at milliseconds per L-BFGS evaluation. The vectorized
    backend computes on BLAS's threads, and its elementwise kernels get one
    Numba thread.
    """
    previous = numba.get_num_threads()
    threads = effective_threads(n_threads)
    vectorized = backend == "vectorized"
    numba.set_num_threads(1 if vectorized else threads)
    try:
        if vectorized or blas_between_calls:
            with _blas_limit(threads if vectorized else 1):
                yield threads
        else:
            # A forked child runs the serial kernels whatever the count.
            yield kernel_threads()
    finally:
        numba.set_num_threads(previous)
