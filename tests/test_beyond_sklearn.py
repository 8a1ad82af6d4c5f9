"""What fastbp's estimators give beyond scikit-learn's MLP (issue 16): class_weight,
validation_loss_curve_, to_sklearn/from_sklearn and LossCurveDisplay.

References are independent of the code under test: scikit-learn's
compute_sample_weight / compute_class_weight, its own MLP estimators, its own
loss functions, and a NumPy forward pass.
"""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.fixes import parse_version

from fastbp import LossCurveDisplay, MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(9, 5), batch_size=32, random_state=0)
SKLEARN_VERSION = parse_version(sklearn.__version__)


def rel_diff(a_arrays, b_arrays):
    """max over arrays of ‖a − b‖ / ‖b‖."""
    return max(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)
               for a, b in zip(a_arrays, b_arrays))


def weights(est):
    return est.coefs_ + est.intercepts_


@pytest.fixture(scope="module")
def imbalanced():
    """Three classes in proportions 70/20/10, float64."""
    X, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=3,
                               weights=[0.7, 0.2, 0.1], random_state=0)
    return X, y


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, weights=[0.8, 0.2],
                               random_state=1)
    return X, np.where(y == 1, "rare", "common")


@pytest.fixture(scope="module")
def reg2():
    X, y = make_regression(n_samples=200, n_features=6, n_targets=2, noise=0.5, random_state=2)
    return X, y / y.std(axis=0)


# ------------------------------------------------------------------ class_weight


@pytest.mark.parametrize("params", [
    dict(solver="adam", max_iter=15),
    dict(solver="sgd", max_iter=15, learning_rate_init=0.05),
    dict(solver="adam", max_iter=15, early_stopping=True, n_iter_no_change=100),
    dict(solver="lbfgs", max_iter=40),
], ids=["adam", "sgd", "adam-early-stopping", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_class_weight_balanced_equals_balanced_sample_weight(params, dtype, imbalanced):
    X, y = imbalanced
    X = X.astype(dtype)
    ours = MLPClassifier(class_weight="balanced", **SMALL, **params).fit(X, y)
    reference = MLPClassifier(**SMALL, **params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    diff = rel_diff(weights(ours), weights(reference))
    print(f"class_weight='balanced' vs compute_sample_weight: {diff:.3e}")
    assert diff <= 1e-12
    if params.get("early_stopping"):
        # "balanced" is computed on the whole y before the split: the validation weights agree too.
        np.testing.assert_array_equal(ours.validation_scores_, reference.validation_scores_)
        np.testing.assert_array_equal(ours.validation_loss_curve_, reference.validation_loss_curve_)


def test_class_weight_balanced_binary_string_labels(binary):
    X, y = binary
    ours = MLPClassifier(class_weight="balanced", max_iter=10, **SMALL).fit(X, y)
    reference = MLPClassifier(max_iter=10, **SMALL).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    assert rel_diff(weights(ours), weights(reference)) <= 1e-12


def test_class_weight_dict_multiplies_sample_weight(imbalanced):
    X, y = imbalanced
    sw = np.random.RandomState(3).uniform(0.2, 3.0, size=y.shape[0])
    class_weight = {0: 0.5, 2: 4.0}  # class 1 left out: weight 1
    ours = MLPClassifier(class_weight=class_weight, max_iter=10, **SMALL).fit(X, y, sample_weight=sw)
    per_class = np.array([0.5, 1.0, 4.0])
    reference = MLPClassifier(max_iter=10, **SMALL).fit(X, y, sample_weight=sw * per_class[y])
    assert rel_diff(weights(ours), weights(reference)) <= 1e-12


def test_class_weight_balanced_with_sample_weight_counts_weighted_samples(imbalanced):
    """As LogisticRegression: "balanced" from the sample-weighted class counts."""
    X, y = imbalanced
    sw = np.random.RandomState(4).uniform(0.2, 3.0, size=y.shape[0])
    ours = MLPClassifier(class_weight="balanced", max_iter=10, **SMALL).fit(X, y, sample_weight=sw)
    per_class = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sw)
    reference = MLPClassifier(max_iter=10, **SMALL).fit(X, y, sample_weight=sw * per_class[y])
    assert rel_diff(weights(ours), weights(reference)) <= 1e-12


def test_class_weight_none_is_the_unweighted_model(imbalanced):
    X, y = imbalanced
    ours = MLPClassifier(class_weight=None, max_iter=5, **SMALL).fit(X, y)
    theirs = SkMLPClassifier(max_iter=5, **SMALL).fit(X, y)
    assert rel_diff(weights(ours), weights(theirs)) <= 1e-6


def test_class_weight_dict_naming_an_absent_class_raises_compute_class_weight_error(imbalanced):
    X, y = imbalanced
    keep = y != 2  # a fold without the rare class
    est = MLPClassifier(class_weight={2: 10.0}, max_iter=2, **SMALL)
    with pytest.raises(ValueError, match=r"The classes, \[0, 1\], are not in class_weight"):
        est.fit(X[keep], y[keep])
    assert not hasattr(est, "coefs_")  # the failed fit left the estimator as it was


def test_class_weight_multilabel_raises():
    X, Y = make_multilabel_classification(n_samples=60, n_features=5, n_classes=3, random_state=0)
    for class_weight in ("balanced", {0: 2.0}):
        with pytest.raises(ValueError, match="class_weight is not supported for multilabel"):
            MLPClassifier(class_weight=class_weight, max_iter=2, **SMALL).fit(X, Y)
    with pytest.raises(ValueError, match="class_weight is not supported for multilabel"):
        MLPClassifier(class_weight={0: 2.0}, **SMALL).partial_fit(X, Y, classes=[0, 1, 2])


@pytest.mark.parametrize("bad", ["balanced_subsample", [1.0, 2.0], 3])
def test_class_weight_invalid_values_raise(bad, imbalanced):
    X, y = imbalanced
    with pytest.raises(InvalidParameterError, match="class_weight"):
        MLPClassifier(class_weight=bad, max_iter=2).fit(X, y)


def test_partial_fit_balanced_raises_like_sgdclassifier(imbalanced):
    X, y = imbalanced
    est = MLPClassifier(class_weight="balanced", **SMALL)
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for partial_fit"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(est, "classes_")
    # Also after a fit: a chunk's class frequencies are never the data's.
    est.fit(X, y)
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        est.partial_fit(X, y)


def test_partial_fit_with_dict_weighs_each_chunk(imbalanced):
    X, y = imbalanced
    class_weight = {0: 0.5, 1: 2.0, 2: 8.0}
    per_class = np.array([0.5, 2.0, 8.0])
    ours = MLPClassifier(class_weight=class_weight, **SMALL)
    reference = MLPClassifier(**SMALL)
    chunks = [slice(0, 100), slice(100, 240)]
    first = y[chunks[0]] != 2  # the first chunk lacks the rare class: the dict still applies
    ours.partial_fit(X[chunks[0]][first], y[chunks[0]][first], classes=[0, 1, 2])
    reference.partial_fit(X[chunks[0]][first], y[chunks[0]][first], classes=[0, 1, 2],
                          sample_weight=per_class[y[chunks[0]][first]])
    ours.partial_fit(X[chunks[1]], y[chunks[1]])
    reference.partial_fit(X[chunks[1]], y[chunks[1]], sample_weight=per_class[y[chunks[1]]])
    assert rel_diff(weights(ours), weights(reference)) <= 1e-12


def test_class_weight_changes_the_decision(imbalanced):
    X, y = imbalanced
    plain = MLPClassifier(max_iter=200, **SMALL).fit(X, y)
    rare_heavy = MLPClassifier(class_weight={0: 1.0, 1: 1.0, 2: 20.0}, max_iter=200, **SMALL).fit(X, y)
    assert (rare_heavy.predict(X) == 2).sum() > (plain.predict(X) == 2).sum()


# --------------------------------------------------------- validation_loss_curve_


def _forward_numpy(coefs, intercepts, X, activation, out_activation):
    hidden = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "identity": lambda z: z,
              "logistic": lambda z: 1 / (1 + np.exp(-z))}[activation]
    a = X
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        z = a @ w + b
        if layer < len(coefs) - 1:
            a = hidden(z)
        elif out_activation == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        elif out_activation == "logistic":
            a = 1 / (1 + np.exp(-z))
        elif out_activation == "exp":
            a = np.exp(z)
        else:
            a = z
    return a


def _reported_loss_numpy(est, coefs, intercepts, X_val, Y_val, sw_val):
    """scikit-learn's reported loss of these weights on these rows: its own loss
    function (multi-output squared error averaged over outputs) plus
    ½ α Σ‖W‖² / Σ s_n."""
    output = _forward_numpy(coefs, intercepts, X_val, est.activation, est.out_activation_)
    name = est.loss
    if name == "log_loss" and est.out_activation_ == "logistic":
        name = "binary_log_loss"
    data = LOSS_FUNCTIONS[name](Y_val, output, sw_val)
    penalty = 0.5 * est.alpha * sum(np.sum(w * w) for w in coefs) / np.sum(sw_val)
    return data + penalty


def _record_epochs(monkeypatch, est):
    """Record, at each epoch's end, copies of the weights and the validation rows."""
    records = []
    original = est._update_no_improvement_count

    def hook(X_val, y_val, sw_val, *args, **kwargs):
        records.append(([np.array(c) for c in est.coefs_], [np.array(b) for b in est.intercepts_],
                        X_val, y_val, sw_val))
        return original(X_val, y_val, sw_val, *args, **kwargs)

    monkeypatch.setattr(est, "_update_no_improvement_count", hook)
    return records


VALIDATION_CASES = {
    "multiclass": lambda d: (MLPClassifier(**SMALL, max_iter=8, early_stopping=True, n_iter_no_change=100,
                                           alpha=0.01), *d["imbalanced"], None),
    "binary-weighted": lambda d: (MLPClassifier(**SMALL, max_iter=8, early_stopping=True, n_iter_no_change=100,
                                                activation="tanh", solver="sgd", learning_rate_init=0.05),
                                  *d["binary"], np.random.RandomState(5).uniform(0.2, 3, 200)),
    "regression-2-outputs": lambda d: (MLPRegressor(**SMALL, max_iter=8, early_stopping=True,
                                                    n_iter_no_change=100, alpha=0.1),
                                       *d["reg2"], np.random.RandomState(6).uniform(0.2, 3, 200)),
}


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_validation_loss_curve_is_the_loss_of_each_epochs_weights(case, backend, monkeypatch, imbalanced, binary,
                                                                   reg2):
    est, X, y, sw = VALIDATION_CASES[case](dict(imbalanced=imbalanced, binary=binary, reg2=reg2))
    est.set_params(backend=backend)
    records = _record_epochs(monkeypatch, est)
    est.fit(X, y, sample_weight=sw)

    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == est.n_iter_ == len(records) == 8
    expected = []
    for coefs, intercepts, X_val, y_val, sw_val in records:
        if isinstance(est, MLPClassifier):
            Y_val = LabelBinarizer().fit(est.classes_).transform(y_val).astype(np.float64)
        else:
            Y_val = y_val
        sw_val = np.ones(X_val.shape[0]) if sw is None else sw_val
        expected.append(_reported_loss_numpy(est, coefs, intercepts, X_val, Y_val, sw_val))
    np.testing.assert_allclose(est.validation_loss_curve_, expected, rtol=1e-10)
    # The weights move during an epoch: the training loss is another measurement.
    assert not np.allclose(est.validation_loss_curve_, est.loss_curve_, rtol=1e-6)
    # Early stopping restored the best epoch's weights: the curve's entry there is their loss.
    best = int(np.argmax(est.validation_scores_))
    X_val, y_val, sw_val = records[best][2:]
    Y_val = (LabelBinarizer().fit(est.classes_).transform(y_val).astype(np.float64)
             if isinstance(est, MLPClassifier) else y_val)
    sw_val = np.ones(X_val.shape[0]) if sw is None else sw_val
    np.testing.assert_allclose(est.validation_loss_curve_[best],
                               _reported_loss_numpy(est, est.coefs_, est.intercepts_, X_val, Y_val, sw_val),
                               rtol=1e-10)


def test_validation_loss_curve_sparse_equals_dense(imbalanced):
    X, y = imbalanced
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    params = dict(SMALL, max_iter=6, early_stopping=True)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.validation_loss_curve_, dense.validation_loss_curve_, rtol=1e-12)


def test_validation_loss_curve_float32(reg2):
    X, y = reg2
    params = dict(SMALL, max_iter=6, early_stopping=True)
    single = MLPRegressor(**params).fit(X.astype(np.float32), y.astype(np.float32))
    double = MLPRegressor(**params).fit(X, y)
    assert len(single.validation_loss_curve_) == 6
    assert all(isinstance(v, float) for v in single.validation_loss_curve_)
    np.testing.assert_allclose(single.validation_loss_curve_, double.validation_loss_curve_, rtol=1e-4)


def test_validation_loss_curve_none_without_early_stopping(imbalanced):
    X, y = imbalanced
    est = MLPClassifier(max_iter=3, **SMALL).fit(X, y)
    assert est.validation_loss_curve_ is None and est.validation_scores_ is None
    # lbfgs records neither, as scikit-learn records no validation_scores_.
    lbfgs = MLPClassifier(solver="lbfgs", max_iter=3, early_stopping=True, **SMALL).fit(X, y)
    assert not hasattr(lbfgs, "validation_loss_curve_") and not hasattr(lbfgs, "validation_scores_")


def test_validation_loss_curve_grows_with_warm_start(imbalanced):
    X, y = imbalanced
    est = MLPClassifier(max_iter=3, early_stopping=True, warm_start=True, n_iter_no_change=100, **SMALL)
    est.fit(X, y).fit(X, y)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == 6
    assert np.isfinite(est.validation_loss_curve_).all()


def test_validation_scores_unchanged_by_the_validation_loss(imbalanced):
    """The new curve costs nothing of the parity: scikit-learn's scores, weights, losses."""
    X, y = imbalanced
    params = dict(SMALL, max_iter=8, early_stopping=True)
    ours = MLPClassifier(**params).fit(X, y)
    theirs = SkMLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    assert rel_diff(weights(ours), weights(theirs)) <= 1e-6


# ------------------------------------------------------------------- interchange


INTERCHANGE_CASES = {
    "clf-adam": (MLPClassifier, "imbalanced", dict(solver="adam")),
    "clf-sgd-invscaling": (MLPClassifier, "imbalanced",
                           dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.05)),
    "clf-binary-early-stopping": (MLPClassifier, "binary", dict(solver="adam", early_stopping=True)),
    "clf-lbfgs": (MLPClassifier, "imbalanced", dict(solver="lbfgs")),
    "reg-adam": (MLPRegressor, "reg2", dict(solver="adam")),
    "reg-sgd": (MLPRegressor, "reg2", dict(solver="sgd", learning_rate_init=0.01)),
}


def _case(name, data, sklearn_fits=False):
    """(class, X, y, parameters) of an interchange case; sklearn_fits: the
    case's reference model is fitted by scikit-learn."""
    if sklearn_fits and name == "clf-binary-early-stopping" and SKLEARN_VERSION < parse_version("1.9"):
        # Its early stopping tests np.isnan on the string labels' predictions (fixed in 1.9).
        pytest.skip("scikit-learn before 1.9 cannot early-stop a classifier of string labels")
    cls, key, params = INTERCHANGE_CASES[name]
    X, y = data[key]
    return cls, X, y, dict(SMALL, max_iter=6, **params)


@pytest.fixture(scope="module")
def data(imbalanced, binary, reg2):
    return dict(imbalanced=imbalanced, binary=binary, reg2=reg2)


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@pytest.mark.parametrize("name", list(INTERCHANGE_CASES))
def test_to_sklearn_is_the_same_fitted_model(name, data):
    cls, X, y, params = _case(name, data)
    est = cls(**params, n_threads=1, backend="loop").fit(X, y)
    sk = est.to_sklearn()
    sk_class = SkMLPClassifier if cls is MLPClassifier else SkMLPRegressor
    assert type(sk) is sk_class
    assert sk.get_params() == {k: v for k, v in est.get_params().items() if k in sk.get_params()}
    assert "backend" not in sk.get_params() and "n_threads" not in sk.get_params()
    assert "class_weight" not in sk.get_params()
    for name_ in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "loss_",
                  "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert hasattr(sk, name_) == hasattr(est, name_), name_
        if hasattr(est, name_):
            assert getattr(sk, name_) == getattr(est, name_), name_
    if cls is MLPClassifier:
        np.testing.assert_array_equal(sk.classes_, est.classes_)
        np.testing.assert_array_equal(sk.predict(X), est.predict(X))
    for a, b in zip(weights(sk), weights(est)):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, b)
    diff = np.max(np.abs(_outputs(sk, X) - _outputs(est, X)) / np.maximum(np.abs(_outputs(est, X)), 1e-300))
    print(f"to_sklearn prediction difference ({name}): {diff:.3e}")
    np.testing.assert_allclose(_outputs(sk, X), _outputs(est, X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(INTERCHANGE_CASES))
def test_from_sklearn_is_the_same_fitted_model(name, data):
    cls, X, y, params = _case(name, data, sklearn_fits=True)
    sk_class = SkMLPClassifier if cls is MLPClassifier else SkMLPRegressor
    sk = sk_class(**params).fit(X, y)
    est = cls.from_sklearn(sk)
    assert type(est) is cls
    assert {k: v for k, v in est.get_params().items() if k in sk.get_params()} == sk.get_params()
    assert est.backend == "loop" and est.n_threads is None
    for a, b in zip(weights(est), weights(sk)):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, b)
    if getattr(sk, "validation_scores_", None) is not None:
        assert len(est.validation_loss_curve_) == len(sk.validation_scores_)
        assert np.isnan(est.validation_loss_curve_).all()
    if cls is MLPClassifier:
        np.testing.assert_array_equal(est.predict(X), sk.predict(X))
    np.testing.assert_allclose(_outputs(est, X), _outputs(sk, X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["clf-adam", "clf-sgd-invscaling", "reg-adam", "reg-sgd"])
def test_partial_fit_after_from_sklearn_continues_as_sklearn(name, data):
    cls, X, y, params = _case(name, data)
    sk_class = SkMLPClassifier if cls is MLPClassifier else SkMLPRegressor
    sk = sk_class(**params).fit(X, y)
    est = cls.from_sklearn(sk)
    for _ in range(3):
        sk.partial_fit(X, y)
        est.partial_fit(X, y)
    diff = rel_diff(weights(est), weights(sk))
    print(f"partial_fit after from_sklearn ({name}): {diff:.3e}")
    assert diff <= 1e-6
    np.testing.assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-6)
    assert est.t_ == sk.t_


@pytest.mark.parametrize("name", ["clf-adam", "reg-sgd"])
def test_partial_fit_after_to_sklearn_continues_as_fastbp(name, data):
    cls, X, y, params = _case(name, data)
    est = cls(**params).fit(X, y)
    sk = est.to_sklearn()
    for _ in range(3):
        sk.partial_fit(X, y)
        est.partial_fit(X, y)
    assert rel_diff(weights(est), weights(sk)) <= 1e-6


def test_to_sklearn_after_weights_of_other_widths_leaves_the_stale_optimizer_state_out(data):
    """It failed on reshaping the old state ('cannot reshape array of size 1');
    the model predicts, and scikit-learn's partial_fit starts a new optimizer,
    where fastbp's raises for the stale state."""
    cls, X, y, params = _case("clf-adam", data)
    est = cls(**params).fit(X, y)
    rng = np.random.default_rng(0)
    units = [X.shape[1], 7, 4, est.n_outputs_]
    est.coefs_ = [rng.normal(size=shape) for shape in zip(units[:-1], units[1:])]
    est.intercepts_ = [np.zeros(width) for width in units[1:]]
    sk = est.to_sklearn()
    assert not hasattr(sk, "_optimizer")
    np.testing.assert_allclose(sk.predict_proba(X), est.predict_proba(X), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="The optimizer state holds"):
        est.set_params(hidden_layer_sizes=(7, 4)).partial_fit(X, y)
    sk.set_params(hidden_layer_sizes=(7, 4)).partial_fit(X, y)


@pytest.mark.parametrize("name", ["clf-binary-early-stopping", "clf-lbfgs", "reg-adam"])
def test_warm_start_after_from_sklearn_continues_as_sklearn(name, data):
    cls, X, y, params = _case(name, data, sklearn_fits=True)
    sk_class = SkMLPClassifier if cls is MLPClassifier else SkMLPRegressor
    sk = sk_class(**params).fit(X, y)
    est = cls.from_sklearn(sk)
    sk.set_params(warm_start=True, max_iter=4).fit(X, y)
    est.set_params(warm_start=True, max_iter=4).fit(X, y)
    assert rel_diff(weights(est), weights(sk)) <= 1e-6
    assert est.n_iter_ == sk.n_iter_
    if sk.early_stopping:
        np.testing.assert_allclose(est.validation_scores_, sk.validation_scores_)
        # NaN for scikit-learn's epochs, then fastbp's own measurements.
        n_before = len(est.validation_scores_) - est.n_iter_
        assert np.isnan(est.validation_loss_curve_[:n_before]).all()
        assert np.isfinite(est.validation_loss_curve_[n_before:]).all()


def test_round_trip_keeps_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, y = data["imbalanced"]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(max_iter=4, **SMALL).fit(frame, y)
    back = MLPClassifier.from_sklearn(est.to_sklearn())
    np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
    np.testing.assert_array_equal(back.predict_proba(frame), est.predict_proba(frame))


def test_interchange_errors(data):
    X, y = data["imbalanced"]
    with pytest.raises(NotFittedError, match="from_sklearn needs a fitted estimator"):
        MLPClassifier.from_sklearn(SkMLPClassifier())
    with pytest.raises(NotFittedError):
        MLPClassifier().to_sklearn()
    with pytest.raises(TypeError, match="takes a fitted sklearn.neural_network.MLPClassifier"):
        MLPClassifier.from_sklearn(SkMLPRegressor(max_iter=2).fit(X, y))
    with pytest.raises(TypeError, match="takes a fitted sklearn.neural_network.MLPRegressor"):
        MLPRegressor.from_sklearn(SkMLPClassifier(max_iter=2).fit(X, y))
    with pytest.raises(TypeError, match="LogisticRegression"):
        MLPClassifier.from_sklearn(LogisticRegression().fit(X, y))
    with pytest.raises(TypeError, match="fastbp"):
        MLPClassifier.from_sklearn(MLPClassifier(max_iter=2).fit(X, y))


# ------------------------------------------------------------------ LossCurveDisplay


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_loss_curve_display_with_early_stopping(pyplot, data):
    X, y = data["imbalanced"]
    est = MLPClassifier(max_iter=6, early_stopping=True, **SMALL).fit(X, y)
    display = LossCurveDisplay.from_estimator(est)
    assert display.figure_ is display.ax_.figure
    assert len(display.lines_) == 3
    train, val_loss, val_score = display.lines_
    np.testing.assert_array_equal(train.get_ydata(), est.loss_curve_)
    np.testing.assert_array_equal(val_loss.get_ydata(), est.validation_loss_curve_)
    np.testing.assert_array_equal(val_score.get_ydata(), est.validation_scores_)
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, est.n_iter_ + 1))
    assert train.axes is display.ax_ and val_loss.axes is display.ax_
    assert val_score.axes is display.score_ax_ and display.score_ax_ is not display.ax_
    assert display.score_ax_.get_ylabel() == "validation accuracy"
    assert display.ax_.get_xlabel() == "epoch"


def test_loss_curve_display_on_given_axes_without_early_stopping(pyplot, data):
    X, y = data["reg2"]
    est = MLPRegressor(max_iter=4, **SMALL).fit(X, y)
    _, ax = pyplot.subplots()
    display = LossCurveDisplay.from_estimator(est, ax=ax)
    assert display.ax_ is ax and display.score_ax_ is None
    assert len(display.lines_) == 1
    # plot() again, elsewhere, as scikit-learn's displays allow.
    _, other = pyplot.subplots()
    assert display.plot(ax=other).ax_ is other


def test_loss_curve_display_of_a_scikit_learn_model(pyplot, data):
    X, y = data["reg2"]
    sk = SkMLPRegressor(max_iter=4, early_stopping=True, **SMALL).fit(X, y)
    display = LossCurveDisplay.from_estimator(sk)
    assert len(display.lines_) == 2  # no validation loss recorded by scikit-learn
    assert display.score_ax_.get_ylabel() == "validation R²"


def test_loss_curve_display_lbfgs_raises(pyplot, data):
    X, y = data["imbalanced"]
    est = MLPClassifier(solver="lbfgs", max_iter=5, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="loss_curve_.*solver='lbfgs'"):
        LossCurveDisplay.from_estimator(est)
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(MLPClassifier())


def test_loss_curve_display_without_matplotlib_names_the_extra(monkeypatch, data):
    X, y = data["imbalanced"]
    est = MLPClassifier(max_iter=2, **SMALL).fit(X, y)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"fastbp\[bench\]"):
        LossCurveDisplay.from_estimator(est)


def test_importing_fastbp_does_not_import_matplotlib():
    code = "import sys, fastbp; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_loss_curve_display_of_a_pipeline_draws_its_final_step(pyplot, data):
    X, y = data["imbalanced"]
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(max_iter=6, early_stopping=True, **SMALL)).fit(X, y)
    display = LossCurveDisplay.from_estimator(pipeline)
    np.testing.assert_array_equal(display.lines_[0].get_ydata(), pipeline[-1].loss_curve_)
    np.testing.assert_array_equal(display.lines_[2].get_ydata(), pipeline[-1].validation_scores_)
    assert display.ax_.get_title() == "MLPClassifier"
    # A pipeline ending in a model without loss curves: the reason, not an AttributeError.
    other = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="LogisticRegression records no per-epoch loss_curve_"):
        LossCurveDisplay.from_estimator(other)


def test_loss_curve_display_legend_covers_no_curve(pyplot):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier((32,), early_stopping=True, max_iter=40, random_state=0).fit(X / 16, y)
    display = LossCurveDisplay.from_estimator(clf)
    display.figure_.canvas.draw()
    legend = display.ax_.get_legend().get_window_extent()
    for line in display.lines_:
        points = line.get_transform().transform(line.get_xydata())
        inside = [legend.contains(x, y) for x, y in points]
        assert not any(inside), f"the legend covers {line.get_label()} at epochs {np.flatnonzero(inside) + 1}"
