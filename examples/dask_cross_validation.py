"""A cross-validation experiment on a Dask cluster: a grid search of fastbp's
MLPClassifier on digits, run once in this process and once on a LocalCluster of
two worker processes, with the speed-up and a check that both agree.

Needs the `distributed` extra, which fastbp does not require: pip install 'fastbp[distributed]'
(pip install -e '.[distributed]' in a checkout).
Run: python examples/dask_cross_validation.py
"""

import time
import warnings

import joblib
import numpy as np

try:
    from distributed import Client, LocalCluster
except ModuleNotFoundError:
    raise SystemExit("examples/dask_cross_validation.py runs on a Dask cluster, which fastbp does not require: "
                     "pip install 'fastbp[distributed]' (or pip install 'dask[distributed]').") from None
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier

GRID = {"mlpclassifier__alpha": [1e-4, 1e-2], "mlpclassifier__hidden_layer_sizes": [(32,), (64,), (128,)]}


def search(X, y):
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0))
    start = time.perf_counter()
    result = GridSearchCV(pipeline, GRID, cv=5).fit(X, y)
    return result, time.perf_counter() - start


def main():
    X, y = load_digits(return_X_y=True)
    with joblib.parallel_backend("sequential"):
        local, local_s = search(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster), joblib.parallel_backend("dask"):
            # Workers import fastbp and load its kernels once, on five rows of each
            # class: as many as the search's stratified folds, so each fold has all classes.
            warm = np.concatenate([np.flatnonzero(y == label)[:5] for label in np.unique(y)])
            search(X[warm], y[warm])
            remote, remote_s = search(X, y)
    same = (local.best_params_ == remote.best_params_
            and np.array_equal(local.cv_results_["mean_test_score"], remote.cv_results_["mean_test_score"]))
    print(f"grid of {len(local.cv_results_['params'])} settings x 5 folds on digits {X.shape}")
    print(f"  one process:          best {local.best_params_}  score {local.best_score_:.4f}  {local_s:6.2f} s")
    print(f"  Dask, 2 worker procs: best {remote.best_params_}  score {remote.best_score_:.4f}  {remote_s:6.2f} s")
    print(f"  speed-up over one process: {local_s / remote_s:.2f}x; same scores and best parameters: {same}")


if __name__ == "__main__":
    main()
