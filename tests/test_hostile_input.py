"""Hostile input to the estimators: each row of the scale-out issue's table.

Every bad input ends in a ValueError or TypeError naming the problem (the
same exception class scikit-learn raises), never a crash in compiled code;
the inputs scikit-learn accepts work and give scikit-learn's kind of result.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from fastbp import MLPClassifier, MLPRegressor

X, y = load_iris(return_X_y=True)
FAST = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _same_error(fast_cls, sk_cls, X_bad, y_bad, match, **fit_kwargs):
    with pytest.raises(Exception) as sk_error:
        sk_cls(**FAST).fit(X_bad, y_bad, **fit_kwargs)
    with pytest.raises(sk_error.type, match=match):
        fast_cls(**FAST).fit(X_bad, y_bad, **fit_kwargs)


BAD_INPUTS = {
    "nan in sample_weight": (X, y, r"(?i)nan|infinity", {"sample_weight": np.r_[np.nan, np.ones(149)]}),
    "empty X": (X[:0], y[:0], r"(?i)0 sample", {}),
    "1-D X": (X[:, 0], y, r"(?i)2D array", {}),
    "3-D X": (X.reshape(150, 2, 2), y, r"(?i)dim", {}),
    "X and y lengths differ": (X, y[:-1], r"(?i)inconsistent numbers of samples", {}),
    "complex X": (X.astype(complex), y, r"(?i)complex", {}),
    "sparse X with an explicit NaN": (sp.csr_matrix(np.where(X > 7, np.nan, X)), y, r"(?i)nan", {}),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("fast_cls, sk_cls", [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)])
def test_bad_input_raises_what_sklearn_raises(case, fast_cls, sk_cls):
    X_bad, y_bad, match, kwargs = BAD_INPUTS[case]
    _same_error(fast_cls, sk_cls, X_bad, y_bad, match, **kwargs)


def test_string_targets_for_the_regressor_raise_a_type_error_naming_them():
    """scikit-learn fails inside NumPy (a TypeError subclass about a ufunc loop);
    fastbp raises the same class of error, saying what is wrong."""
    y_text = np.array(["a", "b", "c"])[y]
    with pytest.raises(TypeError):
        SkMLPRegressor(**FAST).fit(X, y_text)
    with pytest.raises(TypeError, match=r"(?i)numeric targets"):
        MLPRegressor(**FAST).fit(X, y_text)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_integer_X_and_string_labels_work_as_in_sklearn(solver):
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    X_int = np.round(X * 10).astype(np.int64)
    fast = MLPClassifier(**FAST, solver=solver).fit(X_int, labels)
    sk = SkMLPClassifier(**FAST, solver=solver).fit(X_int, labels)
    assert fast.coefs_[0].dtype == np.float64
    np.testing.assert_array_equal(fast.classes_, sk.classes_)
    np.testing.assert_allclose(fast.predict_proba(X_int), sk.predict_proba(X_int), rtol=1e-6, atol=1e-9)


def test_one_sample_fits_and_predicts():
    fast = MLPRegressor(**FAST).fit(X[:1], X[:1, 0])
    assert fast.predict(X[:3]).shape == (3,)


def test_one_class_predicts_that_class():
    fast = MLPClassifier(**FAST).fit(X[:40], np.zeros(40, dtype=int) + 7)
    np.testing.assert_array_equal(fast.predict(X), np.full(150, 7))


def test_refit_rejected_for_bad_input_leaves_the_model_exactly_as_it_was():
    model = MLPClassifier(**FAST).fit(X, y)
    before = pickle.dumps(model)
    X_bad = X.copy()
    X_bad[3, 1] = np.inf
    with pytest.raises(ValueError):
        model.fit(X_bad, y)
    with pytest.raises(ValueError):
        model.partial_fit(X[:, :2], y)
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("solver, weights", [
    ("sgd", "all subnormal"), ("adam", "all subnormal"), ("lbfgs", "all subnormal"),
    ("sgd", "one subnormal per minibatch"), ("adam", "one subnormal per minibatch"),
])
def test_subnormal_sample_weights_train_as_scikit_learn_does(solver, weights):
    """Weights whose minibatch sums have no finite reciprocal: scikit-learn
    divides by the sum and trains; so does fastbp (they gave "diverged", and
    lbfgs a NaN loss). With alpha=0 all equal weights make the model of
    sample_weight=1."""
    if weights == "all subnormal":
        sw, batch_size = np.full(len(y), 1e-312), 200
    else:
        sw, batch_size = np.where(np.arange(len(y)) % 7 == 3, 1e-310, 1.0), 1
    params = dict(FAST, solver=solver, alpha=0.0, batch_size=batch_size)
    ours = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    theirs = SkMLPClassifier(**params).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    if weights == "all subnormal":
        unweighted = MLPClassifier(**params).fit(X, y)
        np.testing.assert_allclose(ours.predict_proba(X), unweighted.predict_proba(X), rtol=1e-8)


def test_float32_subnormal_sample_weights_train_as_weights_of_one():
    """The same in float32, whose subnormals start at 1.2e-38."""
    X32 = X.astype(np.float32)
    params = dict(FAST, solver="adam", alpha=0.0)
    tiny = MLPClassifier(**params).fit(X32, y, sample_weight=np.full(len(y), 1e-42, dtype=np.float32))
    ones = MLPClassifier(**params).fit(X32, y)
    assert tiny.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(tiny.predict_proba(X32), ones.predict_proba(X32), rtol=1e-4)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_weights_rescaled_with_alpha_give_the_unscaled_model(solver):
    """Weights below 2^-970 are scaled up by a power of two, and alpha with
    them: the penalty ½ α ‖W‖² / Σ s, the losses and validation losses are
    those of the unscaled problem, to rounding."""
    scale = 2.0**-1000
    params = dict(FAST, solver=solver, alpha=1e-3, max_iter=5)
    if solver == "adam":
        params.update(early_stopping=True, validation_fraction=0.2)
    scaled = MLPClassifier(**dict(params, alpha=1e-3 * scale)).fit(X, y, sample_weight=np.full(len(y), scale))
    plain = MLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(scaled.loss_, plain.loss_, rtol=1e-12)
    for a, b in zip(scaled.coefs_ + scaled.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    if solver == "adam":
        np.testing.assert_allclose(scaled.validation_loss_curve_, plain.validation_loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("dtype, weights", [(np.float64, [1e-320, 1e300]), (np.float32, [1e-44, 1e36])])
def test_weights_too_wide_a_range_to_scale_train_as_before(dtype, weights):
    """Beside huge weights, subnormal ones cannot be scaled up: the weights are
    left as they are, and a minibatch that holds a normal weight trains, as
    scikit-learn's does."""
    sw = np.ones(len(y), dtype=dtype)
    sw[:2] = weights
    Xd = X.astype(dtype)
    for solver in ("lbfgs", "adam"):
        ours = MLPClassifier(**FAST, solver=solver).fit(Xd, y, sample_weight=sw)
        theirs = SkMLPClassifier(**FAST, solver=solver).fit(Xd, y, sample_weight=sw)
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-3 if dtype == np.float32 else 1e-9)
