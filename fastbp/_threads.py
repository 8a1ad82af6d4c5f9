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
"""

import os
import sys
import threading
from contextlib import contextmanager

import numba

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
