"""Inputs and call sequences that once reached compiled code unchecked (the
memory-safety issue): each ends in a fitted model that agrees with
scikit-learn's, or in a Python exception naming the problem, never in an
out-of-bounds access. CI runs the kernel-level part of this module again under
NUMBA_BOUNDSCHECK=1, where such an access raises instead of corrupting the heap.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from fastbp import MLPClassifier, MLPRegressor

SOLVERS = ["lbfgs", "adam", "sgd"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _rel_diff(a_arrays, b_arrays):
    return max(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300) for a, b in zip(a_arrays, b_arrays))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fast_cls, sk_cls", [(MLPClassifier, SkMLPClassifier), (MLPRegressor, SkMLPRegressor)])
def test_sparse_input_with_no_stored_values_fits_as_sklearn(fast_cls, sk_cls, solver, dtype):
    # An empty chunk: documents with no known word, an encoder ignoring unknown categories.
    X = sp.csr_matrix((100, 20), dtype=dtype)
    y = np.random.default_rng(0).integers(0, 3, 100)
    params = dict(hidden_layer_sizes=(7,), solver=solver, max_iter=4, random_state=0, batch_size=32)
    fast = fast_cls(**params).fit(X, y)
    sk = sk_cls(**params).fit(X.astype(np.float64), y)
    assert _rel_diff(fast.coefs_ + fast.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-5
    assert fast.loss_ == pytest.approx(sk.loss_, rel=1e-5)
    if solver != "lbfgs":
        fast.partial_fit(X[:10], y[:10])
        assert np.isfinite(fast.loss_)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_minibatches_some_empty_some_not(solver):
    # Only a few rows hold values: most minibatches of the epoch have none.
    X = sp.random(300, 30, density=0.002, format="csr", random_state=0)
    y = np.random.default_rng(1).integers(0, 2, 300)
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=3, random_state=0, batch_size=16)
    fast = MLPClassifier(**params).fit(X, y)
    sk = SkMLPClassifier(**params).fit(X, y)
    assert _rel_diff(fast.coefs_ + fast.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-6


def test_malformed_csr_is_rejected_before_compiled_code():
    X = sp.csr_matrix(np.eye(4, 3))
    # A column index past n_features, as a hand-built matrix can hold.
    X.indices[0] = 7
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="(?i)column index"):
        model.fit(X, [0, 1, 0, 1])
