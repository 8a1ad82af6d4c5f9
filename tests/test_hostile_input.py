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
