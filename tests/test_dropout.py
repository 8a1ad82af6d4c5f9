"""Dropout (issue 16): inverted dropout on the hidden units, masks from a
counter-based hash shared by both backends.

The gradient reference is an independent NumPy forward pass of the thinned
network (tests/_reference.py's activations and losses, the masks applied by
hand) under central differences; the rest compares fits against each other
and against scikit-learn's MLP.
"""

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_regression
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.utils._param_validation import InvalidParameterError

import fastbp._mlp
from _reference import HIDDEN_ACTIVATIONS, activate, central_differences, per_sample_loss
from fastbp import MLPClassifier, MLPRegressor, _loop, _vectorized
from fastbp._activations import ACTIVATION_CODES
from fastbp._dropout import dropout_factors, epoch_key
from fastbp._losses import LOSS_CODES
from fastbp._params import n_params, pack, unpack

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FIT = dict(hidden_layer_sizes=(24, 12), max_iter=4, batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


def rel_diff(a, b):
    return max(np.linalg.norm(p - q) / np.linalg.norm(q)
               for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


def test_masks_drop_each_unit_with_probability_p_and_keep_the_mean():
    factors = np.empty((4000, 50))
    dropout_factors(factors, epoch_key(7, 3), 0, 0, 0.3)
    dropped = factors == 0
    # 200 000 Bernoulli(0.3) draws: 6 standard deviations is ±0.006.
    assert abs(dropped.mean() - 0.3) < 0.006
    assert np.all(factors[~dropped] == 1 / 0.7)
    assert abs(factors.mean() - 1.0) < 0.01
    # Neither rows nor units are correlated in a way the means would show.
    assert np.all(np.abs(dropped.mean(axis=0) - 0.3) < 0.1)
    assert np.all(np.abs(dropped.reshape(-1, 1000).mean(axis=1) - 0.3) < 0.05)


def test_masks_depend_on_seed_epoch_position_and_unit_only():
    whole = np.empty((20, 30))
    dropout_factors(whole, epoch_key(1, 0), 0, 0, 0.5)
    part = np.empty((5, 10))
    dropout_factors(part, epoch_key(1, 0), 7, 12, 0.5)
    np.testing.assert_array_equal(part, whole[7:12, 12:22])
    for key in (epoch_key(2, 0), epoch_key(1, 1)):
        other = np.empty((20, 30))
        dropout_factors(other, key, 0, 0, 0.5)
        assert not np.array_equal(other == 0, whole == 0)


def thinned_loss(coefs, intercepts, X, Y, factors, activation, alpha):
    """Log-loss of a softmax network whose hidden activations are multiplied by factors."""
    a = X
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        hidden = layer < len(coefs) - 1
        a = activate(activation if hidden else "softmax", a @ W + b)
        if hidden:
            a = a * factors[layer]
    losses = per_sample_loss("softmax", "log_loss", a, Y, np.finfo(np.float64).eps)
    penalty = 0.5 * alpha * sum((W**2).sum() for W in coefs)
    return (losses.sum() + penalty) / X.shape[0]


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_gradient_of_the_thinned_network_matches_central_differences(activation):
    rng = np.random.default_rng(3)
    units = np.array([6, 7, 5, 3])
    n, rate, key, position0 = 11, 0.4, epoch_key(9, 4), 0
    params = rng.normal(scale=0.7, size=n_params(units))
    X = rng.normal(size=(n, 6))
    Y = np.eye(3)[rng.integers(0, 3, n)]
    factors = [np.empty((n, u)) for u in units[1:-1]]
    dropout_factors(factors[0], key, position0, 0, rate)
    dropout_factors(factors[1], key, position0, units[1], rate)
    assert 0 < sum((f == 0).sum() for f in factors) < sum(f.size for f in factors)

    codes = (ACTIVATION_CODES[activation], ACTIVATION_CODES["softmax"], LOSS_CODES["log_loss"])
    inputs = _loop.input_arrays(X, np.float64)
    eps = float(np.finfo(np.float64).eps)
    loop_grads, vec_grads = np.empty_like(params), np.empty_like(params)
    work = _loop.Workspace(units, n, np.float64, dropout=True)
    loop_loss = _loop.backprop(params, units, inputs, Y, np.ones(n), codes, 0.01, eps, loop_grads, work,
                                  (rate, key))
    vec_loss = _vectorized.backprop(params, units, _vectorized.input_arrays(X, np.float64), Y, np.ones(n), codes, 0.01, eps, vec_grads,
                                    dropout=(rate, key))

    coefs, intercepts = unpack(params, units)
    reference = thinned_loss(coefs, intercepts, X, Y, factors, activation, 0.01)
    assert sum(loop_loss) == pytest.approx(reference, rel=1e-12)
    assert sum(vec_loss) == pytest.approx(reference, rel=1e-12)
    numeric = pack(*central_differences(
        lambda c, b: thinned_loss(c, b, X, Y, factors, activation, 0.01), coefs, intercepts, 1e-6), np.float64)
    # relu's kink: a step of 1e-6 never crosses it at these random points.
    assert np.abs(loop_grads - numeric).max() < 1e-7 * max(1.0, np.abs(numeric).max())
    np.testing.assert_allclose(vec_grads, loop_grads, rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_model_for_any_thread_count_and_both_backends_agree(digits, dtype):
    X, y = digits[0].astype(dtype), digits[1]
    fits = {(backend, threads): MLPClassifier(dropout=0.25, activation="tanh", backend=backend,
                                              n_threads=threads, **FIT).fit(X, y)
            for backend, threads in (("loop", 1), ("loop", 2), ("vectorized", 1))}
    one, two, vectorized = fits[("loop", 1)], fits[("loop", 2)], fits[("vectorized", 1)]
    assert one.coefs_[0].dtype == dtype
    assert same_weights(one, two)
    assert rel_diff(vectorized, one) < (1e-8 if dtype == np.float64 else 1e-4)
    assert same_weights(one, MLPClassifier(dropout=0.25, activation="tanh", n_threads=1, **FIT).fit(X, y))


def test_dropout_changes_the_model_and_the_seed_changes_the_masks(digits):
    X, y = digits
    plain = MLPClassifier(**FIT).fit(X, y)
    dropped = MLPClassifier(dropout=0.3, **FIT).fit(X, y)
    reseeded = MLPClassifier(dropout=0.3, **{**FIT, "random_state": 1}).fit(X, y)
    assert rel_diff(dropped, plain) > 1e-3
    assert not same_weights(dropped, reseeded)
    # The thinned networks fit the training data worse, epoch by epoch.
    assert all(d > p for d, p in zip(dropped.loss_curve_, plain.loss_curve_))


def test_zero_dropout_is_scikit_learns_model(digits):
    X, y = digits
    ours = MLPClassifier(dropout=0.0, early_stopping=True, **FIT).fit(X, y)
    theirs = SkMLPClassifier(early_stopping=True, **FIT).fit(X, y)
    assert rel_diff(ours, theirs) < 1e-12


def test_sparse_input_gives_the_dense_model(digits):
    X, y = digits
    dense = MLPClassifier(dropout=0.2, **FIT).fit(X, y)
    sparse = MLPClassifier(dropout=0.2, **FIT).fit(sp.csr_matrix(X), y)
    assert same_weights(dense, sparse)


def test_predict_uses_the_whole_unscaled_network(digits):
    X, y = digits
    model = MLPClassifier(dropout=0.5, **FIT).fit(X, y)
    # scikit-learn's MLP has no dropout: its predict is the plain network.
    np.testing.assert_allclose(model.predict_proba(X), model.to_sklearn().predict_proba(X), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))


def test_masks_are_keyed_by_the_cumulative_epoch(digits, monkeypatch):
    X, y = digits
    epochs = []

    def spy(seed, epoch):
        epochs.append(epoch)
        return epoch_key(seed, epoch)

    monkeypatch.setattr(fastbp._mlp, "epoch_key", spy)
    model = MLPClassifier(dropout=0.2, **FIT).fit(X, y)
    model.partial_fit(X, y)
    model.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert epochs == [0, 1, 2, 3, 4, 5, 6]
    assert len(model.loss_curve_) == 7


def fit_weights(params, X, y):
    model = MLPRegressor(**params).fit(X, y)
    return model.coefs_ + model.intercepts_


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_same_model_under_either_joblib_backend(backend):
    X, y = make_regression(n_samples=300, n_features=8, noise=0.1, random_state=0)
    params = dict(dropout=0.2, **FIT)
    direct = fit_weights(params, X, y)
    with joblib.parallel_backend(backend, n_jobs=2):
        results = joblib.Parallel()(joblib.delayed(fit_weights)(params, X, y) for _ in range(2))
    for weights in results:
        assert all(np.array_equal(a, b) for a, b in zip(weights, direct))


def test_lbfgs_with_dropout_raises_and_keeps_the_model(digits):
    X, y = digits
    model = MLPClassifier(solver="lbfgs", **FIT).fit(X, y)
    before = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match="dropout=0.5 needs solver='sgd' or 'adam'"):
        model.set_params(dropout=0.5).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(model.coefs_, before))


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_outside_zero_one_raises(digits, rate):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="'dropout' parameter"):
        MLPClassifier(dropout=rate, **FIT).fit(X, y)
