"""Cross-validation beyond one process: Dask's LocalCluster and Ray through joblib.

CI installs the `distributed` and `ray` extras, so these run there; they are
skipped only where those packages are absent.
"""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_validate

from fastbp import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X[:500] / 16.0
y = y[:500]
GRID = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(8,), (16,)]}
PARAMS = dict(max_iter=5, random_state=0)


def _search_and_cv():
    search = GridSearchCV(MLPClassifier(**PARAMS), GRID, cv=3).fit(X, y)
    cv = cross_validate(MLPClassifier(**PARAMS), X, y, cv=3, return_estimator=True)
    return search, cv


@pytest.fixture(scope="module")
def local():
    with joblib.parallel_backend("sequential"):
        return _search_and_cv()


def _assert_same_as_local(remote, local):
    (search, cv), (ref_search, ref_cv) = remote, local
    assert search.best_params_ == ref_search.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], ref_search.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(cv["test_score"], ref_cv["test_score"])
    # Each task gets the worker's budget of one thread, not every core.
    assert {est.n_threads_ for est in cv["estimator"]} == {1}


def test_dask_local_cluster_matches_local_run(local):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with joblib.parallel_backend("dask"):
            remote = _search_and_cv()
    _assert_same_as_local(remote, local)


def test_ray_matches_local_run(local):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with joblib.parallel_backend("ray"):
            remote = _search_and_cv()
    finally:
        ray.shutdown()
    _assert_same_as_local(remote, local)
