"""The workloads: data, network shape, solver, batch size."""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_classification, make_regression


@dataclass(frozen=True)
class Workload:
    name: str
    group: str  # reference | width | batch | regression | sparse | solver
    data: str
    hidden: tuple
    solver: str = "adam"
    batch_size: int = 200
    params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def task(self):
        return "regression" if self.data.startswith("regression") else "classification"


def load(data, dtype):
    """(X, y) of a named data set, X in dtype."""
    if data == "digits":
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(dtype), y
    if data.startswith("classification"):
        n = int(data.split("-")[1])
        X, y = make_classification(n, 100, n_informative=50, n_classes=10, random_state=0)
        return X.astype(dtype), y
    if data == "regression":
        X, y = make_regression(20000, 50, n_informative=30, noise=1.0, random_state=0)
        return X.astype(dtype), (y / y.std()).astype(dtype)
    if data == "sparse":
        rng = np.random.default_rng(0)
        X = sp.random(20000, 5000, density=0.01, format="csr", random_state=0, dtype=np.float64)
        return X.astype(dtype), rng.integers(0, 10, 20000)
    raise ValueError(data)


REFERENCE = [
    Workload("digits 64-100-10", "reference", "digits", (100,)),
    Workload("clf50k 100-100-10", "reference", "classification-50000", (100,)),
    Workload("clf50k 100-256-256-10", "reference", "classification-50000", (256, 256)),
]


def full_suite():
    return REFERENCE + [
        *(Workload(f"width {w}", "width", "classification-10000", (w,)) for w in (32, 64, 128, 256, 512, 1024)),
        *(Workload(f"batch {b}", "batch", "digits", (100,), batch_size=b) for b in (1, 32, 200, 1000)),
        Workload("regression 50-100-1", "regression", "regression", (100,)),
        Workload("sparse 5000-100-10 (1%)", "sparse", "sparse", (100,)),
        Workload("sgd digits 64-100-10", "solver", "digits", (100,), solver="sgd"),
        Workload("sgd clf50k 100-100-10", "solver", "classification-50000", (100,), solver="sgd"),
    ]


def quick_suite():
    return [Workload("digits 64-32-10", "reference", "digits", (32,))]


def flops_per_epoch(n_samples, n_features, hidden, n_outputs):
    """2 flops per multiply-add: one per weight per sample for the forward pass,
    one for the gradient sums, one for the δ recursion in every layer but the first."""
    units = [n_features, *hidden, n_outputs]
    weights = [a * b for a, b in zip(units[:-1], units[1:])]
    return 2 * n_samples * (2 * sum(weights) + sum(weights[1:]))
