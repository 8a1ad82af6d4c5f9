"""fastbp's estimators fit the same model as scikit-learn's (issue 12, "the recipe").

Every test here runs scikit-learn's own MLP beside fastbp's on the same data, with
the same hyperparameters and random_state, and compares the fitted weights array by
array (max over arrays of ‖a − b‖ / ‖b‖) and the reported training state (loss_,
loss_curve_, n_iter_, t_, best_loss_, validation scores).
"""

from contextlib import nullcontext

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.base import clone
from sklearn.datasets import (
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.utils.fixes import parse_version

from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SK_VERSION = parse_version(sklearn.__version__)
# sample_weight in MLP fit / partial_fit: scikit-learn 1.7.
needs_sample_weight = pytest.mark.skipif(
    SK_VERSION < parse_version("1.7"), reason="MLP sample_weight needs scikit-learn >= 1.7"
)

RTOL = 1e-6


# --------------------------------------------------------------------- data


def _data(target):
    """Small float64 problems, one per target kind: (X, y, is_classifier)."""
    if target == "binary":
        X, y = make_classification(n_samples=200, n_features=8, n_informative=5, random_state=0)
        return X, y, True
    if target == "multiclass":
        X, y = make_classification(
            n_samples=210, n_features=8, n_informative=5, n_classes=3, random_state=1
        )
        return X, y, True
    if target == "iris":
        X, y = load_iris(return_X_y=True)
        return X, y, True
    if target == "multilabel":
        X, y = make_multilabel_classification(
            n_samples=180, n_features=6, n_classes=3, random_state=2
        )
        return X / X.std(axis=0), y, True
    if target == "reg1":
        X, y = make_regression(n_samples=200, n_features=8, noise=0.5, random_state=3)
        return X, y / y.std(), False
    if target == "reg2":
        X, y = make_regression(
            n_samples=200, n_features=7, n_targets=2, noise=0.5, random_state=4
        )
        return X, y / y.std(axis=0), False
    if target == "poisson":
        rng = np.random.RandomState(5)
        X = rng.normal(size=(190, 6))
        w = rng.normal(scale=0.3, size=6)
        y = rng.poisson(np.exp(X @ w)).astype(np.float64)
        return X, y, False
    raise ValueError(target)


def _weights(n, seed=10):
    return np.random.RandomState(seed).uniform(0.2, 3.0, size=n)


def _pair(is_clf, target, **params):
    if is_clf:
        return MLPClassifier(**params), SkMLPClassifier(**params)
    if target == "poisson":
        params = dict(params, loss="poisson")
    return MLPRegressor(**params), SkMLPRegressor(**params)


# --------------------------------------------------------------- comparison


def rel_diff(a_arrays, b_arrays):
    """max over arrays of ‖a − b‖ / ‖b‖ (absolute where ‖b‖ = 0)."""
    assert len(a_arrays) == len(b_arrays)
    worst = 0.0
    for a, b in zip(a_arrays, b_arrays):
        assert a.shape == b.shape
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        nb = np.linalg.norm(b)
        d = np.linalg.norm(a - b)
        worst = max(worst, d / nb if nb > 0 else d)
    return worst


def _close_list(a, b, rtol):
    if a is None or b is None:
        assert a is None and b is None, (a, b)
        return
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a, b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, equal_nan=True)


def assert_same_model(fb, sk, rtol=RTOL):
    """Weights to rtol per array, and the same reported training state."""
    diff = rel_diff(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_)
    assert diff <= rtol, f"weights differ from scikit-learn's by {diff:.3e} (relative)"
    assert fb.n_iter_ == sk.n_iter_
    assert fb.t_ == sk.t_
    assert fb.n_layers_ == sk.n_layers_
    assert fb.n_outputs_ == sk.n_outputs_
    assert fb.out_activation_ == sk.out_activation_
    np.testing.assert_allclose(fb.loss_, sk.loss_, rtol=rtol)
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert hasattr(fb, name) == hasattr(sk, name), name
        if hasattr(sk, name):
            _close_list(getattr(fb, name), getattr(sk, name), rtol)
    if hasattr(sk, "classes_"):
        np.testing.assert_array_equal(fb.classes_, sk.classes_)


# -------------------------------------------------------------------- cases

SOLVERS = {
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=True),
    "sgd-momentum": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.05, momentum=0.0),
    "sgd-invscaling": dict(
        solver="sgd", learning_rate_init=0.05, learning_rate="invscaling", power_t=0.3
    ),
    # tol large enough that every epoch counts as "no improvement": the adaptive
    # schedule divides the rate by 5 inside the 8 epochs.
    "sgd-adaptive": dict(
        solver="sgd",
        learning_rate_init=0.05,
        learning_rate="adaptive",
        tol=10.0,
        n_iter_no_change=1,
        max_iter=8,
    ),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}
TARGETS = ["binary", "multiclass", "multilabel", "reg1", "reg2", "poisson"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]

BASE = dict(max_iter=5, batch_size=32, random_state=0, alpha=1e-3)


def _fit_pair(target, sample_weight=False, **params):
    X, y, is_clf = _data(target)
    fb, sk = _pair(is_clf, target, **dict(BASE, **params))
    kwargs = {"sample_weight": _weights(X.shape[0])} if sample_weight else {}
    fb.fit(X, y, **kwargs)
    sk.fit(X, y, **kwargs)
    return fb, sk, X


def _grid_solver_target():
    """Every solver with every target; the hidden activation and depth rotate."""
    cases = []
    for i, solver in enumerate(SOLVERS):
        for j, target in enumerate(TARGETS):
            activation = ACTIVATIONS[(i + j) % 4]
            hidden = (7,) if (i + j) % 2 == 0 else (6, 5)
            cases.append(
                pytest.param(solver, target, activation, hidden, id=f"{solver}-{target}-{activation}")
            )
    return cases


@pytest.mark.parametrize("solver, target, activation, hidden", _grid_solver_target())
def test_parity_solver_target(solver, target, activation, hidden):
    fb, sk, X = _fit_pair(
        target, activation=activation, hidden_layer_sizes=hidden, **SOLVERS[solver]
    )
    assert_same_model(fb, sk)
    # Same model, so the same predictions.
    np.testing.assert_allclose(
        np.asarray(fb.predict(X), dtype=float), np.asarray(sk.predict(X), dtype=float),
        rtol=1e-6, atol=1e-8,
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("target", ["iris", "reg2"])
def test_parity_activations(target, solver, activation):
    fb, sk, _ = _fit_pair(
        target, activation=activation, hidden_layer_sizes=(6, 5), **SOLVERS[solver]
    )
    assert_same_model(fb, sk)


def test_parity_sgd_adaptive_actually_adapts():
    """The adaptive case above must exercise the rate division, or it proves nothing."""
    fb, sk, _ = _fit_pair("multiclass", activation="tanh", **SOLVERS["sgd-adaptive"])
    assert sk._optimizer.learning_rate < 0.05
    assert fb.n_iter_ == sk.n_iter_
    assert_same_model(fb, sk)


def test_parity_stops_on_no_improvement():
    """The stopping test (training loss, strict comparison) stops both at the same epoch."""
    fb, sk, _ = _fit_pair(
        "binary", activation="relu", **dict(SOLVERS["sgd-nesterov"], tol=10.0, n_iter_no_change=2,
                                            max_iter=50)
    )
    assert sk.n_iter_ < 50
    assert_same_model(fb, sk)


@needs_sample_weight
@pytest.mark.parametrize("solver", ["sgd-nesterov", "sgd-momentum", "adam", "lbfgs"])
@pytest.mark.parametrize("target", TARGETS)
def test_parity_sample_weight(solver, target):
    fb, sk, _ = _fit_pair(
        target, sample_weight=True, activation="tanh", hidden_layer_sizes=(7,), **SOLVERS[solver]
    )
    assert_same_model(fb, sk)


def test_parity_sample_weight_changes_model():
    """Guard for the sample_weight cases: the weights must matter."""
    fb_w, _, _ = _fit_pair("multiclass", sample_weight=True, **SOLVERS["adam"])
    fb, _, _ = _fit_pair("multiclass", sample_weight=False, **SOLVERS["adam"])
    assert rel_diff(fb_w.coefs_, fb.coefs_) > 1e-4


ES_TARGETS = ["binary", "iris", "multilabel", "reg1", "reg2", "poisson"]


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("target", ES_TARGETS)
def test_parity_early_stopping(solver, target):
    fb, sk, _ = _fit_pair(
        target,
        activation="relu",
        hidden_layer_sizes=(7,),
        early_stopping=True,
        validation_fraction=0.2,
        **SOLVERS[solver],
    )
    assert len(sk.validation_scores_) == sk.n_iter_
    assert_same_model(fb, sk)
    np.testing.assert_allclose(fb.validation_scores_, sk.validation_scores_, rtol=RTOL)
    np.testing.assert_allclose(fb.best_validation_score_, sk.best_validation_score_, rtol=RTOL)
    assert fb.best_loss_ is None


@pytest.mark.parametrize("solver", ["sgd-momentum", "adam"])
def test_parity_early_stopping_stops_and_restores_best(solver):
    """Early stopping that triggers: same stopping epoch and the same restored weights."""
    fb, sk, _ = _fit_pair(
        "binary",
        activation="tanh",
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.5,
        **dict(SOLVERS[solver], max_iter=40),
    )
    assert sk.n_iter_ < 40
    assert_same_model(fb, sk)
    np.testing.assert_allclose(fb.validation_scores_, sk.validation_scores_, rtol=RTOL)


@needs_sample_weight
@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("target", ["binary", "multilabel", "reg2"])
def test_parity_early_stopping_sample_weight(solver, target):
    fb, sk, _ = _fit_pair(
        target,
        sample_weight=True,
        activation="logistic",
        early_stopping=True,
        validation_fraction=0.2,
        **SOLVERS[solver],
    )
    assert_same_model(fb, sk)
    np.testing.assert_allclose(fb.validation_scores_, sk.validation_scores_, rtol=RTOL)


# --------------------------------------------------------- warm_start, partial_fit


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("target", ["multiclass", "reg2"])
def test_parity_warm_start(solver, target):
    X, y, is_clf = _data(target)
    params = dict(BASE, warm_start=True, activation="tanh", hidden_layer_sizes=(7,),
                  **SOLVERS[solver])
    fb, sk = _pair(is_clf, target, **params)
    half = X.shape[0] // 2
    for est in (fb, sk):
        est.fit(X, y)
    assert_same_model(fb, sk)
    # The second fit continues from the first one's weights, on other rows.
    for est in (fb, sk):
        est.fit(X[half:], y[half:])
    assert_same_model(fb, sk)


def test_parity_warm_start_after_converged_fit():
    """A warm refit after a converged fit runs a single epoch (state carried over)."""
    X, y, _ = _data("reg1")
    params = dict(BASE, warm_start=True, solver="sgd", learning_rate_init=0.01, tol=10.0,
                  n_iter_no_change=2, max_iter=30)
    fb, sk = MLPRegressor(**params), SkMLPRegressor(**params)
    for est in (fb, sk):
        est.fit(X, y)
    assert sk.n_iter_ < 30
    assert_same_model(fb, sk)
    for est in (fb, sk):
        est.fit(X, y)
    assert sk.n_iter_ == 1
    assert_same_model(fb, sk)


def test_parity_warm_start_with_early_stopping():
    X, y, _ = _data("binary")
    params = dict(BASE, warm_start=True, early_stopping=True, **SOLVERS["adam"])
    fb, sk = MLPClassifier(**params), SkMLPClassifier(**params)
    for _ in range(2):
        for est in (fb, sk):
            est.fit(X, y)
        assert_same_model(fb, sk)


def _chunks(n, k=3):
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("target", ["multiclass", "multilabel", "reg1", "poisson"])
def test_parity_partial_fit(solver, target):
    X, y, is_clf = _data(target)
    fb, sk = _pair(is_clf, target, **dict(BASE, activation="relu", hidden_layer_sizes=(7,),
                                         **SOLVERS[solver]))
    for rep in range(2):
        for i, sl in enumerate(_chunks(X.shape[0])):
            for est in (fb, sk):
                if is_clf and rep == 0 and i == 0:
                    # classes= is required on the first call, multilabel included
                    # (there: the column indices).
                    classes = np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)
                    est.partial_fit(X[sl], y[sl], classes=classes)
                else:
                    est.partial_fit(X[sl], y[sl])
            assert_same_model(fb, sk)
    assert len(fb.loss_curve_) == 6
    assert fb.n_iter_ == 1


@needs_sample_weight
@pytest.mark.parametrize("target", ["multiclass", "reg2"])
def test_parity_partial_fit_sample_weight(target):
    X, y, is_clf = _data(target)
    sw = _weights(X.shape[0])
    fb, sk = _pair(is_clf, target, **dict(BASE, **SOLVERS["sgd-momentum"]))
    for i, sl in enumerate(_chunks(X.shape[0])):
        for est in (fb, sk):
            kwargs = {"classes": np.unique(y)} if (is_clf and i == 0) else {}
            est.partial_fit(X[sl], y[sl], sample_weight=sw[sl], **kwargs)
        assert_same_model(fb, sk)


def test_parity_partial_fit_classes_not_all_in_first_batch():
    X, y, _ = _data("multiclass")
    params = dict(BASE, **SOLVERS["adam"])
    fb, sk = MLPClassifier(**params), SkMLPClassifier(**params)
    first = y != 2
    for est in (fb, sk):
        est.partial_fit(X[first], y[first], classes=[0, 1, 2])
        est.partial_fit(X, y)
    assert_same_model(fb, sk)


def test_parity_random_state_instance():
    """A RandomState instance continues its stream across fits (no replay)."""
    X, y, _ = _data("binary")
    fb = MLPClassifier(**dict(BASE, random_state=np.random.RandomState(7), warm_start=True,
                              **SOLVERS["sgd-nesterov"]))
    sk = SkMLPClassifier(**dict(BASE, random_state=np.random.RandomState(7), warm_start=True,
                                **SOLVERS["sgd-nesterov"]))
    for _ in range(2):
        fb.fit(X, y)
        sk.fit(X, y)
        assert_same_model(fb, sk)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 50, 500])
def test_parity_batch_size_and_shuffle(batch_size, shuffle):
    X, y, _ = _data("multiclass")
    params = dict(BASE, **SOLVERS["adam"])
    params.update(batch_size=batch_size, shuffle=shuffle, max_iter=3)
    fb, sk = MLPClassifier(**params), SkMLPClassifier(**params)
    for est in (fb, sk):
        # Both warn that an oversized batch is clipped.
        with pytest.warns(UserWarning, match="batch_size") if batch_size > X.shape[0] else nullcontext():
            est.fit(X, y)
    assert_same_model(fb, sk)


def test_parity_lbfgs_longer_run():
    """lbfgs on the reported-loss / summed-gradient pair for two outputs, 20 iterations."""
    X, y, _ = _data("reg2")
    params = dict(solver="lbfgs", max_iter=20, random_state=0, hidden_layer_sizes=(7,),
                  activation="tanh")
    fb, sk = MLPRegressor(**params).fit(X, y), SkMLPRegressor(**params).fit(X, y)
    assert_same_model(fb, sk, rtol=1e-5)


# ------------------------------------------------- scikit-learn's private API


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("target", ["multiclass", "multilabel", "reg2", "poisson"])
def test_parity_loss_grad_lbfgs_and_backprop(target, weighted, sparse):
    # scikit-learn's own test_gradient calls _loss_grad_lbfgs; code written
    # against scikit-learn may call _backprop and read the lists it fills.
    X, y, is_clf = _data(target)
    X, y = X[:40], y[:40]
    sample_weight = _weights(40) if weighted else None
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", solver="lbfgs", alpha=0.1, max_iter=3,
                  random_state=0)
    fb, sk = _pair(is_clf, target, **params)
    fb.fit(X, y)
    sk.fit(X, y)
    Y = sk._label_binarizer.transform(y) if is_clf else y.reshape(40, -1)
    theta = np.concatenate([a.ravel() for a in sk.coefs_ + sk.intercepts_]) + 0.01
    X_in = sp.csr_matrix(X) if sparse else X
    # The vectorized backend's model answers from the loop kernels' workspace too.
    fb_vectorized = clone(fb).set_params(backend="vectorized").fit(X, y)
    results = []
    for est in (fb, fb_vectorized, sk):
        n = est.n_layers_
        activations, deltas = [X_in] + [None] * (n - 1), [None] * (n - 1)
        coef_grads, intercept_grads = [None] * (n - 1), [None] * (n - 1)
        loss, grad = est._loss_grad_lbfgs(theta.copy(), X_in, Y, sample_weight, activations, deltas, coef_grads,
                                          intercept_grads)
        results.append((loss, grad, activations[1:], deltas, coef_grads + intercept_grads,
                        est.coefs_ + est.intercepts_))
    sk_loss, sk_grad, *sk_lists = results[-1]
    for fb_loss, fb_grad, *fb_lists in results[:-1]:
        assert fb_loss == pytest.approx(sk_loss, rel=1e-12)
        np.testing.assert_allclose(fb_grad, sk_grad, rtol=1e-10, atol=1e-14)
        # The last pair: the model takes the parameters it was evaluated at, as scikit-learn's does.
        for fb_arrays, sk_arrays in zip(fb_lists, sk_lists):
            assert rel_diff(fb_arrays, sk_arrays) < 1e-10


# -------------------------------------------------------------------- float32


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
def test_float32_classifier_trains_in_float32(solver):
    X, y, _ = _data("multiclass")
    X32 = X.astype(np.float32)
    params = dict(BASE, **SOLVERS[solver])
    fb = MLPClassifier(**params).fit(X32, y)
    sk = SkMLPClassifier(**params).fit(X32, y)
    for w in fb.coefs_ + fb.intercepts_:
        assert w.dtype == np.float32
    proba = fb.predict_proba(X32)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # The float32 model is still scikit-learn's float32 model, to float32 accuracy.
    assert rel_diff(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-4
    assert np.mean(fb.predict(X32) == sk.predict(X32)) > 0.98
    np.testing.assert_allclose(fb.loss_, sk.loss_, rtol=1e-4)


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
def test_float32_regressor_trains_in_float32(solver):
    X, y, _ = _data("reg2")
    X32 = X.astype(np.float32)
    params = dict(BASE, **SOLVERS[solver])
    fb = MLPRegressor(**params).fit(X32, y)
    sk = SkMLPRegressor(**params).fit(X32, y)
    for w in fb.coefs_ + fb.intercepts_:
        assert w.dtype == np.float32
    pred = fb.predict(X32)
    assert pred.dtype == np.float32
    assert rel_diff(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-4
    np.testing.assert_allclose(pred, sk.predict(X32), rtol=1e-3, atol=1e-3)


def test_float32_partial_fit_keeps_float32():
    X, y, _ = _data("reg1")
    fb = MLPRegressor(**dict(BASE, **SOLVERS["adam"]))
    fb.partial_fit(X[:100].astype(np.float32), y[:100])
    fb.partial_fit(X[100:].astype(np.float32), y[100:])
    assert all(w.dtype == np.float32 for w in fb.coefs_ + fb.intercepts_)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_float32_lbfgs_gives_float64(cls):
    X, y, _ = _data("binary" if cls is MLPClassifier else "reg1")
    X32 = X.astype(np.float32)
    fb = cls(solver="lbfgs", max_iter=5, random_state=0, hidden_layer_sizes=(7,)).fit(X32, y)
    for w in fb.coefs_ + fb.intercepts_:
        assert w.dtype == np.float64
    out = fb.predict_proba(X32) if cls is MLPClassifier else fb.predict(X32)
    assert out.dtype == np.float64
    # Optimized in float64 from the same float32 data: the float64 fit on the same values.
    ref = cls(solver="lbfgs", max_iter=5, random_state=0, hidden_layer_sizes=(7,)).fit(
        X32.astype(np.float64), y
    )
    assert rel_diff(fb.coefs_ + fb.intercepts_, ref.coefs_ + ref.intercepts_) < 1e-5


def test_float64_model_predicts_float32_input():
    X, y, _ = _data("reg1")
    fb = MLPRegressor(**dict(BASE, **SOLVERS["adam"])).fit(X, y)
    pred = fb.predict(X.astype(np.float32))
    assert pred.dtype == np.float64
    np.testing.assert_allclose(pred, fb.predict(X.astype(np.float32).astype(np.float64)),
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ backends, determinism


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("target", ["multiclass", "reg2"])
def test_backends_fit_the_same_model(solver, target):
    X, y, is_clf = _data(target)
    cls = MLPClassifier if is_clf else MLPRegressor
    params = dict(BASE, activation="tanh", hidden_layer_sizes=(6, 5), **SOLVERS[solver])
    loop = cls(backend="loop", **params).fit(X, y)
    vec = cls(backend="vectorized", **params).fit(X, y)
    assert rel_diff(loop.coefs_ + loop.intercepts_, vec.coefs_ + vec.intercepts_) <= 1e-8
    np.testing.assert_allclose(loop.loss_, vec.loss_, rtol=1e-8)
    assert loop.n_iter_ == vec.n_iter_
    np.testing.assert_allclose(
        np.asarray(loop.predict(X), float), np.asarray(vec.predict(X), float), rtol=1e-7, atol=1e-9
    )


def test_backends_same_model_sparse_input():
    import scipy.sparse as sp

    X, y, _ = _data("binary")
    X = np.where(np.abs(X) < 1.0, 0.0, X)
    params = dict(BASE, **SOLVERS["adam"])
    loop = MLPClassifier(backend="loop", **params).fit(sp.csr_matrix(X), y)
    vec = MLPClassifier(backend="vectorized", **params).fit(sp.csr_matrix(X), y)
    assert rel_diff(loop.coefs_ + loop.intercepts_, vec.coefs_ + vec.intercepts_) <= 1e-8


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
def test_same_random_state_is_bitwise_reproducible(solver):
    X, y, _ = _data("multiclass")
    params = dict(BASE, hidden_layer_sizes=(20, 10), **SOLVERS[solver])
    a = MLPClassifier(**params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_ if hasattr(a, "loss_curve_") else a.loss_ == b.loss_


def _thread_pair(solver, backend):
    """The same fit at one thread and at every core (Numba's threads for the
    loop backend, BLAS's for the vectorized one), on layers and batches wide
    enough that the parallel kernels and BLAS split the work."""
    X, y = make_classification(
        n_samples=600, n_features=40, n_informative=10, n_classes=4, random_state=0
    )
    params = dict(BASE, batch_size=200, hidden_layer_sizes=(64, 32), backend=backend,
                  **SOLVERS[solver])
    one = MLPClassifier(n_threads=1, **params).fit(X, y)
    every = MLPClassifier(n_threads=None, **params).fit(X, y)
    return X, one, every


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
def test_loop_backend_thread_count_is_bitwise_irrelevant(solver):
    X, one, every = _thread_pair(solver, "loop")
    for p, q in zip(one.coefs_ + one.intercepts_, every.coefs_ + every.intercepts_):
        assert np.array_equal(p, q)
    assert one.loss_ == every.loss_
    assert np.array_equal(one.predict_proba(X), every.predict_proba(X))


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
def test_vectorized_backend_agrees_across_thread_counts(solver):
    # BLAS sums a product in an order that depends on its thread count and on
    # the CPU's kernels, so the vectorized backend promises agreement, not bits:
    # each gradient to about 1e-13 (test_vectorized_gradient_agrees_across_blas_threads),
    # and a short fit, where those differences compound, to 1e-9.
    X, one, every = _thread_pair(solver, "vectorized")
    assert rel_diff(one.coefs_ + one.intercepts_, every.coefs_ + every.intercepts_) <= 1e-9
    assert one.loss_ == pytest.approx(every.loss_, rel=1e-9)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_vectorized_gradient_agrees_across_blas_threads(dtype, tolerance):
    from threadpoolctl import threadpool_limits

    from fastbp import loss_and_gradients

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 200)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 3000)]
    coefs = [rng.normal(scale=0.1, size=(200, 256)).astype(dtype), rng.normal(scale=0.1, size=(256, 10)).astype(dtype)]
    intercepts = [np.zeros(256, dtype), np.zeros(10, dtype)]
    results = []
    for threads in (1, None):
        with threadpool_limits(limits=threads, user_api="blas"):
            results.append(loss_and_gradients(coefs, intercepts, X, Y, backend="vectorized", alpha=1e-3))
    (loss_1, w_1, b_1), (loss_n, w_n, b_n) = results
    assert loss_1 == pytest.approx(loss_n, rel=tolerance)
    assert rel_diff(w_1 + b_1, w_n + b_n) <= tolerance
