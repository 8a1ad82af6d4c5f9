"""fastbp's estimators as drop-in scikit-learn estimators (issue 12, "API" and "Tests").

Pipelines, cross-validation and grid search against scikit-learn's MLP on real data
sets; clone, parameters, pickling, sparse / DataFrame / memory-order inputs, verbose
output and convergence warnings.
"""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def rel_diff(a_arrays, b_arrays):
    """max over arrays of ‖a − b‖ / ‖b‖."""
    assert len(a_arrays) == len(b_arrays)
    worst = 0.0
    for a, b in zip(a_arrays, b_arrays):
        assert a.shape == b.shape
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        worst = max(worst, np.linalg.norm(a - b) / np.linalg.norm(b))
    return worst


def weights(est):
    return est.coefs_ + est.intercepts_


def assert_bitwise_same(a, b):
    assert len(weights(a)) == len(weights(b))
    for p, q in zip(weights(a), weights(b)):
        assert p.dtype == q.dtype
        assert np.array_equal(p, q)


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=200, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X, y


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=200, n_features=8, n_targets=2, noise=0.5, random_state=0)
    return X, y / y.std(axis=0)


FAST = dict(hidden_layer_sizes=(7,), max_iter=5, batch_size=32, random_state=0)


# ----------------------------------------------- pipelines on real data sets


@pytest.mark.parametrize(
    "loader, cv, max_iter",
    [(load_digits, 3, 50), (load_wine, 5, 100), (load_breast_cancer, 5, 100)],
    ids=["digits", "wine", "breast_cancer"],
)
def test_pipeline_cross_val_score_matches_sklearn(loader, cv, max_iter):
    X, y = loader(return_X_y=True)
    params = dict(hidden_layer_sizes=(50,), max_iter=max_iter, random_state=0)
    splitter = StratifiedKFold(cv, shuffle=True, random_state=0)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**params)), X, y,
                           cv=splitter)
    theirs = cross_val_score(make_pipeline(StandardScaler(), SkMLPClassifier(**params)), X, y,
                             cv=splitter)
    assert ours.shape == theirs.shape
    assert abs(ours.mean() - theirs.mean()) <= 0.01, (ours, theirs)
    # A real fit, not a degenerate one.
    assert ours.mean() > 0.85


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="lbfgs", max_iter=100, alpha=1.0, hidden_layer_sizes=(20,)),
        dict(solver="adam", max_iter=100, learning_rate_init=0.01, alpha=1.0,
             hidden_layer_sizes=(20,)),
    ],
    ids=["lbfgs", "adam"],
)
def test_pipeline_regressor_r2_matches_sklearn(params):
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    splitter = KFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPRegressor(random_state=0, **params)),
                           X, y, cv=splitter)
    theirs = cross_val_score(
        make_pipeline(StandardScaler(), SkMLPRegressor(random_state=0, **params)), X, y, cv=splitter
    )
    assert abs(ours.mean() - theirs.mean()) <= 0.01, (ours, theirs)
    assert ours.mean() > 0.3


def test_grid_search_picks_sklearns_best_params():
    X, y = load_wine(return_X_y=True)
    grid = {"mlpclassifier__alpha": [1e-4, 1e-2, 3.0, 30.0]}
    params = dict(hidden_layer_sizes=(20,), max_iter=60, learning_rate_init=0.01, random_state=0)
    splitter = StratifiedKFold(3, shuffle=True, random_state=0)
    ours = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(**params)), grid,
                        cv=splitter).fit(X, y)
    theirs = GridSearchCV(make_pipeline(StandardScaler(), SkMLPClassifier(**params)), grid,
                          cv=splitter).fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], atol=0.01)
    # The refit best model is a fitted fastbp estimator.
    assert isinstance(ours.best_estimator_[-1], MLPClassifier)
    assert ours.score(X, y) > 0.9


# ------------------------------------------------------- parameters and clone


@pytest.mark.parametrize("labels", [
    np.arange(10) * 3 - 7, np.array([4, 9]), np.array([False, True]), np.array([0, 2, 5], dtype=np.uint8),
    np.array([1.0, 2.0, 4.0]), np.array(["b", "a", "c"]), np.array([5, 1, 3], dtype=">i8"),
    np.array([0, 2], dtype=">u2"),
], ids=["int-multiclass", "int-binary", "bool", "uint8", "float", "str", "big-endian-int", "big-endian-uint"])
def test_label_encoding_is_label_binarizers(labels):
    """Integer labels take fit's own np.unique encoding, others LabelBinarizer's:
    both must leave the binarizer LabelBinarizer.fit leaves, and train on its
    transform of y."""
    X, y_index = make_classification(n_samples=60, n_features=5, n_informative=4, n_redundant=0,
                                     n_classes=len(labels), n_clusters_per_class=1, random_state=0)
    y = labels[y_index]
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    reference = LabelBinarizer().fit(y)
    assert vars(model._label_binarizer).keys() == vars(reference).keys()
    assert model._label_binarizer.y_type_ == reference.y_type_
    assert model._label_binarizer.sparse_input_ == reference.sparse_input_
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    assert model.classes_.dtype == reference.classes_.dtype
    assert model.predict(X).dtype == reference.classes_.dtype
    _, Y = model._validate_input(X, y, incremental=False, reset=True)
    np.testing.assert_array_equal(Y, reference.transform(y).astype(bool))
    assert set(model.predict(X)) <= set(labels)


@pytest.mark.parametrize("cls, sk_cls", [(MLPClassifier, SkMLPClassifier),
                                         (MLPRegressor, SkMLPRegressor)])
def test_params_are_sklearns_plus_fastbps_own(cls, sk_cls):
    ours = cls().get_params()
    theirs = sk_cls().get_params()
    own = {"backend", "n_threads", "record_gradient_norms", "dropout"} | ({"class_weight"} if cls is MLPClassifier else set())
    assert set(ours) == set(theirs) | own
    for name, value in theirs.items():
        assert ours[name] == value, name
    assert ours["backend"] == "loop"
    assert ours["n_threads"] is None
    assert ours["record_gradient_norms"] is False
    assert ours["dropout"] == 0.0
    if cls is MLPClassifier:
        assert ours["class_weight"] is None


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_set_params_and_clone(cls, clf_data, reg_data):
    X, y = clf_data if cls is MLPClassifier else reg_data
    est = cls(**FAST)
    assert est.set_params(alpha=0.5, backend="vectorized", n_threads=1) is est
    assert est.get_params()["alpha"] == 0.5
    assert est.get_params()["backend"] == "vectorized"
    est.fit(X, y)
    twin = clone(est)
    assert twin is not est
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coefs_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    # A clone fits the same model.
    assert_bitwise_same(twin.fit(X, y), est)


def test_constructor_stores_params_unchanged():
    hidden = [5, 4]
    est = MLPClassifier(hidden_layer_sizes=hidden)
    assert est.hidden_layer_sizes is hidden


# ------------------------------------------------------------------- pickling


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pickle_round_trip(cls, solver, clf_data, reg_data):
    X, y = clf_data if cls is MLPClassifier else reg_data
    est = cls(solver=solver, **FAST).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    if cls is MLPClassifier:
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.score(X, y) == est.score(X, y)
    assert_bitwise_same(back, est)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_after_unpickling_continues_the_same(solver, clf_data):
    """The flat parameter buffer is rebuilt after pickling, not left stale."""
    X, y = clf_data
    est = MLPClassifier(solver=solver, warm_start=True, **FAST).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    est.fit(X, y)
    back.fit(X, y)
    assert_bitwise_same(back, est)
    # And the continued model is a different (further trained) model.
    first = MLPClassifier(solver=solver, **FAST).fit(X, y)
    assert rel_diff(weights(back), weights(first)) > 1e-6


@pytest.mark.parametrize("call", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_held_weight_arrays_follow_the_training_as_in_sklearn(solver, call, clf_data):
    """scikit-learn's sgd and adam update coefs_ in place: W = coefs_[0] taken
    before a partial_fit or warm start holds the weights after it."""
    X, y = clf_data
    params = dict(FAST, solver=solver, warm_start=call == "warm_start")
    for cls in (MLPClassifier, SkMLPClassifier):
        est = cls(**params).fit(X, y)
        held_list, held, before = est.coefs_, est.coefs_ + est.intercepts_, [w.copy() for w in weights(est)]
        est.partial_fit(X, y) if call == "partial_fit" else est.fit(X, y)
        assert est.coefs_ is held_list, cls
        assert all(w is h for w, h in zip(weights(est), held)), cls
        assert rel_diff(held, before) > 1e-6, cls


@pytest.mark.parametrize("solver, call", [("sgd", "partial_fit"), ("sgd", "warm_start"), ("lbfgs", "warm_start")])
def test_fitted_weights_reassigned_as_tuples_train_on(solver, call, clf_data):
    """coefs_ and intercepts_ reassigned as tuples of the fitted arrays train
    on as tuples of copies do, into lists of the arrays as a fit leaves them."""
    X, y = clf_data
    params = dict(FAST, solver=solver, warm_start=call == "warm_start")
    same, copies = MLPClassifier(**params).fit(X, y), MLPClassifier(**params).fit(X, y)
    same.coefs_, same.intercepts_ = tuple(same.coefs_), tuple(same.intercepts_)
    copies.coefs_, copies.intercepts_ = tuple(c.copy() for c in copies.coefs_), tuple(
        b.copy() for b in copies.intercepts_)
    for est in (same, copies):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.partial_fit(X, y) if call == "partial_fit" else est.fit(X, y)
        assert type(est.coefs_) is list and type(est.intercepts_) is list
    for a, b in zip(weights(same), weights(copies)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_assigned_coefs_are_used_like_sklearn(solver, clf_data):
    """A user assigning coefs_ / intercepts_ changes predict and the warm-started fit."""
    X, y = clf_data
    params = dict(FAST, solver=solver, warm_start=True)
    ours, theirs = MLPClassifier(**params).fit(X, y), SkMLPClassifier(**params).fit(X, y)
    rng = np.random.RandomState(3)
    new_coefs = [rng.normal(scale=0.3, size=c.shape) for c in theirs.coefs_]
    new_intercepts = [rng.normal(scale=0.3, size=b.shape) for b in theirs.intercepts_]
    for est in (ours, theirs):
        est.coefs_ = [c.copy() for c in new_coefs]
        est.intercepts_ = [b.copy() for b in new_intercepts]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10,
                               atol=1e-12)
    # In-place edit of one array as well.
    for est in (ours, theirs):
        est.coefs_[0][0, :] = 0.5
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10,
                               atol=1e-12)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert rel_diff(weights(ours), weights(theirs)) < 1e-6


# ------------------------------------------------------------------- inputs


def _sparse_problem(kind):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 12))
    X[rng.uniform(size=X.shape) < 0.7] = 0.0
    X[:, 3] = 0.0  # an empty column
    X[5, :] = 0.0  # an empty row
    if kind == "clf":
        y = (X[:, 0] + X[:, 1] - X[:, 2] > 0).astype(int) + (X[:, 4] > 0.5)
    else:
        y = np.column_stack([X[:, 0] - 2 * X[:, 1], X[:, 2] * X[:, 5]])
    return X, y


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_sparse_input_matches_dense(kind, solver, fmt):
    X, y = _sparse_problem(kind)
    cls = MLPClassifier if kind == "clf" else MLPRegressor
    params = dict(FAST, solver=solver, learning_rate_init=0.01)
    dense = cls(**params).fit(X, y)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    sparse = cls(**params).fit(Xs, y)
    assert rel_diff(weights(sparse), weights(dense)) <= 1e-10
    np.testing.assert_allclose(
        np.asarray(sparse.predict(Xs), float), np.asarray(dense.predict(X), float),
        rtol=1e-10, atol=1e-12,
    )
    # The sparse model is scikit-learn's model as well.
    sk_cls = SkMLPClassifier if kind == "clf" else SkMLPRegressor
    theirs = sk_cls(**params).fit(Xs, y)
    assert rel_diff(weights(sparse), weights(theirs)) <= 1e-6


def test_sparse_early_stopping_and_partial_fit_match_dense():
    X, y = _sparse_problem("clf")
    params = dict(FAST, solver="adam", learning_rate_init=0.01)
    dense = MLPClassifier(early_stopping=True, **params).fit(X, y)
    sparse = MLPClassifier(early_stopping=True, **params).fit(sp.csr_matrix(X), y)
    assert rel_diff(weights(sparse), weights(dense)) <= 1e-10
    np.testing.assert_allclose(sparse.validation_scores_, dense.validation_scores_)
    dense = MLPClassifier(**params)
    sparse = MLPClassifier(**params)
    for sl in (slice(0, 80), slice(80, 160)):
        dense.partial_fit(X[sl], y[sl], classes=[0, 1, 2])
        sparse.partial_fit(sp.csr_matrix(X[sl]), y[sl], classes=[0, 1, 2])
    assert rel_diff(weights(sparse), weights(dense)) <= 1e-10


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dataframe_sets_feature_names(cls, clf_data, reg_data):
    X, y = clf_data if cls is MLPClassifier else reg_data
    columns = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    est = cls(**FAST).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    assert est.n_features_in_ == X.shape[1]
    assert_bitwise_same(est, cls(**FAST).fit(X, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(est.predict(df), est.predict(X))
    # As every scikit-learn estimator: numpy input after a DataFrame fit warns.
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    # A numpy fit has no feature names.
    assert not hasattr(cls(**FAST).fit(X, y), "feature_names_in_")


def test_dataframe_with_wrong_column_names_is_rejected_like_sklearn(clf_data):
    X, y = clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ours, theirs = MLPClassifier(**FAST).fit(df, y), SkMLPClassifier(**FAST).fit(df, y)
    renamed = df.rename(columns={"f0": "zz"})
    with pytest.raises(ValueError) as sk_err:
        theirs.predict(renamed)
    with pytest.raises(type(sk_err.value), match="feature names"):
        ours.predict(renamed)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_memory_layouts_and_object_arrays_fit_the_same(solver, clf_data):
    X, y = clf_data
    params = dict(FAST, solver=solver)
    ref = MLPClassifier(**params).fit(X, y)
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    variants = {
        "fortran": np.asfortranarray(X),
        "strided": wide[:, ::2],
        "object": X.astype(object),
        "list": X.tolist(),
    }
    for name, Xv in variants.items():
        est = MLPClassifier(**params).fit(Xv, y)
        assert_bitwise_same(est, ref)
        np.testing.assert_array_equal(est.predict(Xv), ref.predict(X))


def test_multilabel_and_string_labels(clf_data):
    X, y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=4,
                                          random_state=0)
    ours = MLPClassifier(solver="adam", **FAST).fit(X, y)
    theirs = SkMLPClassifier(solver="adam", **FAST).fit(X, y)
    assert ours.predict(X).shape == y.shape
    assert ours.predict_proba(X).shape == y.shape
    assert ours.out_activation_ == "logistic"
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    X, y = clf_data
    labels = np.array(["cat", "dog", "emu"])[y]
    ours = MLPClassifier(**FAST).fit(X, labels)
    theirs = SkMLPClassifier(**FAST).fit(X, labels)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.predict(X).dtype == theirs.predict(X).dtype


@pytest.mark.parametrize("y_kind", ["binary", "multiclass"])
def test_predict_proba_and_log_proba(y_kind, clf_data):
    X, y = clf_data
    if y_kind == "binary":
        y = (y > 0).astype(int)
    ours = MLPClassifier(**FAST).fit(X, y)
    theirs = SkMLPClassifier(**FAST).fit(X, y)
    proba = ours.predict_proba(X)
    assert proba.shape == (X.shape[0], len(ours.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, theirs.predict_proba(X), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.predict_log_proba(X), np.log(proba), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ours.classes_[np.argmax(proba, axis=1)])
    assert ours.score(X, y) == theirs.score(X, y)


def test_regressor_outputs_and_score(reg_data):
    X, y = reg_data
    ours = MLPRegressor(**FAST).fit(X, y)
    theirs = SkMLPRegressor(**FAST).fit(X, y)
    assert ours.predict(X).shape == y.shape
    ours1 = MLPRegressor(**FAST).fit(X, y[:, 0])
    assert ours1.predict(X).shape == (X.shape[0],)
    assert ours1.n_outputs_ == 1
    np.testing.assert_allclose(ours.score(X, y), theirs.score(X, y), rtol=1e-6)
    sw = np.linspace(0.5, 2.0, X.shape[0])
    np.testing.assert_allclose(ours.score(X, y, sample_weight=sw),
                               theirs.score(X, y, sample_weight=sw), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
def test_single_class_and_single_sample_like_sklearn(clf_data, reg_data):
    X, y = clf_data
    one_class = np.full(X.shape[0], 7)
    ours = MLPClassifier(**FAST).fit(X, one_class)
    theirs = SkMLPClassifier(**FAST).fit(X, one_class)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert rel_diff(weights(ours), weights(theirs)) < 1e-6
    Xr, yr = reg_data
    for solver in ("sgd", "adam", "lbfgs"):
        ours = MLPRegressor(solver=solver, **FAST).fit(Xr[:1], yr[:1])
        theirs = SkMLPRegressor(solver=solver, **FAST).fit(Xr[:1], yr[:1])
        assert rel_diff(weights(ours), weights(theirs)) < 1e-6, solver


# ------------------------------------------------------ verbose and warnings

_LINE = re.compile(r"^Iteration (\d+), loss = ([0-9.eE+-]+|nan|inf)$")


def _iteration_lines(text):
    lines = [m for m in (_LINE.match(line.strip()) for line in text.splitlines()) if m]
    return [int(m.group(1)) for m in lines], [float(m.group(2)) for m in lines]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_verbose_prints_epoch_losses(solver, clf_data, capsys):
    X, y = clf_data
    est = MLPClassifier(solver=solver, verbose=True, **FAST).fit(X, y)
    ours_out = capsys.readouterr().out
    SkMLPClassifier(solver=solver, verbose=True, **FAST).fit(X, y)
    theirs_out = capsys.readouterr().out
    numbers, losses = _iteration_lines(ours_out)
    assert numbers == list(range(1, est.n_iter_ + 1))
    np.testing.assert_allclose(losses, est.loss_curve_, rtol=1e-7, atol=1e-8)
    sk_numbers, sk_losses = _iteration_lines(theirs_out)
    assert numbers == sk_numbers
    np.testing.assert_allclose(losses, sk_losses, rtol=1e-6, atol=1e-8)


def test_verbose_early_stopping_prints_validation_scores(clf_data, capsys):
    X, y = clf_data
    est = MLPClassifier(verbose=True, early_stopping=True, **FAST).fit(X, y)
    out = capsys.readouterr().out
    scores = [float(s) for s in re.findall(r"Validation score: ([0-9.]+)", out)]
    np.testing.assert_allclose(scores, est.validation_scores_, atol=1e-6)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_verbose_lbfgs_prints_iterations(cls, clf_data, reg_data, capsys):
    X, y = clf_data if cls is MLPClassifier else reg_data
    est = cls(solver="lbfgs", verbose=True, **FAST).fit(X, y)
    numbers, losses = _iteration_lines(capsys.readouterr().out)
    assert numbers[0] == 1
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == est.n_iter_
    assert np.all(np.isfinite(losses))
    np.testing.assert_allclose(losses[-1], est.loss_, rtol=1e-7, atol=1e-8)


def test_not_verbose_prints_nothing(clf_data, capsys):
    X, y = clf_data
    for solver in ("sgd", "adam", "lbfgs"):
        MLPClassifier(solver=solver, **FAST).fit(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_convergence_warning_when_max_iter_reached(solver, clf_data):
    X, y = clf_data
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(solver=solver, **FAST).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        MLPRegressor(solver=solver, **FAST).fit(X, y.astype(float))


def test_partial_fit_does_not_warn_about_convergence(clf_data):
    X, y = clf_data
    est = MLPClassifier(**FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.partial_fit(X, y)
    assert est.n_iter_ == 1
    assert len(est.loss_curve_) == 2
    assert est.t_ == 2 * X.shape[0]


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fitted_losses_have_scikit_learns_types(solver, dtype, clf_data):
    """loss_, best_loss_ and the loss curve hold NumPy floats in scikit-learn
    (np.float64 for float32 data too): their repr, .item() and .dtype are
    what code written against it reads."""
    X, y = clf_data
    ours = MLPClassifier(solver=solver, **FAST).fit(X.astype(dtype), y)
    theirs = SkMLPClassifier(solver=solver, **FAST).fit(X.astype(dtype), y)
    assert type(ours.loss_) is type(theirs.loss_)
    if solver != "lbfgs":
        assert [type(v) for v in ours.loss_curve_] == [type(v) for v in theirs.loss_curve_]
        assert type(ours.best_loss_) is type(theirs.best_loss_)
        ours.partial_fit(X.astype(dtype), y)
        assert type(ours.loss_) is type(theirs.loss_)


def test_fit_returns_self_and_tags(clf_data):
    X, y = clf_data
    est = MLPClassifier(**FAST)
    assert est.fit(X, y) is est
    reg = MLPRegressor(**FAST)
    assert reg.fit(X, y.astype(float)) is reg
    assert est.__sklearn_tags__().estimator_type == "classifier"
    assert reg.__sklearn_tags__().estimator_type == "regressor"
    assert est.__sklearn_tags__().input_tags.sparse
    assert est.__sklearn_tags__().classifier_tags.multi_label
    # iris accuracy as a sanity check of a longer fit
    Xi, yi = load_iris(return_X_y=True)
    assert MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0,
                         max_iter=300).fit(Xi, yi).score(Xi, yi) > 0.95


@pytest.mark.parametrize("labels", [
    np.array([3, 1, 2, 1, 3, 3, 2]),
    np.array(["b", "a", "c", "a", "c"], dtype=object),
    np.array([1.0, -1.0, 1.0, 2.0]),
    np.array(["no", "yes", "yes", "no"]),
])
def test_partial_fit_chunks_are_binarized_like_label_binarizer(labels):
    """The indicator matrix fit builds itself equals LabelBinarizer.transform's,
    for the classes of the data and for a chunk holding a subset of them."""
    from sklearn.preprocessing import LabelBinarizer

    from fastbp._labels import binarize as _binarize

    binarizer = LabelBinarizer().fit(labels)
    for y in (labels, labels[labels != labels[0]], labels[:1]):
        expected = binarizer.transform(y).astype(bool)
        got = _binarize(binarizer, y)
        assert got.dtype == bool and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_long_partial_fit_runs_keep_the_whole_loss_curve_on_failure(clf_data):
    """The state restored after a failed call holds the loss curve of every earlier call."""
    X, y = clf_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(30):
        clf.partial_fit(X, y, classes=np.unique(y))
    curve = list(clf.loss_curve_)
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, np.where(y == y[0], 99, y))
    assert clf.loss_curve_ == curve and len(curve) == 30


def test_subclass_defining_eq_fits_predicts_and_is_forgotten_when_collected():
    """A subclass with __eq__ has no hash, as scikit-learn's MLP allows: the
    per-estimator fit lock and predict state are kept by identity, and dropped
    with the estimator."""
    import gc

    from fastbp import _mlp

    class Comparable(MLPClassifier):
        def __eq__(self, other):
            return type(self) is type(other) and self.get_params() == other.get_params()

    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Comparable(**params).fit(X, y)
        reference = MLPClassifier(**params).fit(X, y)
        model.partial_fit(X, y)
        reference.partial_fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))
    assert model == clone(model)
    ident = id(model)
    assert _mlp._FIT_LOCKS.get(model) is not None and _mlp._PREDICT_STATE.get(model) is not None
    del model
    gc.collect()
    # Each entry was dropped with its estimator: none is left whose estimator is gone.
    for table in (_mlp._FIT_LOCKS, _mlp._PREDICT_STATE):
        assert ident not in table._entries or table._entries[ident][0]() is not None
        assert all(ref() is not None for ref, _ in table._entries.values())
