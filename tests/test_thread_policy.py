"""The thread policy of n_threads=None (fastbp._threads.ThreadGovernor): its
decisions on given epoch times, what n_threads_ reports, and that the model is
bitwise the same whatever it decides. Times here are made up, never measured:
the busy-machine figures are in bench/ (python -m bench.busy)."""

import contextlib
import itertools

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits

from fastbp import MLPClassifier, _threads
from fastbp._threads import _PROBE_RATIO, ThreadGovernor

X, y = load_digits(return_X_y=True)
X = X[:400] / 16.0
y = y[:400]


@pytest.fixture(autouse=True)
def _fresh_epoch_times():
    _threads._epoch_times.clear()
    yield
    _threads._epoch_times.clear()


def _run(governor, per_row, epochs, rows=100):
    """The counts the governor picks for `epochs` epochs whose time per row on
    c threads is per_row[c] (a function of the epoch number)."""
    picked = []
    for epoch in range(epochs):
        threads = governor.choose(rows)
        picked.append(threads)
        governor.record(threads, per_row(epoch)[threads] * rows, rows)
    return picked


def test_an_explicit_count_is_used_for_every_epoch():
    governor = ThreadGovernor(4, adaptive=False, shape=("a",))
    assert _run(governor, lambda e: {4: 9.0}, 10) == [4] * 10
    assert governor.most_used() == 4


def test_counts_tried_halve_from_the_ceiling_to_one():
    assert ThreadGovernor(16, adaptive=True, shape=("a",)).counts == [16, 8, 4, 2, 1]
    assert ThreadGovernor(6, adaptive=True, shape=("b",)).counts == [6, 3, 1]
    assert ThreadGovernor(1, adaptive=True, shape=("c",)).counts == [1]


def test_idle_machine_settles_on_every_core_and_rechecks_half_rarely():
    # Two threads take 0.6 of one thread's time.
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("a",)), lambda e: {2: 0.6, 1: 1.0}, 200)
    assert picked[:3] == [2, 1, 2]
    # After its probe, one thread is timed again once _PROBE_RATIO × its epoch has passed on two.
    gaps = np.diff([i for i, t in enumerate(picked) if t == 1])
    assert set(gaps) == {int(np.ceil(_PROBE_RATIO * 1.0 / 0.6)) + 1}
    assert picked.count(1) <= len(picked) / _PROBE_RATIO * 0.6 + 1


def test_busy_machine_falls_back_to_one_thread_and_tries_every_core_again():
    # Another process took a core: two threads wait on each other, ten times slower.
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("a",)), lambda e: {2: 10.0, 1: 1.0}, 2000)
    assert picked[:3] == [2, 1, 1]
    retries = [i for i, t in enumerate(picked) if t == 2][1:]
    # Two threads cost 10 a row: tried again after _PROBE_RATIO × 10 rows' worth on one thread.
    assert len(retries) >= 3
    assert np.diff(retries).tolist() == [_PROBE_RATIO * 10 + 1] * (len(retries) - 1)
    time_spent = sum({2: 10.0, 1: 1.0}[t] for t in picked)
    assert time_spent <= len(picked) * 1.0 * (1 + 1.5 / _PROBE_RATIO)


def test_freed_cores_are_taken_back():
    busy_until = 100
    per_row = lambda e: {2: 10.0, 1: 1.0} if e < busy_until else {2: 0.6, 1: 1.0}  # noqa: E731
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("a",)), per_row, 1200)
    first_back = next(i for i, t in enumerate(picked) if i >= busy_until and t == 2)
    assert first_back <= busy_until + _PROBE_RATIO * 10 + 1
    assert picked[first_back + 1 : first_back + 10] == [2] * 9


def test_sixteen_cores_climb_down_to_the_fastest_count():
    # 4 threads best, as where 12 of 16 cores are busy.
    times = {16: 8.0, 8: 4.0, 4: 0.5, 2: 0.7, 1: 1.0}
    picked = _run(ThreadGovernor(16, adaptive=True, shape=("a",)), lambda e: times, 300)
    assert picked[:4] == [16, 8, 4, 2]
    assert ThreadGovernor(16, adaptive=True, shape=("a",)).choose(100) == 4
    assert max(set(picked), key=picked.count) == 4


def test_fits_of_one_shape_share_what_they_learned():
    first = ThreadGovernor(2, adaptive=True, shape=("net", 200))
    _run(first, lambda e: {2: 10.0, 1: 1.0}, 3)
    assert ThreadGovernor(2, adaptive=True, shape=("net", 200)).choose(100) == 1
    assert ThreadGovernor(2, adaptive=True, shape=("other", 200)).choose(100) == 2


def test_most_used_breaks_a_tie_towards_more_threads():
    governor = ThreadGovernor(2, adaptive=True, shape=("a",))
    for threads in (2, 1, 1, 2):
        governor.record(threads, 1.0, 10)
    assert governor.most_used() == 2
    governor.record(1, 1.0, 10)
    assert governor.most_used() == 1


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_fit_whose_epochs_change_thread_count_is_bitwise_the_fixed_count_fit(monkeypatch, solver):
    # An epoch each (adam), or a loss evaluation each (lbfgs).
    schedule = itertools.cycle([2, 1, 1, 2, 1, 2, 2, 1])
    monkeypatch.setattr(ThreadGovernor, "choose", lambda self, rows: next(schedule))
    params = dict(hidden_layer_sizes=(64, 32), batch_size=64, max_iter=8, random_state=0, solver=solver)
    mixed = MLPClassifier(**params).fit(X, y)
    fixed = MLPClassifier(**params, n_threads=1).fit(X, y)
    for a, b in zip(mixed.coefs_ + mixed.intercepts_, fixed.coefs_ + fixed.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert mixed.loss_ == fixed.loss_
    assert mixed.n_threads_ == min(2, numba.config.NUMBA_NUM_THREADS) or numba.config.NUMBA_NUM_THREADS == 1


def test_n_threads_reports_the_count_most_epochs_ran_on(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    schedule = iter([2, 1, 1, 1, 2])
    monkeypatch.setattr(ThreadGovernor, "choose", lambda self, rows: next(schedule))
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert model.n_threads_ == 1


def test_a_first_epoch_of_an_unseen_shape_runs_on_the_rules_count():
    model = MLPClassifier(hidden_layer_sizes=(13,), max_iter=1, random_state=0).fit(X, y)
    assert model.n_threads_ == numba.config.NUMBA_NUM_THREADS


def _forward_counts(monkeypatch, per_row, calls, units=(64, 100, 10), rows=2000, dtype=np.float64, sparse=False):
    """The counts forward_threads gives `calls` predicts of `rows` rows whose
    time per row on c threads is per_row[c], on a clock that only those
    predicts move."""
    clock = [0.0]
    monkeypatch.setattr(_threads.time, "perf_counter", lambda: clock[0])
    monkeypatch.setitem(_threads._state, "parallel_used", True)
    picked = []
    for _ in range(calls):
        with _threads.forward_threads(None, np.array(units), np.dtype(dtype), sparse, rows, min(rows, 4096),
                                     4) as threads:
            picked.append(threads)
            clock[0] += per_row[threads] * rows
    return picked


@pytest.fixture
def _two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    _threads._forward_governors.clear()
    yield
    _threads._forward_governors.clear()


def test_predict_times_its_own_passes_whatever_a_fit_found(monkeypatch, _two_threads):
    # A fit of this network whose minibatches ran fastest on one thread.
    _run(ThreadGovernor(2, adaptive=True, shape=((64, 100, 10), 200, "d", False)), lambda e: {2: 10.0, 1: 1.0}, 3)
    # Its predicts, one region a chunk, run faster on two: they stay on two.
    picked = _forward_counts(monkeypatch, {2: 0.55, 1: 1.0}, 40)
    assert picked[:4] == [2, 2, 1, 2]  # the first pass (loading its code) untimed, then one probe of one thread
    assert picked[4:] == [2] * 36


def test_predict_moves_to_fewer_threads_when_they_are_clearly_faster(monkeypatch, _two_threads):
    # A busy machine: two threads wait at the barrier for the descheduled one.
    picked = _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 20)
    assert picked[:3] == [2, 2, 1] and picked[3:] == [1] * 17
    # Each dtype, network, input kind and size has its own timings: these start on two threads again.
    assert _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 2, dtype=np.float32) == [2, 2]
    assert _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 2, units=(64, 99, 10)) == [2, 2]
    assert _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 2, sparse=True) == [2, 2]
    assert _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 2, rows=50000) == [2, 2]


def test_small_predicts_on_one_thread_leave_large_ones_on_two(monkeypatch, _two_threads):
    # 150-row calls, where waking the second thread outweighs its share, beside
    # 50000-row calls that two threads take 1.8 times faster.
    assert _forward_counts(monkeypatch, {2: 2.0, 1: 1.0}, 10, rows=150)[3:] == [1] * 7
    assert _forward_counts(monkeypatch, {2: 0.55, 1: 1.0}, 10, rows=50000)[3:] == [2] * 7


def test_predict_takes_no_more_threads_than_its_chunk_has_blocks_of_rows(monkeypatch, _two_threads):
    # A 16-core ceiling; 9 rows of a 16384-input model make 3 blocks of 4 (and a chunk of 1 row, one).
    @contextlib.contextmanager
    def sixteen(backend, n_threads):
        yield 16

    monkeypatch.setattr(_threads, "thread_limits", sixteen)
    monkeypatch.setattr(_threads.numba, "set_num_threads", lambda count: None)
    picked = _forward_counts(monkeypatch, {3: 0.4, 1: 1.0}, 4, units=(16384, 100, 10), rows=9)
    assert picked == [3, 3, 1, 3]
    assert _forward_counts(monkeypatch, {16: 0.1, 1: 1.0}, 2, units=(16384, 100, 10), rows=1) == [1, 1]


def test_a_time_recorded_by_another_thread_meanwhile_leaves_a_count_to_choose():
    class RecordedMeanwhile(dict):
        """Per-row times to which another thread's call records a slower time
        on two threads between reading the least time and the counts."""

        def items(self):
            self[2] = (5.0, 5.0)
            return super().items()

    assert _threads._fastest(RecordedMeanwhile({2: (1.0, 1.0), 1: (2.0, 2.0)})) == 2


def test_a_small_or_explicit_predict_is_not_timed(monkeypatch, _two_threads):
    assert _forward_counts(monkeypatch, {2: 3.0, 1: 1.0}, 3, rows=10) == [1, 1, 1]
    # One row of a 16384-input model: work enough, but a single block of rows for one thread to take.
    assert _forward_counts(monkeypatch, {2: 0.5, 1: 1.0}, 3, units=(16384, 100, 10), rows=1) == [1, 1, 1]
    with _threads.forward_threads(2, np.array([64, 100, 10]), np.dtype(np.float64), False, 2000, 2000, 4) as threads:
        assert threads == 2
    assert not _threads._forward_governors
    # Two blocks: two threads, timed.
    assert _forward_counts(monkeypatch, {2: 0.5, 1: 1.0}, 3, units=(16384, 100, 10), rows=5)[0] == 2
    assert _threads._forward_governors


def test_one_slow_epoch_is_not_taken_for_a_busy_machine():
    # Idle, with the host pre-empting one epoch on two threads 30-fold.
    spike = 40
    per_row = lambda e: {2: 18.0 if e == spike else 0.6, 1: 1.0}  # noqa: E731
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("a",)), per_row, 60)
    assert picked[spike + 1 : spike + 10] == [2] * 9
    # Two slow epochs in a row are: the machine got busy.
    per_row = lambda e: {2: 18.0 if e >= spike else 0.6, 1: 1.0}  # noqa: E731
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("b",)), per_row, 60)
    assert picked[spike : spike + 2] == [2, 2]
    assert picked[spike + 2 : spike + 10] == [1] * 8


def test_fewer_threads_must_be_clearly_faster():
    # One thread 5% faster: within the noise of a 2-core host, so two threads stay.
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("a",)), lambda e: {2: 1.0, 1: 0.95}, 30)
    assert picked.count(1) == 1
    # 30% faster: one thread wins.
    picked = _run(ThreadGovernor(2, adaptive=True, shape=("b",)), lambda e: {2: 1.0, 1: 0.7}, 30)
    assert picked[2:] == [1] * 28


def test_the_first_call_of_a_shape_and_the_pool_start_are_not_timed(monkeypatch):
    monkeypatch.setitem(_threads._state, "parallel_used", True)
    governor = ThreadGovernor(2, adaptive=True, shape=("a",))
    with governor.timed(100):  # the shape's first call: loads its compiled code
        pass
    assert governor.per_row == {}
    with governor.timed(100):
        pass
    assert list(governor.per_row) == [2]
    # A later fit of the shape times its first call.
    later = ThreadGovernor(2, adaptive=True, shape=("a",))
    with later.timed(100):
        pass
    assert set(later.per_row) == {1, 2}
    # The call that starts the thread pool is not timed.
    monkeypatch.setitem(_threads._state, "parallel_used", False)
    fresh = ThreadGovernor(2, adaptive=True, shape=("b",))
    fresh.untimed_shape = False
    with fresh.timed(100):
        pass
    assert fresh.per_row == {} and fresh.used == {2: 1}


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_n_threads_none_keeps_to_a_lower_limit_the_caller_set(backend):
    """threadpoolctl's limit on BLAS (the vectorized backend's threads, all of
    scikit-learn's MLP's) and numba.set_num_threads (the loop backend's) stand
    for n_threads=None: a vectorized fit raised BLAS to every core inside
    threadpool_limits(1). An explicit n_threads still wins."""
    from threadpoolctl import threadpool_limits

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    params = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0, backend=backend)
    model = MLPClassifier(**params)
    previous = numba.get_num_threads()
    with threadpool_limits(limits=1, user_api="blas"):
        numba.set_num_threads(1)
        try:
            model.fit(X, y)
            explicit = MLPClassifier(**params, n_threads=2).fit(X, y)
        finally:
            numba.set_num_threads(previous)
    assert model.n_threads_ == 1
    assert explicit.n_threads_ == min(2, numba.config.NUMBA_NUM_THREADS)


def test_a_call_inside_another_is_not_capped_by_the_outer_calls_count():
    """Inside a fit, Numba's count is the fit's choice for its epoch, no
    limit of the caller's: the early-stopping score's predict, capped by it,
    ran on one thread in 13 of 15 epochs of a trial. At the top, the same
    count set by the caller caps it."""
    previous = numba.get_num_threads()
    try:
        with _threads.thread_limits("loop", 1):
            with _threads.thread_limits("loop", None) as inner:
                assert inner == _threads.kernel_threads() == numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(1)
        with _threads.thread_limits("loop", None) as top:
            assert top == 1
    finally:
        numba.set_num_threads(previous)
