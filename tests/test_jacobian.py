"""fastbp.jacobian: forward mode (a tangent per input feature) and reverse mode (an adjoint
per output) give the same ∂output/∂input, and both match central differences of the
estimator's own predict_proba / predict, or of fastbp.forward."""

import copy
import re
import warnings

import numpy as np
import pytest
from _reference import make_network, reference_forward, rel_err
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp import MLPClassifier, MLPRegressor

HIDDEN = ("identity", "logistic", "tanh", "relu")
TASKS = ("binary", "multiclass", "multilabel", "squared_error", "poisson")
MODES = ("forward", "reverse")
STEP = 1e-6
N_FEATURES = 4


def _data(task, rng, n_samples=40):
    X = rng.standard_normal((n_samples, N_FEATURES))
    # Noisy labels keep the fitted probabilities away from 0 and 1, where the
    # Jacobian is tiny beside the rounding error of central differences.
    noisy = X + rng.standard_normal(X.shape)
    if task == "binary":
        return X, (noisy[:, 0] + noisy[:, 1] > 0).astype(int)
    if task == "multiclass":
        return X, np.argmax(noisy[:, :3], axis=1)
    if task == "multilabel":
        return X, (noisy[:, :3] > 0).astype(int)
    if task == "squared_error":
        return X, np.column_stack([X[:, 0] - X[:, 1] ** 2, np.sin(X[:, 2])])
    return X, rng.poisson(np.exp(0.5 * X[:, 0]))


_FITTED = {}


def _fitted(task, activation):
    """A small estimator fitted by L-BFGS (not to convergence: the point is a generic network)."""
    if (task, activation) not in _FITTED:
        X, y = _data(task, np.random.default_rng(0))
        # One thread: a 40-sample fit gains nothing from more, and loses much to a busy machine.
        params = dict(hidden_layer_sizes=(5, 4), activation=activation, solver="lbfgs", max_iter=30, alpha=0.05,
                      random_state=0, n_threads=1)
        if task in ("binary", "multiclass", "multilabel"):
            model = MLPClassifier(**params)
        else:
            model = MLPRegressor(loss=task, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        _FITTED[task, activation] = model
    return _FITTED[task, activation]


def _output(model, X):
    """What the Jacobian differentiates: predict_proba for a classifier, predict for a regressor."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    return np.asarray(model.predict(X)).reshape(X.shape[0], -1)


def _central_differences(f, X, step=STEP):
    """J[n, o, i] ≈ (f(X + h e_i) − f(X − h e_i))[n, o] / 2h, feature by feature."""
    columns = []
    for i in range(X.shape[1]):
        shift = np.zeros(X.shape[1])
        shift[i] = step
        columns.append((f(X + shift) - f(X - shift)) / (2 * step))
    return np.stack(columns, axis=2)


def _points(model, n_points=6):
    """Random points, keeping those where every hidden pre-activation is well clear of 0
    compared with the step: central differences are only right away from a relu kink."""
    X = np.random.default_rng(1).standard_normal((4 * n_points, N_FEATURES))
    zs, _ = reference_forward(model.coefs_, model.intercepts_, X, model.activation, model.out_activation_)
    clear = np.all([np.abs(z).min(axis=1) > 100 * STEP for z in zs[:-1]], axis=0)
    assert clear.sum() >= n_points
    return X[clear][:n_points]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", HIDDEN)
def test_forward_and_reverse_modes_agree_float64(task, activation):
    model = _fitted(task, activation)
    X = _points(model)
    forward = fastbp.jacobian(model, X, mode="forward")
    reverse = fastbp.jacobian(model, X, mode="reverse")
    assert forward.dtype == reverse.dtype == np.float64
    assert rel_err(forward, reverse) < 1e-10


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("mode", MODES)
def test_jacobian_matches_central_differences_of_predictions(task, activation, mode):
    model = _fitted(task, activation)
    X = _points(model)
    J = fastbp.jacobian(model, X, mode=mode)
    numeric = _central_differences(lambda Z: _output(model, Z), X)
    assert J.shape == numeric.shape == (X.shape[0], _output(model, X[:1]).shape[1], N_FEATURES)
    assert rel_err(J, numeric) < 1e-6


def test_binary_classifier_has_two_columns_that_sum_to_zero():
    model = _fitted("binary", "tanh")
    assert model.n_outputs_ == 1
    J = fastbp.jacobian(model, _points(model))
    assert J.shape[1] == 2
    # predict_proba's columns are 1 − p and p: their derivatives cancel.
    np.testing.assert_array_equal(J[:, 0], -J[:, 1])


@pytest.mark.parametrize("out_activation", ["softmax", "logistic", "identity", "tanh", "exp", "relu"])
@pytest.mark.parametrize("hidden", [(), (6,), (5, 4, 3)], ids=["no-hidden", "one-hidden", "three-hidden"])
def test_functional_form_matches_central_differences_of_forward(out_activation, hidden):
    rng = np.random.default_rng(2)
    coefs, intercepts = make_network(rng, [N_FEATURES, *hidden, 3])
    X = rng.standard_normal((5, N_FEATURES))
    options = dict(activation="tanh", out_activation=out_activation)
    numeric = _central_differences(lambda Z: fastbp.forward(coefs, intercepts, Z, **options), X)
    for mode in MODES:
        J = fastbp.jacobian(coefs, X, intercepts=intercepts, mode=mode, **options)
        assert J.shape == (5, 3, N_FEATURES)
        assert rel_err(J, numeric) < 1e-6


def test_float32_stays_float32_and_matches_float64():
    rng = np.random.default_rng(3)
    coefs, intercepts = make_network(rng, [N_FEATURES, 8, 8, 5])
    X = rng.standard_normal((7, N_FEATURES))
    options = dict(intercepts=intercepts, activation="logistic", out_activation="softmax")
    exact = fastbp.jacobian(coefs, X, **options)
    for mode in MODES:
        J = fastbp.jacobian(coefs, X.astype(np.float32), mode=mode, **options)
        assert J.dtype == np.float32
        assert rel_err(J, exact) < 1e-5


def test_float32_estimator_gives_float32_jacobian():
    X, y = _data("multiclass", np.random.default_rng(0))
    X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0, n_threads=1).fit(X, y)
    assert model.coefs_[0].dtype == np.float32
    J = fastbp.jacobian(model, X[:4], mode="forward")
    assert J.dtype == np.float32
    assert rel_err(J, fastbp.jacobian(model, X[:4], mode="reverse")) < 1e-5


@pytest.mark.parametrize("kind", [np.int64, np.bool_, np.float16, "mixed"])
def test_assigned_weights_of_other_dtypes_differentiate_in_float64_as_predict_computes(kind):
    """The dtype was coefs_[0]'s: integer weights gave an integer Jacobian
    (X truncated), bool ones a Numba typing error, float16 NotImplementedError."""
    model = copy.deepcopy(_fitted("multiclass", "tanh"))
    X = np.random.default_rng(1).normal(size=(3, N_FEATURES))
    weights = {np.float16: model.coefs_, np.bool_: [c > 0 for c in model.coefs_]}.get(
        kind, [np.sign(c) for c in model.coefs_])
    if kind == "mixed":
        model.coefs_ = [weights[0].astype(np.float32)] + [w.astype(np.float64) for w in weights[1:]]
    else:
        model.coefs_ = [w.astype(kind) for w in weights]
    want = _central_differences(model.predict_proba, X)
    J = fastbp.jacobian(model, X)
    assert J.dtype == model.predict_proba(X).dtype == np.float64
    assert rel_err(J, want) < 1e-6


def test_assigned_weights_predict_refuses_are_refused_alike():
    model = copy.deepcopy(_fitted("multiclass", "relu"))
    model.coefs_ = model.coefs_[:-1] + [model.coefs_[-1][:, :2]]
    X = np.zeros((2, N_FEATURES))
    with pytest.raises(ValueError, match=r"coefs_\[2\] has shape") as refused:
        model.predict_proba(X)
    with pytest.raises(ValueError, match=re.escape(str(refused.value))):
        fastbp.jacobian(model, X)


def test_float32_estimator_names_an_input_beyond_float32_as_predict_does():
    X, y = _data("multiclass", np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X.astype(np.float32), y)
    with pytest.raises(ValueError, match=re.escape("Input X contains infinity or a value too large for "
                                                   "dtype('float32')")):
        fastbp.jacobian(model, np.full((1, N_FEATURES), 1e300))


def test_scikit_learn_estimator_matches_its_own_predict_proba():
    X, y = _data("multiclass", np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SkMLPClassifier(hidden_layer_sizes=(5,), activation="tanh", solver="lbfgs", max_iter=20,
                                random_state=0).fit(X, y)
    X = X[:5]
    numeric = _central_differences(model.predict_proba, X)
    assert rel_err(fastbp.jacobian(model, X), numeric) < 1e-6


@pytest.mark.parametrize("mode", ["backward", "Forward", "", None, 1])
def test_unknown_mode_raises(mode):
    model = _fitted("multiclass", "relu")
    with pytest.raises(ValueError, match="Unknown mode"):
        fastbp.jacobian(model, np.zeros((2, N_FEATURES)), mode=mode)


def test_bad_inputs_raise_value_errors():
    model = _fitted("multiclass", "relu")
    with pytest.raises(ValueError, match="features"):
        fastbp.jacobian(model, np.zeros((2, N_FEATURES + 1)))
    with pytest.raises(ValueError, match="NaN"):
        fastbp.jacobian(model, np.full((2, N_FEATURES), np.nan))
    with pytest.raises(ValueError, match="read from the estimator"):
        fastbp.jacobian(model, np.zeros((2, N_FEATURES)), activation="tanh")
    with pytest.raises(NotFittedError):
        fastbp.jacobian(MLPClassifier(), np.zeros((2, N_FEATURES)))
    with pytest.raises(ValueError, match="needs an MLPClassifier or MLPRegressor, got StandardScaler"):
        fastbp.jacobian(StandardScaler().fit(np.ones((2, N_FEATURES))), np.zeros((2, N_FEATURES)))

    coefs, intercepts = make_network(np.random.default_rng(0), [N_FEATURES, 3, 2])
    with pytest.raises(ValueError, match="needs intercepts"):
        fastbp.jacobian(coefs, np.zeros((2, N_FEATURES)))
    with pytest.raises(ValueError, match="NaN"):
        fastbp.jacobian(coefs, np.full((2, N_FEATURES), np.nan), intercepts=intercepts)
    with pytest.raises(ValueError, match="features"):
        fastbp.jacobian(coefs, np.zeros((2, N_FEATURES + 1)), intercepts=intercepts)
    with pytest.raises(ValueError, match="Unknown activation"):
        fastbp.jacobian(coefs, np.zeros((2, N_FEATURES)), intercepts=intercepts, activation="softmax")
