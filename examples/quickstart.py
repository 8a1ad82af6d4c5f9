"""Quick start: fastbp's MLPClassifier in place of scikit-learn's, in a Pipeline
with cross_val_score on the digits data that ships with scikit-learn.

Run: python examples/quickstart.py
"""

import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier


def cross_validate(estimator, X, y):
    start = time.perf_counter()
    scores = cross_val_score(make_pipeline(StandardScaler(), estimator), X, y, cv=5)
    return scores.mean(), time.perf_counter() - start


def main():
    X, y = load_digits(return_X_y=True)
    params = dict(hidden_layer_sizes=(100,), max_iter=50, random_state=0)
    warnings.simplefilter("ignore", ConvergenceWarning)

    # The first fit compiles fastbp's kernels (cached on disk for later runs):
    # time it apart, as a user pays it once.
    start = time.perf_counter()
    MLPClassifier(**{**params, "max_iter": 1}).fit(X[:10], y[:10])
    compile_s = time.perf_counter() - start

    fast_acc, fast_s = cross_validate(MLPClassifier(**params), X, y)
    sk_acc, sk_s = cross_validate(SklearnMLPClassifier(**params), X, y)
    print(f"digits {X.shape}, 5-fold cross-validation, hidden layer of 100, adam, 50 epochs")
    print(f"  first call (compile or load from cache): {compile_s:6.2f} s")
    print(f"  fastbp        accuracy {fast_acc:.4f}   {fast_s:6.2f} s")
    print(f"  scikit-learn  accuracy {sk_acc:.4f}   {sk_s:6.2f} s")
    print(f"  speed-up: {sk_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
