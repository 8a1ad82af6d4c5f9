"""Property-based checks of the sparse input path (hypothesis): whatever the
pattern of stored values — empty rows, an empty matrix, a single stored
value, explicit zeros — a sparse X trains and predicts as its dense copy.
CI runs this module again under NUMBA_BOUNDSCHECK=1, where an out-of-bounds
access in the kernels raises instead of corrupting memory silently.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastbp import MLPClassifier, MLPRegressor

# Rows fewer than batch_size are clipped to one batch, with scikit-learn's warning.
pytestmark = pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")


@st.composite
def sparse_matrices(draw):
    """A CSR matrix of 1–12 rows and 1–6 columns whose stored values (none,
    one, or many; zeros among them kept as explicit entries) sit anywhere."""
    n_rows = draw(st.integers(1, 12))
    n_cols = draw(st.integers(1, 6))
    cells = draw(st.dictionaries(
        st.tuples(st.integers(0, n_rows - 1), st.integers(0, n_cols - 1)),
        st.one_of(st.just(0.0), st.floats(-3, 3, allow_nan=False)),
        max_size=n_rows * n_cols,
    ))
    rows = np.array([r for r, _ in cells], dtype=np.int64)
    cols = np.array([c for _, c in cells], dtype=np.int64)
    values = np.array(list(cells.values()), dtype=np.float64)
    X = sp.csr_matrix((values, (rows, cols)), shape=(n_rows, n_cols))
    assert X.nnz == len(cells)  # explicit zeros stay stored
    return X


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fit(cls, X, y, solver):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(hidden_layer_sizes=(3,), solver=solver, max_iter=2, batch_size=4, random_state=0).fit(X, y)


@SETTINGS
@given(X=sparse_matrices(), solver=st.sampled_from(["adam", "sgd", "lbfgs"]), dtype=st.sampled_from(["f4", "f8"]))
def test_sparse_regression_equals_its_dense_copy(X, solver, dtype):
    X = X.astype(dtype)
    y = np.arange(X.shape[0], dtype=np.float64) % 3
    sparse = _fit(MLPRegressor, X, y, solver)
    dense = _fit(MLPRegressor, X.toarray(), y, solver)
    rtol = 1e-4 if dtype == "f4" and solver != "lbfgs" else 1e-9
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=rtol, atol=rtol)


@SETTINGS
@given(X=sparse_matrices())
def test_sparse_partial_fit_chunks_equal_their_dense_copies(X):
    y = np.arange(X.shape[0]) % 2
    classes = np.array([0, 1])
    sparse = MLPClassifier(hidden_layer_sizes=(3,), random_state=0, batch_size=3)
    dense = MLPClassifier(hidden_layer_sizes=(3,), random_state=0, batch_size=3)
    # Two chunks: the second may hold no stored value at all.
    for chunk in (slice(0, X.shape[0] // 2 + 1), slice(X.shape[0] // 2 + 1, None)):
        if X[chunk].shape[0] == 0:
            continue
        sparse.partial_fit(X[chunk], y[chunk], classes=classes)
        dense.partial_fit(X[chunk].toarray(), y[chunk], classes=classes)
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()), rtol=1e-9)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 40)])
def test_an_all_empty_sparse_matrix_predicts_the_bias_path(shape):
    X = sp.csr_matrix(shape)
    y = np.arange(shape[0]) % 2
    model = _fit(MLPClassifier, X, y, "adam")
    np.testing.assert_allclose(model.predict_proba(X), model.predict_proba(np.zeros(shape)), rtol=1e-12)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("index_dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("data_dtype", [np.float64, np.float32])
def test_unsigned_csr_index_arrays_train_and_predict_as_signed_ones_without_warnings(backend, index_dtype, solver,
                                                                                     data_dtype):
    """scipy's CSR constructor warns on unsigned index arrays ("non-integer
    dtype"), which scikit-learn's MLP takes silently: fit, partial_fit and a
    predict of several chunks warned up to four times and now say nothing.
    (lbfgs trains float32 data in float64, converting X.)"""
    X = sp.random(4200, 30, density=0.1, format="csr", random_state=0, dtype=data_dtype)
    y = np.arange(4200) % 3
    unsigned = X.copy()
    unsigned.indices, unsigned.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    params = dict(hidden_layer_sizes=(5,), max_iter=2, random_state=0, backend=backend, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = MLPClassifier(**params).fit(X, y)
        model = MLPClassifier(**params).fit(unsigned, y)
        if solver == "adam":
            expected.partial_fit(X, y)
            model.partial_fit(unsigned, y)
        got = model.predict_proba(unsigned)
    assert unsigned.indices.dtype == index_dtype
    np.testing.assert_array_equal(got, expected.predict_proba(X))


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_malformed_unsigned_csr_is_named_as_signed_csr_is(backend):
    """A damaged CSR with uint32 index arrays got scipy's own words ("index
    pointer should start with 0") from the loop backend's predict, where a
    signed one gets fastbp's "Malformed CSR input"."""
    X = sp.random(40, 6, density=0.3, format="csr", random_state=0)
    model = MLPClassifier((3,), max_iter=1, random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, np.arange(40) % 2)
    damaged = X.copy()
    damaged.indices, damaged.indptr = X.indices.astype(np.uint32), X.indptr.astype(np.uint32)
    damaged.indptr[0] = 1
    for call in (model.predict_proba, lambda X: model.fit(X, np.arange(40) % 2)):
        with pytest.raises(ValueError, match="Malformed CSR input"):
            call(damaged)
