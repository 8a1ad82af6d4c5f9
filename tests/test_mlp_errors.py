"""Errors, divergence and interruption (issue 12, "Errors").

The same exception classes as scikit-learn for the same mistakes (checked against
scikit-learn in the test where scikit-learn raises too), fastbp's deliberate
stricter checks, a diverged fit keeping the previous model, and Ctrl-C.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

# A private module: pinned by the scikit-learn version the project tests (1.9).
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.fixes import parse_version

import fastbp
import fastbp._functional
import fastbp._loop
from fastbp import MLPClassifier, MLPRegressor, _mlp

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(7,), max_iter=5, batch_size=32, random_state=0)
PAIRS = [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)]
PAIR_IDS = ["classifier", "regressor"]

# sample_weight in MLP fit: scikit-learn 1.7.
needs_sample_weight = pytest.mark.skipif(
    parse_version(sklearn.__version__) < parse_version("1.7"),
    reason="MLP sample_weight needs scikit-learn >= 1.7",
)


@pytest.fixture(scope="module")
def clf_data():
    return make_classification(n_samples=150, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=150, n_features=6, noise=0.5, random_state=0)
    return X, y / y.std()


def _data_for(cls, clf_data, reg_data):
    return clf_data if cls is MLPClassifier else reg_data


def weights(est):
    return est.coefs_ + est.intercepts_


def snapshot(est):
    return [w.copy() for w in weights(est)]


def assert_weights_equal(est, saved):
    assert len(weights(est)) == len(saved)
    for w, s in zip(weights(est), saved):
        assert w.dtype == s.dtype
        assert np.array_equal(w, s)


# -------------------------------------------------------- parameter validation

SHARED_BAD_PARAMS = [
    dict(solver="foo"),
    dict(activation="softplus"),
    dict(alpha=-1.0),
    dict(learning_rate="cyclic"),
    dict(learning_rate_init=0.0),
    dict(max_iter=0),
    dict(batch_size=0),
    dict(batch_size="big"),
    dict(momentum=1.5),
    dict(beta_1=1.0),
    dict(validation_fraction=1.0),
    dict(n_iter_no_change=0),
    dict(max_fun=0),
    dict(tol=-1.0),
    dict(epsilon=0.0),
    dict(shuffle="yes"),
    dict(hidden_layer_sizes="wide"),
]


@pytest.mark.parametrize("bad", SHARED_BAD_PARAMS, ids=lambda d: "-".join(map(str, d.items())))
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_invalid_params_raise_like_sklearn(cls, sk_cls, bad, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    with pytest.raises(InvalidParameterError):
        sk_cls(**bad).fit(X, y)
    with pytest.raises(InvalidParameterError):
        cls(**bad).fit(X, y)


@pytest.mark.parametrize(
    "bad",
    [dict(backend="gpu"), dict(backend=None), dict(n_threads=0), dict(n_threads=-2),
     dict(n_threads=1.5), dict(n_threads="all")],
    ids=lambda d: "-".join(map(str, d.items())),
)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_invalid_fastbp_params_raise(cls, bad, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(**FAST, **bad)  # constructing never validates
    with pytest.raises(InvalidParameterError):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


@pytest.mark.parametrize("bad", [dict(backend="gpu"), dict(backend=["loop"]), dict(n_threads=0)],
                         ids=lambda d: "-".join(map(str, d.items())))
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_invalid_fastbp_params_set_after_fit_raise_in_predict(cls, bad, clf_data, reg_data):
    """set_params takes them unchecked; predict names them as fit would (a bare KeyError before)."""
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(**FAST).fit(X, y).set_params(**bad)
    with pytest.raises(InvalidParameterError, match=f"The '{next(iter(bad))}' parameter of {cls.__name__} must be"):
        est.predict(X)


@pytest.mark.parametrize("loss", ["foo", "poisson"])
def test_regressor_predict_reads_the_fitted_output_activation_not_loss(loss, reg_data):
    """scikit-learn's predict ignores a loss set after the fit: its output layer is out_activation_."""
    X, y = reg_data
    ours = MLPRegressor(**FAST).fit(X, y)
    theirs = SkMLPRegressor(**FAST).fit(X, y)
    want = ours.predict(X)
    np.testing.assert_allclose(want, theirs.predict(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ours.set_params(loss=loss).predict(X), want)
    np.testing.assert_array_equal(theirs.set_params(loss=loss).predict(X), theirs.set_params(loss="squared_error")
                                  .predict(X))


@pytest.mark.parametrize("fitted, changed, solver, call", [
    ("squared_error", "poisson", "adam", "partial_fit"), ("squared_error", "poisson", "adam", "warm_start"),
    ("poisson", "squared_error", "sgd", "partial_fit"), ("poisson", "squared_error", "sgd", "warm_start"),
    ("squared_error", "poisson", "lbfgs", "warm_start"),
])
def test_a_loss_changed_after_the_fit_is_refused_by_continued_training(fitted, changed, solver, call, reg_data):
    """scikit-learn trains on with the fitted pairing's a - y, not the new
    loss's gradient; here the call is refused and the model kept."""
    X, y = reg_data
    y = np.abs(y)
    est = MLPRegressor(**FAST, solver=solver, loss=fitted, warm_start=call == "warm_start").fit(X, y)
    before = [w.copy() for w in est.coefs_ + est.intercepts_]
    est.set_params(loss=changed)
    fitted_activation = "identity" if fitted == "squared_error" else "exp"
    with pytest.raises(ValueError, match=re.escape(f"out_activation_ is '{fitted_activation}', but loss='{changed}'")):
        est.partial_fit(X, y) if call == "partial_fit" else est.fit(X, y)
    for a, b in zip(before, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)
    est.set_params(loss=fitted)
    est.partial_fit(X, y) if call == "partial_fit" else est.fit(X, y)
    assert est.out_activation_ == fitted_activation


@pytest.mark.parametrize("bad", [dict(dropout=1.0), dict(dropout=-0.5), dict(dropout=float("nan")),
                                 dict(dropout="x"), dict(backend="gpu"), dict(record_gradient_norms="yes"),
                                 dict(class_weight="weird")],
                         ids=lambda d: "-".join(map(str, d.items())))
def test_partial_fit_of_a_fitted_model_checks_fastbps_own_params(bad, clf_data):
    """scikit-learn's partial_fit checks no parameter of a fitted model; its
    own, fastbp's are checked (dropout=1.0 trained silently with every hidden
    unit dropped, -0.5 failed on an internal size check)."""
    X, y = clf_data
    est = MLPClassifier(**FAST).partial_fit(X, y, classes=[0, 1, 2])
    saved, t = snapshot(est), est.t_
    est.set_params(**bad)
    with pytest.raises(InvalidParameterError, match=f"The '{next(iter(bad))}' parameter of MLPClassifier must be"):
        est.partial_fit(X, y)
    assert_weights_equal(est, saved)
    assert est.t_ == t


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_regressor_y_holding_none_is_named_as_nan(solver, reg_data):
    """A pandas object column with a missing value: scikit-learn's check of an
    object y runs before None becomes NaN, and it trains to a NaN loss."""
    X, y = reg_data
    y = np.array([None] + list(y[1:]), dtype=object)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor(**dict(FAST, solver=solver)).fit(X, y)


def test_invalid_regressor_loss(reg_data):
    X, y = reg_data
    with pytest.raises(InvalidParameterError):
        SkMLPRegressor(loss="absolute_error").fit(X, y)
    with pytest.raises(InvalidParameterError):
        MLPRegressor(loss="absolute_error").fit(X, y)


def test_invalid_params_in_partial_fit(clf_data):
    X, y = clf_data
    with pytest.raises(InvalidParameterError):
        MLPClassifier(alpha=-1.0).partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("hidden", [(0,), (5, 0), (-3,), [4, 0, 2]])
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_nonpositive_hidden_layer_sizes_is_value_error_at_fit(cls, sk_cls, hidden, clf_data,
                                                              reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(hidden_layer_sizes=hidden)  # no error at construction
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        sk_cls(hidden_layer_sizes=hidden).fit(X, y)


# ------------------------------------------------------------------- inputs


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_non_finite_X_is_value_error(cls, value, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    X = X.copy()
    X[3, 2] = value
    with pytest.raises(ValueError):
        cls(**FAST).fit(X, y)
    fitted = cls(**FAST).fit(np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0), y)
    with pytest.raises(ValueError):
        fitted.predict(X)


def test_non_finite_y_is_value_error(reg_data):
    X, y = reg_data
    y = y.copy()
    y[0] = np.nan
    with pytest.raises(ValueError):
        MLPRegressor(**FAST).fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_wrong_n_features_at_predict(cls, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        est.predict(np.hstack([X, X]))
    with pytest.raises(ValueError):
        est.score(X[:, :-1], y)
    if cls is MLPClassifier:
        with pytest.raises(ValueError, match="features"):
            est.predict_proba(X[:, :-1])


def test_wrong_n_features_at_warm_start_and_partial_fit(clf_data):
    X, y = clf_data
    est = MLPClassifier(warm_start=True, **FAST).fit(X, y)
    with pytest.raises(ValueError):
        est.fit(X[:, :-1], y)
    est = MLPClassifier(**FAST)
    est.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError):
        est.partial_fit(X[:, :-1], y)


@pytest.mark.parametrize("hidden", [(4,), (7, 3)])
def test_changed_hidden_layer_sizes_at_warm_start_and_partial_fit_say_why(hidden, clf_data):
    """scikit-learn trains the fitted widths on, ignoring the new parameter (or
    fails with an AttributeError when the depth changed); fastbp refuses,
    naming both widths, and the model keeps its weights."""
    X, y = clf_data
    message = re.escape(f"hidden layers have [7] units where hidden_layer_sizes is {hidden!r}")
    for est in (MLPClassifier(warm_start=True, **FAST).fit(X, y),
                MLPClassifier(**FAST).partial_fit(X, y, classes=[0, 1, 2])):
        coefs = [c.copy() for c in est.coefs_]
        est.set_params(hidden_layer_sizes=hidden)
        again = est.fit if est.warm_start else est.partial_fit
        with pytest.raises(ValueError, match=message):
            again(X, y)
        for before, after in zip(coefs, est.coefs_):
            np.testing.assert_array_equal(before, after)
    # Weights assigned by hand: the same words where their hidden widths differ, none otherwise.
    est = MLPClassifier(warm_start=True, **FAST).fit(X, y)
    est.coefs_ = [est.coefs_[0][:, :5], est.coefs_[1]]
    with pytest.raises(ValueError, match=re.escape("hidden layers have [5] units where hidden_layer_sizes is (7,)")):
        est.fit(X, y)
    est = MLPClassifier(warm_start=True, **FAST).fit(X, y)
    est.coefs_ = [est.coefs_[0], est.coefs_[1][:, :2]]
    with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(7, 2\)") as raised:
        est.fit(X, y)
    assert "hidden_layer_sizes is" not in str(raised.value)
    est.coefs_ = [np.float64(1.0), est.coefs_[1]]
    with pytest.raises(ValueError, match=re.escape("coefs_[0] must be 2-D; got shape ()")):
        est.fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_unseen_labels(solver, clf_data):
    X, y = clf_data
    est = MLPClassifier(solver=solver, **FAST)
    with pytest.raises(ValueError):
        est.partial_fit(X, y, classes=[0, 1])  # 2 is unseen in classes=
    est = MLPClassifier(solver=solver, **FAST)
    est.partial_fit(X, y, classes=[0, 1, 2])
    y_new = y.copy()
    y_new[0] = 5
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y_new)
    sk = SkMLPClassifier(solver=solver, **FAST)
    sk.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes"):
        sk.partial_fit(X, y_new)


def test_partial_fit_first_call_needs_classes(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier(**FAST).partial_fit(X, y)


def test_warm_start_with_other_classes(clf_data):
    X, y = clf_data
    est = MLPClassifier(warm_start=True, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X[y != 2], y[y != 2])


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_with_early_stopping(cls, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(early_stopping=True, **FAST)
    kwargs = {"classes": [0, 1, 2]} if cls is MLPClassifier else {}
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, **kwargs)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "score"])
def test_not_fitted_classifier(method, clf_data):
    X, y = clf_data
    est = MLPClassifier()
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(est, method)(*args)


@pytest.mark.parametrize("method", ["predict", "score"])
def test_not_fitted_regressor(method, reg_data):
    X, y = reg_data
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(MLPRegressor(), method)(*args)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_poisson_negative_targets_rejected(solver, reg_data):
    """Stricter than scikit-learn (which accepts them and reports a NaN loss)."""
    X, y = reg_data
    est = MLPRegressor(loss="poisson", solver=solver, **FAST)
    with pytest.raises(ValueError, match="negative"):
        est.fit(X, y)  # y has negative values
    assert not hasattr(est, "coefs_")
    # Zeros are fine.
    est.fit(X, np.maximum(y, 0.0))
    assert all(np.isfinite(w).all() for w in weights(est))
    if solver != "lbfgs":
        with pytest.raises(ValueError, match="negative"):
            MLPRegressor(loss="poisson", solver=solver, **FAST).partial_fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_negative_sample_weight_rejected(cls, solver, clf_data, reg_data):
    """Stricter than scikit-learn, which accepts negative weights silently."""
    X, y = _data_for(cls, clf_data, reg_data)
    sw = np.ones(X.shape[0])
    sw[4] = -0.5
    with pytest.raises(ValueError, match="(?i)negative"):
        cls(solver=solver, **FAST).fit(X, y, sample_weight=sw)
    if solver != "lbfgs":
        kwargs = {"classes": [0, 1, 2]} if cls is MLPClassifier else {}
        with pytest.raises(ValueError, match="(?i)negative"):
            cls(solver=solver, **FAST).partial_fit(X, y, sample_weight=sw, **kwargs)


@needs_sample_weight
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_all_zero_sample_weight_rejected_like_sklearn(cls, sk_cls, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    sw = np.zeros(X.shape[0])
    # scikit-learn before 1.9 fails in np.average: "Weights sum to zero, can't be normalized".
    with pytest.raises((ValueError, ZeroDivisionError)) as sk_err:
        sk_cls(**FAST).fit(X, y, sample_weight=sw)
    with pytest.raises(ValueError, match="^Sample weights must contain at least one non-zero number.$") as ours:
        cls(**FAST).fit(X, y, sample_weight=sw)
    if isinstance(sk_err.value, ValueError):
        assert str(ours.value) == str(sk_err.value)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_all_zero_sample_weight_named_where_scikit_learn_lets_it_through(monkeypatch, cls, clf_data, reg_data):
    """scikit-learn before 1.9 (fastbp supports 1.7 on) lets all-zero weights
    through _check_sample_weight; the fit then blamed alpha ("alpha=0.0001 is
    too large"), even for alpha=0. Here the older, lenient check stands in."""
    monkeypatch.setattr(_mlp, "_check_sample_weight", lambda sample_weight, X, *, dtype, **_: np.asarray(
        sample_weight, dtype=dtype))
    X, y = _data_for(cls, clf_data, reg_data)
    with pytest.raises(ValueError, match="^Sample weights must contain at least one non-zero number.$"):
        cls(**FAST, alpha=0.0).fit(X, y, sample_weight=np.zeros(X.shape[0]))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_sample_weight_wrong_length(cls, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    with pytest.raises(ValueError):
        cls(**FAST).fit(X, y, sample_weight=np.ones(X.shape[0] - 1))


@pytest.mark.parametrize(
    "X_bad",
    [
        np.array([["a", "b"], ["c", "d"]] * 6, dtype=object),
        np.array([[1.0, "b"], [2.0, "d"]] * 6, dtype=object),
        np.array([[{}, 1.0], [2.0, 3.0]] * 6, dtype=object),
        np.array([[1j, 1.0], [2.0, 3.0]] * 6),
    ],
    ids=["strings", "mixed", "dicts", "complex"],
)
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_non_numeric_X_raises_like_sklearn(cls, sk_cls, X_bad):
    y = np.array([0, 1] * 6)
    with pytest.raises(Exception) as sk_err:
        sk_cls(**FAST).fit(X_bad, y)
    with pytest.raises(type(sk_err.value)) as err:
        cls(**FAST).fit(X_bad, y)
    assert type(err.value) is type(sk_err.value)


def test_numeric_object_X_is_accepted(clf_data):
    X, y = clf_data
    ours = MLPClassifier(**FAST).fit(X.astype(object), y)
    np.testing.assert_array_equal(ours.predict(X.astype(object)), ours.predict(X))


@pytest.mark.parametrize(
    "cls, sk_cls, y_bad",
    [
        (MLPClassifier, SkMLPClassifier, "continuous"),
        (MLPRegressor, SkMLPRegressor, "object-strings"),
        (MLPClassifier, SkMLPClassifier, "wrong-length"),
        (MLPRegressor, SkMLPRegressor, "wrong-length"),
    ],
)
def test_wrong_kind_of_y_like_sklearn(cls, sk_cls, y_bad, clf_data):
    X, y = clf_data
    if y_bad == "continuous":
        y = y + 0.5
    elif y_bad == "object-strings":
        y = np.array(["a", "b", "c"], dtype=object)[y]
    else:
        y = y[:-3]
    with pytest.raises(Exception) as sk_err:
        sk_cls(**FAST).fit(X, y)
    with pytest.raises(type(sk_err.value)):
        cls(**FAST).fit(X, y)


def test_loss_grad_lbfgs_checks_the_packed_length(clf_data):
    # The error names the length expected: a shorter vector would fail in numpy's reshape,
    # a longer one would be truncated silently.
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    Y = est._label_binarizer.transform(y)
    n_params = sum(w.size for w in weights(est))
    for length in (n_params - 1, n_params + 1):
        with pytest.raises(ValueError, match=re.escape(f"packed_coef_inter has shape ({length},)")):
            est._loss_grad_lbfgs(np.zeros(length), X, Y, None, [X, None, None], [None, None], [], [])


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_absent_for_lbfgs(cls, clf_data):
    """Both estimators: scikit-learn's regressor exposes it under lbfgs by a bug."""
    X, y = clf_data
    est = cls(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError):
        est.partial_fit(X, y)
    # Available again for the stochastic solvers.
    assert hasattr(est.set_params(solver="sgd"), "partial_fit")
    assert hasattr(cls(solver="adam"), "partial_fit")


def test_validation_set_too_small(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPRegressor(early_stopping=True, validation_fraction=0.1, **FAST).fit(X[:10], y[:10])


# ---------------------------------------------------------------- divergence

# scikit-learn's message, which fastbp's begins with.
NON_FINITE = re.escape("Solver produced non-finite parameter weights. The input data may contain large values "
                       "and need to be preprocessed.")

# scikit-learn's test_mlp_diverging_loss set-up.
DIVERGING = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
                 learning_rate="constant", learning_rate_init=1.0, shuffle=True, max_iter=20,
                 n_iter_no_change=10, random_state=0)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_first_fit_raises_and_leaves_unfitted(iris):
    X, y = iris
    with pytest.raises(ValueError):
        SkMLPRegressor(early_stopping=False, **DIVERGING).fit(X, y)  # scikit-learn raises too
    est = MLPRegressor(early_stopping=False, **DIVERGING)
    with pytest.raises(ValueError, match=NON_FINITE):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not hasattr(est, "coefs_")
    assert not hasattr(est, "loss_curve_")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_diverging_refit_keeps_previous_model(cls, warm_start):
    rng = np.random.RandomState(0)
    X = rng.normal(scale=1e4, size=(120, 5))
    y = (X[:, 0] > 0).astype(int) if cls is MLPClassifier else X[:, 0] * 1e3
    Xs = X / 1e4
    ys = y if cls is MLPClassifier else y / 1e7
    params = dict(FAST, solver="sgd", activation="identity", max_iter=20, learning_rate_init=0.01)
    est = cls(warm_start=warm_start, **params).fit(Xs, ys)
    saved = snapshot(est)
    pred = est.predict(Xs)
    loss, curve, n_iter, t = est.loss_, list(est.loss_curve_), est.n_iter_, est.t_
    est.set_params(learning_rate_init=1e10)
    with pytest.raises(ValueError, match=NON_FINITE):
        est.fit(X, y)
    # The model from before the failed fit, untouched.
    assert_weights_equal(est, saved)
    np.testing.assert_array_equal(est.predict(Xs), pred)
    assert est.loss_ == loss
    assert est.loss_curve_ == curve
    assert est.n_iter_ == n_iter
    assert est.t_ == t
    assert est.get_params()["learning_rate_init"] == 1e10  # params are the user's
    # And it keeps working: a sane refit (warm or not) succeeds.
    est.set_params(learning_rate_init=0.01).fit(Xs, ys)
    assert all(np.isfinite(w).all() for w in weights(est))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_partial_fit_keeps_previous_model():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 5))
    y = X @ rng.normal(size=5)
    est = MLPRegressor(solver="sgd", learning_rate_init=0.01, **FAST)
    est.partial_fit(X, y)
    saved = snapshot(est)
    curve = list(est.loss_curve_)
    with pytest.raises(ValueError, match=NON_FINITE):
        est.partial_fit(X * 1e6, y * 1e12)
    assert_weights_equal(est, saved)
    assert est.loss_curve_ == curve


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_adam_whose_squared_gradients_overflow_stays_where_sklearns_does(backend):
    """Once g² overflows, adam's second moment is inf and its step 0: scikit-learn
    keeps finite weights; fastbp's moment update took inf − inf, a NaN, and
    raised that the fit diverged, advising a smaller learning rate."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = X @ rng.normal(size=4) * 1e155
    params = dict(hidden_layer_sizes=(5,), solver="adam", max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(backend=backend, **params).fit(X, y)
        theirs = SkMLPRegressor(**params).fit(X, y)
    for got, want in zip(weights(ours), weights(theirs)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert ours.loss_ == theirs.loss_ == np.inf


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_non_finite_assigned_weights_get_sklearns_message_not_alphas(how, value, clf_data):
    """scikit-learn trains on from NaN weights to its non-finite message; the
    penalty check blamed alpha. The model is left as it was."""
    X, y = clf_data
    est = MLPClassifier(warm_start=how == "warm_start", **FAST).fit(X, y)
    est.coefs_[0][0, 0] = value
    est.intercepts_[-1][0] = 1.0
    saved = snapshot(est)
    with pytest.raises(ValueError, match=NON_FINITE + ".*already hold NaN or infinity") as error:
        est.partial_fit(X, y) if how == "partial_fit" else est.fit(X, y)
    assert "alpha" not in str(error.value)
    for got, want in zip(weights(est), saved):
        np.testing.assert_array_equal(got, want)  # NaN where it was


@pytest.mark.parametrize("n_layers", [4, None])
def test_partial_fit_refuses_a_model_whose_n_layers_predict_would_refuse(n_layers, clf_data):
    """It trained on (n_layers_ is not read there), leaving a model predict refuses."""
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    saved = snapshot(est)
    if n_layers is None:
        del est.n_layers_
    else:
        est.n_layers_ = n_layers
    with pytest.raises(AttributeError if n_layers is None else IndexError, match="n_layers_"):
        est.partial_fit(X, y)
    assert_weights_equal(est, saved)


def test_alpha_check_names_the_largest_assigned_weight(clf_data):
    """Without NumPy's overflow warning on the way (an error under -W error)."""
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    est.coefs_[0][0, 0] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"alpha=0.0001 is too large.*the largest \|coefs_\| is 1e\+300"):
            est.partial_fit(X, y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_diverging_with_early_stopping_returns_best_finite_weights(cls, sk_cls, iris):
    """scikit-learn's test_mlp_diverging_loss: no error, NaN validation scores recorded."""
    X, y = iris
    est = cls(early_stopping=True, **DIVERGING)
    theirs = sk_cls(early_stopping=True, **DIVERGING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        theirs.fit(X, y)
    if cls is MLPRegressor:
        # R² of non-finite predictions is recorded as NaN (a classifier's labels stay finite).
        assert str(est.validation_scores_[-1]) == str(np.nan)
        assert isinstance(est.validation_scores_[-1], float)
    assert all(np.isfinite(w).all() for w in weights(est))
    assert est.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(est.validation_scores_, theirs.validation_scores_, rtol=1e-6,
                               equal_nan=True)
    np.testing.assert_allclose(est.best_validation_score_, theirs.best_validation_score_,
                               rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(est.predict(X), dtype=float)))


# ---------------------------------------------------------------- Ctrl-C


def _interrupt_between_epochs(monkeypatch, est, at_epoch, before=True):
    """Make the between-epochs hook raise KeyboardInterrupt on its at_epoch-th call."""
    original = est._update_no_improvement_count
    calls = [0]

    def hook(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at_epoch and before:
            raise KeyboardInterrupt
        result = original(*args, **kwargs)
        if calls[0] == at_epoch:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(est, "_update_no_improvement_count", hook)
    return calls


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("cls, sk_cls", PAIRS, ids=PAIR_IDS)
def test_keyboard_interrupt_stochastic(cls, sk_cls, solver, monkeypatch, clf_data, reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    params = dict(FAST, solver=solver, max_iter=10, learning_rate_init=0.01)
    est, theirs = cls(**params), sk_cls(**params)
    _interrupt_between_epochs(monkeypatch, est, 3)
    _interrupt_between_epochs(monkeypatch, theirs, 3)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        assert est.fit(X, y) is est
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        theirs.fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert all(np.isfinite(w).all() for w in weights(est))
    # Interrupted at an epoch boundary, both hold the weights of epoch 3.
    diff = max(np.linalg.norm(a - b) / np.linalg.norm(b)
               for a, b in zip(weights(est), weights(theirs)))
    assert diff < 1e-6
    assert est.predict(X).shape[0] == X.shape[0]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_keyboard_interrupt_with_early_stopping_restores_best(solver, monkeypatch, clf_data):
    X, y = clf_data
    params = dict(FAST, solver=solver, max_iter=10, early_stopping=True, learning_rate_init=0.01)
    est, theirs = MLPClassifier(**params), SkMLPClassifier(**params)
    _interrupt_between_epochs(monkeypatch, est, 4, before=False)
    _interrupt_between_epochs(monkeypatch, theirs, 4, before=False)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.fit(X, y)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        theirs.fit(X, y)
    assert est.n_iter_ == 4
    assert len(est.validation_scores_) == 4
    np.testing.assert_allclose(est.validation_scores_, theirs.validation_scores_)
    diff = max(np.linalg.norm(a - b) / np.linalg.norm(b)
               for a, b in zip(weights(est), weights(theirs)))
    assert diff < 1e-6


@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_a_keyboard_interrupt_between_an_epochs_pass_and_its_counters_fails_the_fit(call, monkeypatch, clf_data):
    """Raised by other than SIGINT (another signal's handler, an exception set
    on the thread), it is not held back, and lands where it lands: right after
    the compiled epoch, the model kept the epoch's weights with the counters of
    the one before. The fit now fails whole and the previous model is kept."""
    from fastbp import _loop

    X, y = clf_data
    est = MLPClassifier(**dict(FAST, max_iter=6)).fit(X, y)
    counters = (est.n_iter_, est.t_, list(est.loss_curve_))
    kept = [w.copy() for w in weights(est)]
    train_epoch, calls = _loop.train_epoch, [0]

    def interrupted_after_the_pass(*args, **kwargs):
        total = train_epoch(*args, **kwargs)
        calls[0] += 1
        if calls[0] == (1 if call == "partial_fit" else 3):
            raise KeyboardInterrupt
        return total

    monkeypatch.setattr(_loop, "train_epoch", interrupted_after_the_pass)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X, y) if call == "partial_fit" else est.set_params(warm_start=True).fit(X, y)
    assert (est.n_iter_, est.t_, est.loss_curve_) == counters
    for a, b in zip(weights(est), kept):
        np.testing.assert_array_equal(a, b)


def test_keyboard_interrupt_in_partial_fit(monkeypatch, clf_data):
    X, y = clf_data
    est = MLPClassifier(**FAST)
    est.partial_fit(X, y, classes=[0, 1, 2])
    _interrupt_between_epochs(monkeypatch, est, 1)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.partial_fit(X, y)
    assert len(est.loss_curve_) == 2
    assert all(np.isfinite(w).all() for w in weights(est))


def _raise_on_call(original, at_call):
    calls = [0]

    def backprop(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= at_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return backprop, calls


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_keyboard_interrupt_lbfgs_propagates_and_keeps_model(cls, monkeypatch, clf_data,
                                                             reg_data):
    X, y = _data_for(cls, clf_data, reg_data)
    est = cls(solver="lbfgs", warm_start=True, **FAST).fit(X, y)
    saved = snapshot(est)
    pred = est.predict(X)
    loss, n_iter = est.loss_, est.n_iter_
    module = fastbp._backends.BACKENDS["loop"]
    assert module is fastbp._loop
    original = module.backprop
    backprop, calls = _raise_on_call(original, 3)
    monkeypatch.setattr(module, "backprop", backprop)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert calls[0] >= 3  # the hook really ran inside the fit
    assert_weights_equal(est, saved)
    np.testing.assert_array_equal(est.predict(X), pred)
    assert est.loss_ == loss
    assert est.n_iter_ == n_iter
    # A first fit interrupted leaves the estimator unfitted.
    fresh = cls(solver="lbfgs", **FAST)
    backprop, calls = _raise_on_call(original, 1)
    monkeypatch.setattr(module, "backprop", backprop)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, y)
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def test_keyboard_interrupt_lbfgs_sklearn_behaviour(monkeypatch, clf_data):
    """What fastbp mirrors: scikit-learn's lbfgs lets the interrupt out of fit."""
    X, y = clf_data
    est = SkMLPClassifier(solver="lbfgs", **FAST)
    calls = [0]
    original = est._loss_grad_lbfgs

    def hook(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(est, "_loss_grad_lbfgs", hook)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
