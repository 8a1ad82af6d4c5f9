"""scikit-learn's callback API (sklearn.callback, scikit-learn >= 1.9): the fit
is the root task, each epoch (each L-BFGS iteration) a sub-task with the model
as it stands at its end."""

import importlib
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier, MLPRegressor, _callbacks, _mlp
from fastbp._backends import BACKENDS

callback = pytest.importorskip("sklearn.callback", reason="scikit-learn >= 1.9 has sklearn.callback")
ProgressBar, ScoringMonitor = callback.ProgressBar, callback.ScoringMonitor

EPOCH_TASKS = ("epoch", "lbfgs-iter")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    # String labels: a scorer given the binarized targets instead would fail.
    return X[:300] / 16, np.array(["low", "mid", "high"])[y[:300] % 3]


class Recorder:
    """Keeps the fitted estimator given at each epoch's end; asks the fit to
    stop at the end of epoch stop_at (counted from 1), if given."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.models = []
        self.teardowns = 0

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        self.teardowns += 1

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name in EPOCH_TASKS and fitted_estimator is not None:
            self.models.append(fitted_estimator)
            return len(self.models) == self.stop_at
        return False


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def epoch_rows(log):
    return [row for row in log.data if row["task_name"] in EPOCH_TASKS]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_scoring_monitor_scores_each_epoch_end_model(data, solver):
    X, y = data
    params = {"hidden_layer_sizes": (16,), "solver": solver, "max_iter": 6, "random_state": 0}
    monitor, recorder = ScoringMonitor(scoring="accuracy"), Recorder()
    clf = fit_quietly(MLPClassifier(**params).set_callbacks(monitor, recorder), X, y)

    log = monitor.get_logs()
    rows = epoch_rows(log)
    assert len(rows) == clf.n_iter_ == len(recorder.models) == 6
    assert len(log.data) == clf.n_iter_ + 1  # and the root fit's row
    assert [row["task_id"] for row in rows] == list(range(6))
    # Copies, not views of the training buffer: epoch 3's model is a 3-epoch fit's.
    three = fit_quietly(MLPClassifier(**{**params, "max_iter": 3}), X, y)
    for got, want in zip(recorder.models[2].coefs_ + recorder.models[2].intercepts_,
                         three.coefs_ + three.intercepts_):
        np.testing.assert_array_equal(got, want)
    assert rows[2]["accuracy"] == accuracy_score(y, three.predict(X))
    root = next(row for row in log.data if row["task_name"] == "fit")
    assert root["accuracy"] == rows[-1]["accuracy"] == clf.score(X, y)


def test_epoch_rows_follow_n_iter_when_the_fit_stops_early(data):
    X, y = data
    monitor = ScoringMonitor(scoring="accuracy")
    # An improvement of at least tol=1e3 never comes: the stopping test ends the fit.
    clf = MLPClassifier((8,), max_iter=10, tol=1e3, n_iter_no_change=2, random_state=0).set_callbacks(monitor)
    clf.fit(X, y)
    assert clf.n_iter_ < 10
    assert len(epoch_rows(monitor.get_logs())) == clf.n_iter_


def test_partial_fit_is_one_epoch_task_per_call(data):
    X, _ = data
    target = X[:, :4].sum(axis=1)
    monitor = ScoringMonitor(scoring="r2")
    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0).set_callbacks(monitor)
    for _ in range(3):
        reg.partial_fit(X, target)
    logs = monitor.get_logs(select="all")
    assert len(logs) == 3
    assert all(len(epoch_rows(log)) == 1 and len(log.data) == 2 for log in logs)
    assert logs[-1].data[-1]["r2"] == reg.score(X, target)


@pytest.mark.parametrize("solver, early_stopping", [("adam", False), ("adam", True), ("lbfgs", False)])
def test_stop_request_ends_the_fit_as_max_iter_does(data, solver, early_stopping):
    X, y = data
    params = {"hidden_layer_sizes": (16,), "solver": solver, "early_stopping": early_stopping, "random_state": 0}
    recorder = Recorder(stop_at=3)
    clf = MLPClassifier(max_iter=10, **params).set_callbacks(recorder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == len(recorder.models) == 3
    # With early stopping, max_iter=3 restores the best validation weights too.
    reference = fit_quietly(MLPClassifier(max_iter=3, **params), X, y)
    for got, want in zip(clf.coefs_ + clf.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(got, want)
    if early_stopping:
        assert clf.validation_scores_ == reference.validation_scores_


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_no_callback_no_cost(data, monkeypatch, backend):
    X, y = data
    calls = {"epoch": 0, "model": 0}
    engine = BACKENDS[backend]
    epoch, epoch_model = engine.train_epoch, _callbacks.epoch_model

    def counted_epoch(*args):
        calls["epoch"] += 1
        return epoch(*args)

    def counted_model(*args):
        calls["model"] += 1
        return epoch_model(*args)

    monkeypatch.setattr(engine, "train_epoch", counted_epoch)
    monkeypatch.setattr(_callbacks, "epoch_model", counted_model)
    monkeypatch.setattr(_callbacks, "_SubTasks", None)  # opening a sub-task would fail
    clf = fit_quietly(MLPClassifier((8,), max_iter=4, backend=backend, random_state=0), X, y)
    assert calls == {"epoch": clf.n_iter_, "model": 0}


def test_reconstruction_is_evaluated_only_when_a_callback_asks(data, monkeypatch):
    X, y = data
    calls = []
    epoch_model = _callbacks.epoch_model
    monkeypatch.setattr(_callbacks, "epoch_model", lambda *args: calls.append(1) or epoch_model(*args))
    clf = fit_quietly(MLPClassifier((8,), max_iter=4, random_state=0).set_callbacks(ProgressBar()), X, y)
    assert calls == []
    fit_quietly(clf.set_callbacks(ScoringMonitor(scoring="accuracy")), X, y)
    assert len(calls) == clf.n_iter_  # each epoch's end; ScoringMonitor ignores the beginnings


def test_progress_bar_on_estimator_pipeline_and_grid_search(data):
    X, y = data
    clf = MLPClassifier((8,), max_iter=3, random_state=0)
    plain = fit_quietly(clone(clf), X, y)
    shown = fit_quietly(clone(clf).set_callbacks(ProgressBar()), X, y)
    np.testing.assert_array_equal(shown.predict_proba(X), plain.predict_proba(X))

    pipe = make_pipeline(StandardScaler(), clone(clf))
    plain = fit_quietly(clone(pipe), X, y)
    shown = fit_quietly(clone(pipe).set_callbacks(ProgressBar()), X, y)
    np.testing.assert_array_equal(shown.predict_proba(X), plain.predict_proba(X))

    grid = GridSearchCV(clf, {"alpha": [1e-4, 1e-1]}, cv=2)
    plain = fit_quietly(clone(grid), X, y)
    shown = fit_quietly(clone(grid).set_callbacks(ProgressBar()), X, y)
    assert shown.best_params_ == plain.best_params_
    np.testing.assert_array_equal(shown.predict_proba(X), plain.predict_proba(X))

    # As for scikit-learn's estimators: a progress bar belongs on the meta-estimator.
    inner = make_pipeline(StandardScaler(), clone(clf).set_callbacks(ProgressBar()))
    with pytest.raises(TypeError, match="Register them directly on the meta-estimator"):
        inner.fit(X, y)


def test_failed_fit_keeps_its_callbacks_and_tears_them_down(data):
    X, y = data

    class Failing(Recorder):
        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if super().on_fit_task_end(estimator, context, fitted_estimator=fitted_estimator):
                raise RuntimeError("callback failed")

    first = Recorder()
    clf = fit_quietly(MLPClassifier((8,), max_iter=2, random_state=0).set_callbacks(first), X, y)
    coefs = [c.copy() for c in clf.coefs_]
    failing = Failing(stop_at=1)
    clf.set_callbacks(failing)
    with pytest.raises(RuntimeError, match="callback failed"):
        fit_quietly(clf.set_params(max_iter=3), X, y)
    # The model of the last good fit, and the very callback (not a copy) set after it.
    for got, want in zip(clf.coefs_, coefs):
        np.testing.assert_array_equal(got, want)
    assert clf._skl_callbacks == [failing] and failing.teardowns == 1
    assert not hasattr(clf, "_callback_fit_ctx")


def test_a_callback_failing_at_the_fits_end_keeps_the_previous_model(data):
    """The root task's end hook runs after the last epoch; when it raises, the
    fit fails, and fails as any epoch's failure does: the model of before."""
    X, y = data

    class FailingAtEnd(Recorder):
        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if context.task_name not in EPOCH_TASKS:
                raise RuntimeError("end hook failed")
            return super().on_fit_task_end(estimator, context, fitted_estimator=fitted_estimator)

    clf = fit_quietly(MLPClassifier((8,), max_iter=2, warm_start=True, random_state=0), X, y)
    coefs, curve, t = [c.copy() for c in clf.coefs_], list(clf.loss_curve_), clf.t_
    clf.set_callbacks(FailingAtEnd())
    with pytest.raises(RuntimeError, match="end hook failed"):
        fit_quietly(clf, X, y)
    for got, want in zip(clf.coefs_, coefs):
        np.testing.assert_array_equal(got, want)
    assert clf.loss_curve_ == curve and clf.t_ == t


@pytest.fixture
def without_sklearn_callback(monkeypatch):
    """fastbp's modules as imported where scikit-learn has no sklearn.callback,
    put back as they were afterwards."""
    for module in (_callbacks, _mlp):
        for name, value in list(vars(module).items()):
            monkeypatch.setattr(module, name, value)
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)
    importlib.reload(_callbacks)
    return importlib.reload(_mlp)


def test_without_sklearn_callback_fits_work_and_set_callbacks_says_why(data, without_sklearn_callback):
    X, y = data
    assert not _callbacks.SUPPORTED
    clf = fit_quietly(without_sklearn_callback.MLPClassifier((8,), max_iter=2, random_state=0), X, y)
    assert clf.n_iter_ == 2 and clf.score(X, y) > 0
    with pytest.raises(ImportError, match=r"scikit-learn >= 1\.9"):
        clf.set_callbacks(Recorder())


class TaskEnds(Recorder):
    """Keeps what each L-BFGS iteration's end hook gets as fitted_estimator."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "lbfgs-iter":
            self.ends.append(fitted_estimator)
        return False


@pytest.mark.parametrize("max_iter, tol", [(6, 1e-4), (500, 1e-3)], ids=["max_iter", "converged"])
def test_lbfgs_ends_each_iteration_once_with_its_model(data, max_iter, tol):
    X, y = data
    recorder = TaskEnds()
    clf = MLPClassifier((8,), solver="lbfgs", max_iter=max_iter, tol=tol, random_state=0)
    fit_quietly(clf.set_callbacks(recorder), X, y)
    assert (clf.n_iter_ == max_iter) == (max_iter == 6)
    # No extra, empty end after scipy's last iteration.
    assert len(recorder.ends) == clf.n_iter_
    assert all(model is not None for model in recorder.ends)
    # The last iteration's model is the fitted one.
    for got, want in zip(recorder.ends[-1].coefs_ + recorder.ends[-1].intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(got, want)
