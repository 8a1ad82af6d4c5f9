"""Errors that name their cause (issue: "fit diverged" given where the cause is elsewhere).

Inputs that used to end in non-finite weights, blamed on learning_rate_init,
are checked before training and named: class_weight, a y that overflows when
cast, alpha, and a minibatch whose sample weights sum to zero. Where
scikit-learn raises, fastbp raises the same exception class with scikit-learn's
text in its message, checked beside scikit-learn's MLP.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
SOLVERS = ["sgd", "adam", "lbfgs"]
SK_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values "
                 "and need to be preprocessed.")
SK_ZERO_SUM = "Weights sum to zero, can't be normalized"


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    return X, (X[:, 0] > 0).astype(int), X[:, 0].copy()


def assert_unfitted(est):
    assert not hasattr(est, "coefs_")


# ------------------------------------------------------------------ class_weight


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("class_weight, match", [
    ({0: 0.0, 1: 0.0}, r"Sample weights must contain at least one non-zero number\..*class_weight"),
    ({0: np.inf, 1: 1.0}, r"class_weight must be finite.*\[0\]"),
    ({0: 1.0, 1: np.nan}, r"class_weight must be finite.*\[1\]"),
    ({0: -1.0, 1: 1.0}, r"Negative values in data passed to class_weight.*\[0\]"),
])
def test_bad_class_weight_is_named_before_training(data, solver, class_weight, match):
    X, y, _ = data
    est = MLPClassifier(class_weight=class_weight, solver=solver, **SMALL)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert_unfitted(est)


def test_negative_class_weight_rejected_as_negative_sample_weight_is(data):
    """fastbp's stricter check (scikit-learn's MLP accepts negative sample_weight), now for both."""
    X, y, _ = data
    sw = np.ones(len(y))
    sw[0] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MLPClassifier(**SMALL).fit(X, y, sample_weight=sw)
    with pytest.raises(ValueError, match="Negative values in data passed to class_weight"):
        MLPClassifier(class_weight={0: -0.5}, **SMALL).fit(X, y)


def test_class_weight_zeroing_every_sample_with_sample_weight(data):
    """Each factor has a non-zero weight, their product has none."""
    X, y, _ = data
    sw = (y == 0).astype(float)
    with pytest.raises(ValueError, match=r"Sample weights must contain at least one non-zero number\."):
        MLPClassifier(class_weight={0: 0.0}, **SMALL).fit(X, y, sample_weight=sw)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_balanced_class_weight_of_a_class_without_sample_weight(data):
    """'balanced' divides by a class's summed sample_weight: zero gives it infinity."""
    X, y, _ = data
    sw = (y == 0).astype(float)
    with pytest.raises(ValueError, match=r"'balanced'.*\[1\].*sample_weight sums to zero"):
        MLPClassifier(class_weight="balanced", **SMALL).fit(X, y, sample_weight=sw)


# ------------------------------------------------------------------ y beyond the training dtype


@pytest.mark.parametrize("solver", SOLVERS)
def test_longdouble_y_beyond_float64_is_named(data, solver):
    if np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("longdouble is float64 on this platform")
    X, _, y = data
    y = y.astype(np.longdouble)
    y[3] = np.longdouble("1e400")
    est = MLPRegressor(solver=solver, **SMALL)
    with pytest.raises(ValueError, match=re.escape("Input y contains infinity or a value too large for "
                                                   "dtype('float64')")):
        est.fit(X, y)
    assert_unfitted(est)
    # scikit-learn's own check sees the same infinity once y is float64.
    with np.errstate(over="ignore"):
        y64 = y.astype(np.float64)
    with pytest.raises(ValueError, match=re.escape("Input y contains infinity or a value too large for "
                                                   "dtype('float64')")):
        SkMLPRegressor(solver=solver, **SMALL).fit(X, y64)


def test_float64_y_beyond_float32_training_is_named(data):
    """sgd and adam train in X's dtype: float32 X casts y to float32."""
    X, _, y = data
    y = y.copy()
    y[0] = 1e39
    with pytest.raises(ValueError, match=re.escape("Input y contains infinity or a value too large for "
                                                   "dtype('float32')")):
        MLPRegressor(solver="adam", **SMALL).fit(X.astype(np.float32), y)


# ------------------------------------------------------------------ alpha


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", SOLVERS)
def test_overflowing_alpha_is_named(data, cls, solver):
    X, yc, yr = data
    y = yc if cls is MLPClassifier else yr
    est = cls(alpha=1e300, solver=solver, **SMALL)
    with pytest.raises(ValueError, match=r"alpha=1e\+300 is too large"):
        est.fit(X, y)
    assert_unfitted(est)


def test_overflowing_alpha_in_float32_training(data):
    X, _, y = data
    with pytest.raises(ValueError, match="alpha=1e[+]30 is too large.*float32"):
        MLPRegressor(alpha=1e30, solver="adam", **SMALL).fit(X.astype(np.float32), y)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", [np.float16, np.float32, np.longdouble])
def test_an_alpha_of_a_numpy_float_type_is_checked_quietly(data, solver, kind):
    """A grid of np.float32 alphas is common: the overflow check compares it
    with float64's largest value without NumPy 2 casting that bound to
    float32 (its promotion rules; an overflow warning, an error under -W
    error), and fits the model the same alpha as a Python float fits."""
    X, yc, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fitted = MLPClassifier(alpha=kind(0.01), solver=solver, **SMALL).fit(X, yc)
    expected = MLPClassifier(alpha=float(kind(0.01)), solver=solver, **SMALL).fit(X, yc)
    for a, b in zip(fitted.coefs_, expected.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="is too large"):
        MLPClassifier(alpha=np.float64(1e300), solver=solver, **SMALL).fit(X, yc)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_large_alpha_below_the_bound_still_fits(data, solver):
    """sgd is left out: its steps scale with alpha, and diverge (as scikit-learn's) for an alpha this large."""
    X, _, y = data
    est = MLPRegressor(alpha=1e100, solver=solver, **SMALL).fit(X, y)
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)


# ------------------------------------------------------------------ minibatches weighing zero


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_minibatch_of_zero_weight_raises_sklearns_zero_division(data, solver, backend):
    X, _, y = data
    sw = np.ones(len(y))
    sw[20:40] = 0.0  # the second minibatch of 20, unshuffled
    params = dict(solver=solver, shuffle=False, batch_size=20, **SMALL)
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM)):
        SkMLPRegressor(**params).fit(X, y, sample_weight=sw)
    est = MLPRegressor(backend=backend, **params)
    where = r".*rows 20 to 39 of this epoch's order.*rows \[20, 21, 22, 23, 24\]\.\.\. of X"
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM) + where):
        est.fit(X, y, sample_weight=sw)
    assert_unfitted(est)


def test_shuffled_minibatch_of_zero_weight(data):
    """Weight on two rows alone: some minibatch of 5 of the shuffled order has none."""
    X, y, _ = data
    sw = np.zeros(len(y))
    sw[[0, 1]] = 1.0
    params = dict(solver="adam", batch_size=5, **SMALL)
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM)):
        SkMLPClassifier(**params).fit(X, y, sample_weight=sw)
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM) + ".*sample_weight.*class_weight"):
        MLPClassifier(**params).fit(X, y, sample_weight=sw)


def test_zero_weight_minibatch_smaller_than_five_rows_names_its_own_rows(data):
    """The message lists at most five of the minibatch's rows, and none beyond it."""
    X, y, _ = data
    for batch_size, zeroed in ((1, [7]), (2, [6, 7])):
        sw = np.ones(len(y))
        sw[zeroed] = 0.0
        params = dict(solver="sgd", shuffle=False, batch_size=batch_size, **SMALL)
        with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM)):
            SkMLPClassifier(**params).fit(X, y, sample_weight=sw)
        with pytest.raises(ZeroDivisionError, match=re.escape(f"; rows {zeroed} of X")):
            MLPClassifier(**params).fit(X, y, sample_weight=sw)


def test_minibatch_zeroed_by_class_weight(data):
    X, y, _ = data
    order = np.argsort(y, kind="stable")  # every class 0 row first
    X, y = X[order], y[order]
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM) + ".*class_weight"):
        MLPClassifier(class_weight={0: 0.0}, solver="sgd", shuffle=False, batch_size=10, **SMALL).fit(X, y)


def test_zero_weight_rows_in_weighted_minibatches_still_fit(data):
    X, _, y = data
    sw = np.ones(len(y))
    sw[::2] = 0.0
    est = MLPRegressor(solver="adam", batch_size=10, **SMALL).fit(X, y, sample_weight=sw)
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)


def test_zero_weight_partial_fit_keeps_previous_model(data):
    X, _, y = data
    est = MLPRegressor(solver="sgd", shuffle=False, batch_size=20, **SMALL).partial_fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    sw = np.ones(len(y))
    sw[:20] = 0.0
    with pytest.raises(ZeroDivisionError, match=re.escape(SK_ZERO_SUM)):
        est.partial_fit(X, y, sample_weight=sw)
    for before, after in zip(coefs, est.coefs_):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------------ non-finite weights


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_weights_message_contains_sklearns():
    rng = np.random.RandomState(0)
    X = rng.normal(scale=1e4, size=(120, 5))
    y = X[:, 0] * 1e3
    params = dict(hidden_layer_sizes=(7,), solver="sgd", activation="identity", max_iter=20,
                  learning_rate_init=1e10, random_state=0)
    with pytest.raises(ValueError, match=re.escape(SK_NON_FINITE)):
        SkMLPRegressor(**params).fit(X, y)
    with pytest.raises(ValueError) as raised:
        MLPRegressor(**params).fit(X, y)
    message = str(raised.value)
    assert message.startswith(SK_NON_FINITE)
    # fastbp's advice follows scikit-learn's text.
    assert "learning_rate_init" in message
    assert "keeps the state it had before this fit" in message


# ------------------------------------------------------------------ early stopping's stratified split


def test_early_stopping_single_member_class_message_matches_sklearn(data):
    X, _, _ = data
    y = np.zeros(len(X), dtype=int)
    y[0] = 1
    with pytest.raises(ValueError) as theirs:
        SkMLPClassifier(early_stopping=True, **SMALL).fit(X, y)
    with pytest.raises(ValueError) as ours:
        MLPClassifier(early_stopping=True, **SMALL).fit(X, y)
    assert str(ours.value) == str(theirs.value)
    # scikit-learn names the classes from 1.8 on; the split is on y_val == class, hence 'True'.
    assert "too few members" not in str(theirs.value) or str(ours.value).endswith(
        "Classes with too few members are: ['True']")


@pytest.mark.parametrize("labels", [[3, 7], [3, 5, 7]], ids=["binary", "multiclass"])
def test_early_stopping_split_matches_sklearn(data, labels):
    X, _, _ = data
    y = np.asarray(labels)[np.random.RandomState(1).randint(len(labels), size=len(X))]
    params = dict(early_stopping=True, validation_fraction=0.2, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPClassifier(**params).fit(X, y)
        theirs = SkMLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
