"""How many threads a fit uses, and when compiled code must run serially.

The rule for ``n_threads=None``, in order:

1. NUMBA_NUM_THREADS when set in the environment (joblib's loky sets it in
   its workers, to the cores divided among them);
2. inside a Dask worker or a Ray task, the thread budget the cluster gives
   each task: its OMP_NUM_THREADS (both set 1), since Numba ignores that
   variable;
3. 1 when the fit runs off the main thread (joblib's threading backend, a
   ThreadPoolExecutor): the other threads are busy fitting too;
4. else every core Numba sees;

then capped, in a call not made inside another of fastbp's, by a lower limit
the caller set: ``numba.set_num_threads`` in the calling thread for the loop
backend, and BLAS's count (threadpoolctl's ``threadpool_limits``, or
OPENBLAS_NUM_THREADS and OMP_NUM_THREADS at BLAS's start) for the vectorized
one. An explicit ``n_threads`` wins over all of these (capped at Numba's count).

Serial execution: with one thread, and in a child forked from a process that
already ran fastbp's parallel kernels, the kernels take their serial path,
which never enters the threading layer. GNU OpenMP, the layer Numba picks on
Linux, kills or hangs a forked child that launches a parallel region after
its parent did; one thread also needs no launch at all. The workqueue layer
aborts the process when two threads launch parallel regions at once, so
launches are serialized by a lock under it.

BLAS's thread count is one setting for the whole process, unlike Numba's,
which is per thread: ``thread_limits`` changes it only where a fit calls BLAS
and only from the main thread, and restores it when the fit ends.
"""

import os
import sys
import threading
import time
from collections import Counter, OrderedDict
from contextlib import contextmanager
from functools import lru_cache

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

_state = {"parallel_used": False, "forked_child": False}
_launch_lock = threading.Lock()


def _after_fork_in_child():
    global _launch_lock, _epoch_times_lock
    if _state["parallel_used"]:
        _state["forked_child"] = True
    # A lock another thread of the parent held at the fork stays held in the child, where that thread is gone.
    _launch_lock, _epoch_times_lock = threading.Lock(), threading.Lock()


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


def _blas_threads():
    """The most threads a loaded BLAS library is set to use now (a large number when none is loaded)."""
    return max((info["num_threads"] for info in _blas_controller().select(user_api="blas").info()),
               default=1 << 30)


@contextmanager
def _blas_limit(limit):
    """BLAS on at most `limit` threads while the body runs, then the setting
    it had before.

    Only from the main thread, where fits nest (a callback's fit inside a fit)
    and so restore in the reverse order they set: OpenBLAS's setting, changed
    from several threads while they ran BLAS calls, was measured to stick at
    the limit after every fit had restored it (6 of 6 trials with three
    threads). Off the main thread the rule gives a fit one thread anyway, and
    BLAS is left as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _blas_controller().limit(limits=limit, user_api="blas"):
        yield


# How many thread_limits calls this thread is inside.
_nesting = threading.local()


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
    depth = getattr(_nesting, "depth", 0)
    if n_threads is None and depth == 0:
        # A lower limit the caller set stands: numba.set_num_threads in this thread for Numba's
        # threads, BLAS's own count for BLAS's (scikit-learn's MLP, all BLAS, keeps to it). Inside
        # a fit these are the fit's choice for its epoch, no guide to a predict it makes.
        threads = min(threads, _blas_threads() if vectorized else previous)
    numba.set_num_threads(1 if vectorized else threads)
    _nesting.depth = depth + 1
    try:
        if vectorized or blas_between_calls:
            with _blas_limit(threads if vectorized else 1):
                yield threads
        else:
            # A forked child runs the serial kernels whatever the count.
            yield kernel_threads()
    finally:
        _nesting.depth = depth
        numba.set_num_threads(previous)


# A thread count that is not the best is timed again once the epochs run on
# others since its last timing add up to this many times what it last cost:
# at most 1/50 of a fit goes to re-checking a count that has become slow.
_PROBE_RATIO = 50

# Per-row epoch times by thread count (the lesser of the last two, the last),
# shared by the fits of one shape (network,
# batch, dtype, input kind, thread ceiling), so that the folds of a
# cross-validation or a stream of partial_fit calls start from what the last one
# learned. Bounded: the oldest shape is forgotten first.
_epoch_times = OrderedDict()
_epoch_times_lock = threading.Lock()
_EPOCH_TIME_SHAPES = 64


def _renewed(table, key, make, limit):
    """table[key], made by make() when absent, as the table's newest entry,
    the oldest dropped past `limit` entries; the caller holds _epoch_times_lock."""
    value = table.pop(key, None)
    table[key] = make() if value is None else value
    while len(table) > limit:
        table.popitem(last=False)
    return table[key]


# A count with fewer threads is preferred only when it is this much faster per
# row: on an idle machine where more threads gain little, noise alone made a
# fit alternate, and each switch to fewer threads lasted until the re-check.
_MARGIN = 1.1


def _fastest(per_row):
    """The count to run on, from per_row (count → (seconds per row, latest)):
    the most threads whose time is within _MARGIN of the least."""
    # A copy: another thread's predict or fit of the same shape may record a
    # time meanwhile, and between the two passes below no count would qualify.
    per_row = dict(per_row)
    least = min(time for time, _ in per_row.values())
    return max(count for count, (time, _) in per_row.items() if time <= least * _MARGIN)


# A forward pass of fewer multiply-adds than this (predict on a few rows) runs
# on the calling thread when the count is left to fastbp: it takes about as
# long as waking the thread pool, and on a busy machine far less than waiting
# for a descheduled thread at the region's barrier.
_SERIAL_FORWARD_WORK = 1 << 20


# Forward passes choose their thread count from their own timings, kept per
# (ceiling, widths, dtype, input kind, chunk size to a power of two): at most
# this many, the oldest forgotten first. A fit's choice is no guide: on an
# idle 2-core host a digits fit ran fastest on one thread, its 200-row
# minibatches bound by the regions' hand-over, while predict_proba on its
# 1797 rows, one region, took 834 µs on one thread and 455 on two. Nor is a
# small predict's for a large one: the threads' wake-up weighs on its time
# per row far more.
_forward_governors = OrderedDict()
_FORWARD_SHAPES = 64


@contextmanager
def forward_threads(n_threads, units, dtype, sparse, n_rows, chunk_rows, block):
    """The thread count of a forward pass over n_rows rows (predict) of a
    dense or sparse input, taken chunk_rows at a time and shared among
    threads by blocks of `block` rows: an explicit n_threads as given; else
    1 for a small chunk, and for a larger one the count a ThreadGovernor of
    its own picks from the passes of this network, dtype, input kind and size
    timed before (on a busy machine, fewer threads once they are clearly
    faster), never more than the chunk has blocks: a thread beyond them has
    no row to take (one row of a 16384-input model, one block, launched two
    threads and was timed, 40 of its 375 µs)."""
    work = chunk_rows * sum(int(units[i]) * int(units[i + 1]) for i in range(len(units) - 1))
    blocks = -(-chunk_rows // block)
    if n_threads is None and (work < _SERIAL_FORWARD_WORK or blocks == 1):
        yield 1
        return
    with thread_limits("loop", n_threads) as threads:
        if n_threads is not None or threads == 1:
            yield threads
            return
        ceiling = min(threads, blocks)
        key = (ceiling, np.asarray(units, dtype=np.int64).tobytes(), np.dtype(dtype).char, bool(sparse),
               int(chunk_rows).bit_length())
        with _epoch_times_lock:
            governor = _renewed(_forward_governors, key, lambda: ThreadGovernor(ceiling, True, None), _FORWARD_SHAPES)
        with governor.timed(n_rows) as chosen:
            yield chosen


class ThreadGovernor:
    """The thread count of each epoch of a loop-backend fit (or of each
    predict on many rows: see forward_threads).

    With ``n_threads=None`` the counts tried are the rule's count T, T/2, T/4,
    …, 1. Each epoch is timed; the next runs on the count with the least time
    per row (the lesser of its last two timings, so that one slow epoch is not
    taken for a busy machine; more threads where within 10%), except that a count next to it is timed when it has never been,
    or when the time spent on other counts since it was last timed reaches
    ``_PROBE_RATIO`` times what an epoch on it last cost. On an idle machine
    that settles on T and re-times T/2 now and then; when other work takes
    cores, the parallel regions' barriers wait on descheduled threads and
    fewer threads win, and T is tried again as the time passes. The loop
    backend's results are bitwise the same for any count, so the choice
    never changes the model. An explicit n_threads, or a ceiling of 1, is
    used for every epoch.

    Parameters
    ----------
    ceiling : int
        The most threads an epoch may use (``thread_limits``' count).
    adaptive : bool
        Whether to choose per epoch (n_threads=None) or always use ceiling.
    shape : tuple or None
        What the per-row times are shared by (see ``_epoch_times``); None
        keeps them to this governor (predict's, kept in _forward_governors).
    """

    def __init__(self, ceiling, adaptive, shape):
        self.counts = [ceiling]
        while adaptive and self.counts[-1] > 1:
            self.counts.append(self.counts[-1] // 2)
        self.per_row = {}
        if len(self.counts) > 1 and shape is not None:
            key = (ceiling, *shape)
            with _epoch_times_lock:
                self.per_row = _renewed(_epoch_times, key, dict, _EPOCH_TIME_SHAPES)
        self.untimed_shape = len(self.counts) > 1 and not self.per_row
        self.waited = dict.fromkeys(self.counts, 0.0)
        self.used = Counter()

    @contextmanager
    def timed(self, rows):
        """Run the body (an epoch, an evaluation or a forward pass of `rows`
        rows) on the count ``choose`` picks, given to it, and record how long
        it took."""
        threads = self.choose(rows)
        numba.set_num_threads(threads)
        # Not timed: the process's first parallel call, which also starts the thread pool,
        # and the first call of a shape no fit has timed, which also loads its compiled code
        # for the dtype. Timed, either made every later fit of the shape settle on one thread.
        warm = (threads == 1 or _state["parallel_used"]) and not self.untimed_shape
        self.untimed_shape = False
        started = time.perf_counter()
        yield threads
        if warm:
            self.record(threads, time.perf_counter() - started, rows)
        else:
            self.used[threads] += 1

    def choose(self, rows):
        """The thread count for an epoch of `rows` rows."""
        if not self.per_row:
            return self.counts[0]
        best = _fastest(self.per_row)
        i = self.counts.index(best)
        for neighbour in self.counts[max(i - 1, 0) : i + 2]:
            if neighbour not in self.per_row:
                return neighbour
            if self.waited[neighbour] >= _PROBE_RATIO * self.per_row[neighbour][0] * rows:
                return neighbour
        return best

    def record(self, threads, seconds, rows):
        """An epoch of `rows` rows took `seconds` on `threads` threads."""
        if len(self.counts) > 1:
            latest = seconds / max(rows, 1)
            previous = self.per_row.get(threads, (latest, latest))[1]
            self.per_row[threads] = (min(latest, previous), latest)
            for count in self.counts:
                self.waited[count] = 0.0 if count == threads else self.waited[count] + seconds
        self.used[threads] += 1

    def most_used(self):
        """The count most epochs ran on (the larger on a tie), for n_threads_."""
        if not self.used:
            return self.counts[0]
        return max(self.used, key=lambda count: (self.used[count], count))
