"""record_gradient_norms: per-epoch, per-layer norms of the weight gradients,
recorded inside the compiled epoch, and nothing recorded when not asked."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import fastbp
import fastbp._loop
from fastbp import MLPClassifier, MLPRegressor

X, y = load_iris(return_X_y=True)
PARAMS = dict(hidden_layer_sizes=(6, 5), random_state=0, solver="sgd", learning_rate_init=0.05, alpha=1e-3)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sklearn_gradient_norms(model, X, Y):
    """‖∂C/∂w^l‖ at model's weights from scikit-learn's own backprop (independent code)."""
    layers = [X] + [None] * (model.n_layers_ - 1)
    deltas = [None] * (model.n_layers_ - 1)
    coef_grads = [np.empty_like(c) for c in model.coefs_]
    intercept_grads = [np.empty_like(b) for b in model.intercepts_]
    _, coef_grads, _ = model._backprop(X, Y, None, layers, deltas, coef_grads, intercept_grads)
    return [np.linalg.norm(g) for g in coef_grads]


def test_full_batch_norms_equal_sklearns_gradient_at_each_epoch_start():
    """One minibatch per epoch: epoch e's record is the gradient at the weights
    after e epochs, which scikit-learn's own fit (the same trajectory, by the
    parity recipe) and backprop give independently."""
    params = dict(PARAMS, batch_size=X.shape[0], shuffle=False)
    fast = MLPClassifier(**params, max_iter=4, record_gradient_norms=True).fit(X, y)
    Y = np.eye(3)[y]
    expected = []
    for epochs in range(4):
        # 0 epochs: a step of 1e-300 leaves the initial weights exactly as drawn.
        lr = params["learning_rate_init"] if epochs else 1e-300
        sk = SkMLPClassifier(**dict(params, learning_rate_init=lr), max_iter=max(epochs, 1)).fit(X, y)
        expected.append(_sklearn_gradient_norms(sk, X, Y))
    assert fast.gradient_norms_.shape == (4, 3)
    np.testing.assert_allclose(fast.gradient_norms_, expected, rtol=1e-6)


def test_rows_follow_loss_curve_under_partial_fit_and_warm_start():
    model = MLPClassifier(**PARAMS, max_iter=3, record_gradient_norms=True, warm_start=True).fit(X, y)
    model.fit(X, y)
    model.partial_fit(X, y)
    assert model.gradient_norms_.shape == (len(model.loss_curve_), model.n_layers_ - 1) == (7, 3)
    assert np.isfinite(model.gradient_norms_).all() and (model.gradient_norms_ > 0).all()


def test_recording_switched_on_and_off_between_partial_fits_keeps_rows_by_epoch():
    """Row i is epoch i's: epochs trained with recording off get NaN rows,
    before the first recorded one and after it alike, and each recorded row
    is that epoch's own record (the same as a model recording throughout)."""
    model = MLPClassifier(**PARAMS, max_iter=3).fit(X, y)
    throughout = MLPClassifier(**PARAMS, max_iter=3, record_gradient_norms=True).fit(X, y)
    for record in (True, False, True):
        model.set_params(record_gradient_norms=record).partial_fit(X, y)
        throughout.partial_fit(X, y)
        assert model.gradient_norms_.shape == (len(model.loss_curve_), 3)
    recorded = np.array([False] * 3 + [True, False, True])
    assert np.isnan(model.gradient_norms_[~recorded]).all()
    np.testing.assert_array_equal(model.gradient_norms_[recorded], throughout.gradient_norms_[recorded])


def test_lbfgs_records_one_row_per_iteration():
    model = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=7, random_state=0,
                         record_gradient_norms=True).fit(X, X[:, 0])
    assert model.gradient_norms_.shape == (model.n_iter_, 2)


def test_loop_and_vectorized_record_the_same_norms():
    norms = [MLPClassifier(**PARAMS, max_iter=3, record_gradient_norms=True, backend=b).fit(X, y).gradient_norms_
             for b in ("loop", "vectorized")]
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-10)


def test_off_by_default_nothing_recorded_and_no_extra_pass(monkeypatch):
    """Structurally: the compiled epoch gets an empty norms array, so its
    recording branch never runs, and no attribute is filled."""
    seen = []
    original = fastbp._loop.train_epoch

    def spy(*args):
        seen.append(args[-2].shape[0])
        return original(*args)

    monkeypatch.setattr(fastbp._loop, "train_epoch", spy)
    model = MLPClassifier(**PARAMS, max_iter=3).fit(X, y)
    assert seen == [0, 0, 0]
    assert model.gradient_norms_ is None


def test_recording_switched_on_for_a_model_from_sklearn():
    """A model from scikit-learn has no gradient_norms_: its earlier epochs get NaN rows."""
    sk = SkMLPClassifier(**PARAMS, max_iter=3).fit(X, y)
    model = MLPClassifier.from_sklearn(sk).set_params(record_gradient_norms=True)
    model.partial_fit(X, y)
    assert model.gradient_norms_.shape == (4, 3)
    assert np.isnan(model.gradient_norms_[:3]).all() and (model.gradient_norms_[3] > 0).all()
