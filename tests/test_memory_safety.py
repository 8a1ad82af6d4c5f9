"""Inputs and call sequences that once reached compiled code unchecked (the
memory-safety issue): each ends in a fitted model that agrees with
scikit-learn's, or in a Python exception naming the problem, never in an
out-of-bounds access. CI runs the kernel-level part of this module again under
NUMBA_BOUNDSCHECK=1, where such an access raises instead of corrupting the heap.
"""

import os
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris, make_classification
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from threadpoolctl import threadpool_info

from fastbp import MLPClassifier, MLPRegressor, _loop

SOLVERS = ["lbfgs", "adam", "sgd"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _rel_diff(a_arrays, b_arrays):
    return max(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300) for a, b in zip(a_arrays, b_arrays))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fast_cls, sk_cls", [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)])
def test_sparse_input_with_no_stored_values_fits_as_sklearn(fast_cls, sk_cls, solver, dtype):
    # An empty chunk: documents with no known word, an encoder ignoring unknown categories.
    X = sp.csr_matrix((100, 20), dtype=dtype)
    y = np.random.default_rng(0).integers(0, 3, 100)
    params = dict(hidden_layer_sizes=(7,), solver=solver, max_iter=4, random_state=0, batch_size=32)
    fast = fast_cls(**params).fit(X, y)
    sk = sk_cls(**params).fit(X.astype(np.float64), y)
    assert _rel_diff(fast.coefs_ + fast.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-5
    assert fast.loss_ == pytest.approx(sk.loss_, rel=1e-5)
    if solver != "lbfgs":
        fast.partial_fit(X[:10], y[:10])
        assert np.isfinite(fast.loss_)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_minibatches_some_empty_some_not(solver):
    # Only a few rows hold values: most minibatches of the epoch have none.
    X = sp.random(300, 30, density=0.002, format="csr", random_state=0)
    y = np.random.default_rng(1).integers(0, 2, 300)
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=3, random_state=0, batch_size=16)
    fast = MLPClassifier(**params).fit(X, y)
    sk = SkMLPClassifier(**params).fit(X, y)
    assert _rel_diff(fast.coefs_ + fast.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-6


@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_forward_only_region_predicts_odd_inputs_as_sklearn(monkeypatch, n_threads):
    """Region 1 for a forward pass alone, which a process that has not fitted
    compiles (see _loop._forward_region), on 1 to 5 rows, a chunk of rows and
    one more, and CSR rows with no stored values, all stored values or none."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4097, 12))
    X[rng.random(X.shape) < 0.7] = 0
    X[5:9] = 0
    y = rng.integers(0, 3, 4097)
    model = MLPClassifier((9,), max_iter=3, random_state=0, n_threads=n_threads).fit(X[:300], y[:300])
    expected = model.to_sklearn().predict_proba(X)
    monkeypatch.setattr(_loop, "_forward_region", lambda dtype, general: (2, general))
    for rows in (slice(0, 1), slice(0, 3), slice(4, 9), slice(5, 9), slice(0, 4096), slice(0, 4097)):
        for given in (X[rows], sp.csr_matrix(X[rows])):
            np.testing.assert_allclose(model.predict_proba(given), expected[rows], rtol=1e-12, atol=1e-15)
    empty = sp.csr_matrix((7, 12))
    np.testing.assert_allclose(model.predict_proba(empty), model.to_sklearn().predict_proba(empty), rtol=1e-12)


def test_malformed_csr_is_rejected_before_compiled_code():
    X = sp.csr_matrix(np.eye(4, 3))
    # A column index past n_features, as a hand-built matrix can hold.
    X.indices[0] = 7
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="(?i)indices"):
        model.fit(X, [0, 1, 0, 1])


def _damaged(fmt, how, n_rows=40):
    """A (n_rows, 6) matrix of format fmt whose index arrays point outside it, as
    one built by hand or read from a damaged file can: each of these crashed
    the process (segfault, or a corrupted heap) inside scipy's conversions or
    products before it was checked, on the vectorized backend or for CSC and COO."""
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(n_rows, 6)) * (rng.random((n_rows, 6)) < 0.5)
    dense[:, 0] = 1.0
    X = sp.csr_matrix(dense).asformat(fmt) if fmt != "bsr" else sp.bsr_matrix(dense, blocksize=(2, 2))
    if fmt == "coo":
        (X.row if how == "row" else X.col)[-1] = 10**6 if how == "row" else -1
    elif how == "indptr":
        X.indptr[n_rows // 2] = X.indptr[-1]
    else:
        X.indices[-1] = {"high": 10**6, "low": -1}[how]
    return X


DAMAGED = [("csr", "high"), ("csr", "low"), ("csr", "indptr"), ("csc", "high"), ("csc", "low"),
           ("coo", "row"), ("coo", "col"), ("bsr", "high")]


@pytest.mark.parametrize("fmt, how", DAMAGED, ids=["-".join(case) for case in DAMAGED])
@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_damaged_sparse_index_arrays_are_refused_before_any_compiled_code(fmt, how, backend):
    y = np.arange(40) % 2
    model = MLPClassifier((3,), max_iter=2, random_state=0, backend=backend).fit(np.ones((40, 6)), y)
    message = f"Malformed {fmt.upper()} input"
    with pytest.raises(ValueError, match=message):
        MLPClassifier((3,), max_iter=2, random_state=0, backend=backend).fit(_damaged(fmt, how), y)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(_damaged(fmt, how), y)
    with pytest.raises(ValueError, match=message):
        model.predict_proba(_damaged(fmt, how))


def test_a_damaged_csr_matrix_of_many_chunks_is_refused_before_it_is_sliced():
    model = MLPClassifier((3,), max_iter=2, random_state=0).fit(np.ones((40, 6)), np.arange(40) % 2)
    with pytest.raises(ValueError, match="Malformed CSR input: column indices out of range"):
        model.predict_proba(_damaged("csr", "high", n_rows=5000))


# ------------------------------------------------------ assigned parameters

IRIS_X, IRIS_Y = load_iris(return_X_y=True)


def _fitted_pair(**params):
    params = dict(dict(hidden_layer_sizes=(5, 4), max_iter=5, random_state=0), **params)
    return MLPClassifier(**params).fit(IRIS_X, IRIS_Y), SkMLPClassifier(**params).fit(IRIS_X, IRIS_Y)


BAD_PARAMETERS = {
    "a hidden layer of the wrong width": lambda m: ([m.coefs_[0], np.zeros((6, 4)), m.coefs_[2]], m.intercepts_),
    "an intercept of the wrong length": lambda m: (m.coefs_, [m.intercepts_[0][:3]] + m.intercepts_[1:]),
    "a truncated list": lambda m: (m.coefs_[:2], m.intercepts_[:2]),
    "a first layer for other features": lambda m: ([np.zeros((7, 5))] + m.coefs_[1:], m.intercepts_),
    "an output layer of another width": lambda m: (m.coefs_[:2] + [np.zeros((4, 2))],
                                                   m.intercepts_[:2] + [np.zeros(2)]),
}


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_inconsistent_assigned_parameters_raise_before_compiled_code(case):
    fast, sk = _fitted_pair()
    fast.coefs_, fast.intercepts_ = BAD_PARAMETERS[case](fast)
    sk.coefs_, sk.intercepts_ = BAD_PARAMETERS[case](sk)
    if case == "an output layer of another width":
        # scikit-learn returns probabilities of two classes for a model of three; fastbp says why not.
        assert sk.predict_proba(IRIS_X).shape == (150, 2)
        with pytest.raises(ValueError, match=r"coefs_\[2\] has shape \(4, 2\).*need \(4, 3\)"):
            fast.predict_proba(IRIS_X)
    else:
        with pytest.raises((ValueError, IndexError)) as sk_error:
            sk.predict_proba(IRIS_X)
        with pytest.raises(sk_error.type, match=r"coefs_|intercepts_"):
            fast.predict_proba(IRIS_X)
    before = [a.copy() for a in fast.coefs_ + fast.intercepts_]
    with pytest.raises(ValueError, match=r"coefs_|intercepts_"):
        fast.partial_fit(IRIS_X, IRIS_Y)
    with pytest.raises(ValueError, match=r"coefs_|intercepts_"):
        fast.set_params(warm_start=True).fit(IRIS_X, IRIS_Y)
    # The model the user had is left as it was.
    for a, b in zip(fast.coefs_ + fast.intercepts_, before):
        np.testing.assert_array_equal(a, b)


def test_consistent_assigned_parameters_of_another_width_predict_as_sklearn():
    fast, sk = _fitted_pair()
    rng = np.random.default_rng(0)
    # hidden_layer_sizes=(5, 4) fitted, (6, 4) assigned: scikit-learn predicts with what it is given.
    sk.coefs_ = [rng.normal(size=(4, 6)), rng.normal(size=(6, 4)), rng.normal(size=(4, 3))]
    sk.intercepts_ = [rng.normal(size=6), rng.normal(size=4), rng.normal(size=3)]
    fast.coefs_, fast.intercepts_ = sk.coefs_, sk.intercepts_
    np.testing.assert_allclose(fast.predict_proba(IRIS_X), sk.predict_proba(IRIS_X), rtol=1e-12)
    # partial_fit continues from hidden_layer_sizes=(5, 4): these weights do not fit it.
    with pytest.raises(ValueError, match=r"coefs_\[0\] has shape \(4, 6\)"):
        fast.partial_fit(IRIS_X, IRIS_Y)


def test_integer_weights_compute_in_float64_as_sklearn():
    fast, sk = _fitted_pair()
    rng = np.random.default_rng(0)
    coefs = [rng.integers(-2, 3, size=c.shape) for c in sk.coefs_]
    intercepts = [rng.integers(-1, 2, size=b.shape) for b in sk.intercepts_]
    fast.coefs_, fast.intercepts_ = coefs, intercepts
    sk.coefs_, sk.intercepts_ = coefs, intercepts
    proba = fast.predict_proba(IRIS_X / 8)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, sk.predict_proba(IRIS_X / 8), rtol=1e-12)


def test_partial_fit_keeps_the_model_dtype_as_sklearn():
    X32 = IRIS_X.astype(np.float32)
    model = MLPClassifier(hidden_layer_sizes=(5,), random_state=0).partial_fit(IRIS_X, IRIS_Y, classes=[0, 1, 2])
    same = MLPClassifier(hidden_layer_sizes=(5,), random_state=0).partial_fit(IRIS_X, IRIS_Y, classes=[0, 1, 2])
    model.partial_fit(X32, IRIS_Y)
    same.partial_fit(X32.astype(np.float64), IRIS_Y)
    assert all(c.dtype == np.float64 for c in model.coefs_ + model.intercepts_)
    assert model._optimizer.first.dtype == np.float64
    for a, b in zip(model.coefs_ + model.intercepts_, same.coefs_ + same.intercepts_):
        np.testing.assert_array_equal(a, b)
    small = MLPClassifier(hidden_layer_sizes=(5,), random_state=0).partial_fit(X32, IRIS_Y, classes=[0, 1, 2])
    small.partial_fit(IRIS_X, IRIS_Y)
    assert all(c.dtype == np.float32 for c in small.coefs_ + small.intercepts_)
    assert small._optimizer.first.dtype == np.float32


def test_partial_fit_on_a_memory_mapped_model_raises_what_sklearn_raises(tmp_path):
    fast, sk = _fitted_pair(solver="sgd")
    for name, model in (("fast", fast), ("sk", sk)):
        joblib.dump(model, tmp_path / name)
    fast_loaded = joblib.load(tmp_path / "fast", mmap_mode="r")
    sk_loaded = joblib.load(tmp_path / "sk", mmap_mode="r")
    np.testing.assert_array_equal(fast_loaded.predict_proba(IRIS_X), fast.predict_proba(IRIS_X))
    with pytest.raises(ValueError, match="output array is read-only"):
        sk_loaded.partial_fit(IRIS_X, IRIS_Y)
    with pytest.raises(ValueError, match="output array is read-only"):
        fast_loaded.partial_fit(IRIS_X, IRIS_Y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("mmap_mode", ["c", "r+"])
def test_partial_fit_on_a_writeable_memory_mapped_model_continues_as_in_memory(tmp_path, mmap_mode, solver):
    """Loaded with a writeable mmap_mode, the model's arrays are np.memmap
    objects: partial_fit continues from them as scikit-learn's does, to the
    same weights as the model kept in memory."""
    fast, _ = _fitted_pair(solver=solver)
    joblib.dump(fast, tmp_path / "fast")
    loaded = joblib.load(tmp_path / "fast", mmap_mode=mmap_mode)
    loaded.partial_fit(IRIS_X, IRIS_Y)
    fast.partial_fit(IRIS_X, IRIS_Y)
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, fast.coefs_ + fast.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_read_only_targets_and_weights_compile_nothing_new():
    from fastbp import _loop

    X = np.ascontiguousarray(IRIS_X)
    y = IRIS_Y.astype(np.float64)
    weights = np.linspace(0.5, 1.5, len(y))
    reference = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y, sample_weight=weights)
    compiled = len(_loop.run_epoch_dense.signatures)
    for array in (X, y, weights):
        array.setflags(write=False)
    frozen = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y, sample_weight=weights)
    assert len(_loop.run_epoch_dense.signatures) == compiled
    for a, b in zip(frozen.coefs_ + frozen.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ concurrency


def test_fits_of_one_estimator_from_two_threads_with_different_architectures():
    model = MLPClassifier(max_iter=3, random_state=0)
    architectures = [(5,), (9, 3), (4, 4, 4), (12,)]

    def fit(i):
        return model.set_params(hidden_layer_sizes=architectures[i % 4]).fit(IRIS_X, IRIS_Y)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fit, range(12)))
    # Whatever fit ended last, the model is one whole network of the architecture it has.
    widths = [c.shape[1] for c in model.coefs_[:-1]]
    assert tuple(widths) in architectures
    assert model.n_layers_ == len(model.coefs_) + 1
    proba = model.predict_proba(IRIS_X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_predict_while_another_thread_refits_gives_probabilities_or_a_python_error():
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(IRIS_X, IRIS_Y)
    stop = threading.Event()

    def refit():
        i = 0
        while not stop.is_set():
            model.set_params(hidden_layer_sizes=[(5,), (8, 3)][i % 2]).fit(IRIS_X, IRIS_Y)
            i += 1

    outcomes = []
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(refit)
        for _ in range(300):
            try:
                proba = model.predict_proba(IRIS_X)
            except (ValueError, IndexError, AttributeError) as error:
                outcomes.append(type(error))
                continue
            assert proba.shape == (150, 3)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)
            outcomes.append("ok")
        stop.set()
        running.result()
    # How many calls met a model mid-fit depends on the scheduler; each was whole or a Python error.
    assert len(outcomes) == 300
    np.testing.assert_allclose(model.predict_proba(IRIS_X).sum(axis=1), 1.0)


def test_blas_threads_are_restored_after_concurrent_fits():
    # Fits in threads, and fits in the main thread (which alone sets BLAS's limit) meanwhile.
    before = [(lib["prefix"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]

    def fit(i):
        params = [dict(solver="lbfgs"), dict(backend="vectorized", n_threads=1), dict(backend="vectorized")][i % 3]
        return MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0, **params).fit(IRIS_X, IRIS_Y)

    with ThreadPoolExecutor(3) as pool:
        running = pool.map(fit, range(18))
        for i in range(6):
            fit(i)
        list(running)
    after = [(lib["prefix"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_n_threads_in_a_forked_child_reports_the_serial_kernels():
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0, n_threads=2).fit(IRIS_X, IRIS_Y)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, without pytest's teardown
        try:
            model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(IRIS_X, IRIS_Y)
            os.write(write, str(model.n_threads_).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    assert reported == "1"


# ------------------------------------------------------------------ Ctrl-C


def _interrupted_fit(model, X, y, delay):
    # Python's own Ctrl-C handler, as in a terminal: a process started in the background by a
    # non-interactive shell inherits SIGINT ignored, and then no Ctrl-C reaches the fit at all.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user"):
            model.fit(X, y)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, inherited)
    return model


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="needs POSIX signals")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_real_ctrl_c_during_the_compiled_epoch_leaves_one_consistent_model(solver):
    X, y = make_classification(n_samples=20000, n_features=60, n_informative=20, random_state=0)
    params = dict(hidden_layer_sizes=(64,), solver=solver, max_iter=400, tol=0.0, n_iter_no_change=1000,
                  random_state=0, n_threads=1)
    interrupted = _interrupted_fit(MLPClassifier(**params), X, y, delay=0.6)
    n = interrupted.n_iter_
    assert 0 < n < 400
    reference = MLPClassifier(**dict(params, max_iter=n)).fit(X, y)
    for a, b in zip(interrupted.coefs_ + interrupted.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert interrupted.loss_curve_ == reference.loss_curve_
    assert interrupted.t_ == reference.t_ == n * len(y)
    assert interrupted._optimizer.t == reference._optimizer.t
    np.testing.assert_array_equal(interrupted._optimizer.first, reference._optimizer.first)
    np.testing.assert_array_equal(interrupted._optimizer.second, reference._optimizer.second)
    # A later partial_fit continues from that consistent model.
    interrupted.partial_fit(X[:500], y[:500])
    reference.partial_fit(X[:500], y[:500])
    for a, b in zip(interrupted.coefs_ + interrupted.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params, limits", [
    (dict(solver="adam"), []),
    (dict(solver="sgd"), []),
    (dict(solver="lbfgs"), [1]),
    (dict(solver="adam", backend="vectorized", n_threads=1), [1]),
])
def test_blas_is_limited_only_where_a_fit_runs_blas(monkeypatch, params, limits):
    # A loop-backend sgd/adam fit calls no BLAS: limiting it held every other thread's numpy to one core.
    from contextlib import contextmanager

    from fastbp import _threads

    asked = []
    real = _threads._blas_limit

    @contextmanager
    def recording(limit):
        asked.append(limit)
        with real(limit):
            yield

    monkeypatch.setattr(_threads, "_blas_limit", recording)
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, **params).fit(IRIS_X, IRIS_Y)
    assert asked == limits
