"""predict's own path: the fitted flat buffer read in place, forward-only
workspaces reused, small inputs on the calling thread; results the same as
packing the weights afresh, for any thread count and any number of callers."""

import pickle
import re
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from fastbp import MLPClassifier, MLPRegressor, _loop, forward
from fastbp._activations import ACTIVATION_CODES

X, y = load_digits(return_X_y=True)
X = X / 16


def _fit(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden_layer_sizes=(40,), max_iter=5, random_state=0, **params).fit(X, y)


def _reads_buffer_in_place(model):
    return model._packed_parameters(X.shape[1])[2] is model._params


@pytest.mark.parametrize("params", [dict(), dict(solver="lbfgs"), dict(early_stopping=True)])
def test_a_fitted_model_predicts_from_its_own_buffer_without_a_copy(params):
    model = _fit(**params)
    assert _reads_buffer_in_place(model)
    restored = pickle.loads(pickle.dumps(model))
    assert _reads_buffer_in_place(restored)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_assigned_or_edited_weights_are_what_predict_uses():
    model = _fit()
    before = model.predict_proba(X[:50])
    # Views edited in place: the buffer itself changes, and predict sees it.
    model.coefs_[1][:] *= 2
    doubled = model.predict_proba(X[:50])
    assert not np.array_equal(doubled, before)
    # New arrays assigned: packed afresh, and bitwise what the buffer gave.
    model.coefs_ = [c.copy() for c in model.coefs_]
    assert not _reads_buffer_in_place(model)
    np.testing.assert_array_equal(model.predict_proba(X[:50]), doubled)


@pytest.mark.parametrize("rows", [1, 3, 10, 257, 1797])
def test_any_number_of_rows_and_threads_gives_the_same_bits(rows):
    model = _fit()
    reference = model.set_params(n_threads=1).predict_proba(X[:rows])
    for threads in (None, 2):
        np.testing.assert_array_equal(model.set_params(n_threads=threads).predict_proba(X[:rows]), reference)
    np.testing.assert_array_equal(model.predict_proba(sp.csr_matrix(X[:rows])), reference)
    # Against a fresh computation of the textbook forward pass.
    a = X[:rows]
    for layer, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        z = a @ w + b
        a = np.maximum(z, 0) if layer < len(model.coefs_) - 1 else np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(reference, a / a.sum(1, keepdims=True), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_forward_only_region_gives_the_training_regions_bits(monkeypatch, dtype):
    """A predict runs the forward-only region 1 or a training one, whichever
    is at hand (see _loop._forward_region): the same bits from each, dense
    and CSR, on one thread and on two."""
    data = X[:301].astype(dtype)
    model = _fit().fit(data, y[:301])
    for inputs, regions in ((data, [(2, False), (0, False), (2, True), (0, True)]),
                            (sp.csr_matrix(data), [(2, True), (0, True)])):
        results = []
        for region in regions:
            monkeypatch.setattr(_loop, "_forward_region", lambda dtype, general, region=region: region)
            for threads in (1, 2):
                results.append(model.set_params(n_threads=threads).predict_proba(inputs))
        assert results[0].dtype == dtype
        for result in results[1:]:
            np.testing.assert_array_equal(result, results[0])


def test_threads_predicting_at_once_each_get_their_own_workspace():
    model = _fit()
    chunks = [X[i * 37 : i * 37 + 5 + i] for i in range(8)]
    expected = [model.predict_proba(c) for c in chunks]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(200):
                got = model.predict_proba(chunks[i])
                if not np.array_equal(got, expected[i]):
                    results[i] = got
                    return
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not results


def test_spare_workspaces_stay_bounded():
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[:, :4], y)
    for rows in range(1, 600, 7):
        model.predict(X[:rows, :4])
    assert len(_loop._spares) <= _loop._SPARE_KINDS
    assert all(len(spares) <= _loop._SPARES_PER_KIND for spares in _loop._spares.values())


def test_a_small_workspace_is_reused_and_a_large_one_never_kept(monkeypatch):
    units = np.array([64, 41, 7])  # widths no other test predicts with: no spare of theirs
    with _loop._forward_workspace(units, 5, np.float64) as first:
        pass
    # 7 rows round up to the same capacity as 5.
    with _loop._forward_workspace(units, 7, np.float64) as again:
        pass
    assert again is first
    monkeypatch.setattr(_loop, "_SPARE_BYTES", 0)
    with _loop._forward_workspace(units, 300, np.float64) as large:
        pass
    with _loop._forward_workspace(units, 300, np.float64) as large_again:
        pass
    assert large_again is not large


def test_fitted_means_what_check_is_fitted_means_in_scikit_learn():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    model = MLPClassifier()
    with pytest.raises(NotFittedError, match="This MLPClassifier instance is not fitted yet"):
        model.predict(X)
    # scikit-learn's rule: any attribute ending in "_" (and not starting with "__").
    model.__private__ = 1
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    model.seen_ = 1
    check_is_fitted(model)
    check_is_fitted(_fit())


def _counting_validation(monkeypatch):
    from fastbp import _mlp

    calls = []
    validate = _mlp.validate_data

    def counted(*args, **kwargs):
        calls.append(1)
        return validate(*args, **kwargs)

    monkeypatch.setattr(_mlp, "validate_data", counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_plain_array_skips_validate_data_and_predicts_the_same(monkeypatch, dtype):
    model = _fit()
    expected = model.predict_proba(X[:10].tolist())  # a list: validated and converted
    labels = model.predict(X[:10].tolist())
    calls = _counting_validation(monkeypatch)
    rows = np.asarray(X[:10], dtype=dtype)
    got = model.predict_proba(rows)
    assert calls == []
    np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 0, atol=1e-7)
    assert model.predict(rows).tolist() == labels.tolist()
    # Fortran order and a strided view are plain too: predict copies them as validate_data would not need to.
    np.testing.assert_array_equal(model.predict_proba(np.asfortranarray(X[:10])), model.predict_proba(X[:10]))
    np.testing.assert_array_equal(model.predict_proba(X[:20:2]), model.predict_proba(X[:20:2].copy()))
    assert calls == []


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 64), np.nan), "Input X contains NaN"),
    (np.full((2, 64), np.inf), "Input X contains infinity"),
    (np.zeros((2, 3)), "X has 3 features, but MLPClassifier is expecting 64 features as input"),
    (np.zeros((0, 64)), "Found array with 0 sample"),
    (np.zeros(64), "Expected 2D array, got 1D array instead"),
])
def test_input_that_is_not_plain_gets_scikit_learns_message(monkeypatch, bad, message):
    model = _fit()
    calls = _counting_validation(monkeypatch)
    with pytest.raises(ValueError, match=message):
        model.predict(bad)
    assert calls == [1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_forward_pass_finds_a_nan_or_infinity_in_any_row(dtype, n_threads):
    """The loop backend checks a plain array finite inside its forward pass,
    row by row: a bad value anywhere (either thread's share, either chunk of
    a predict) raises scikit-learn's message, as the vectorized backend's
    separate check does, and the model predicts as before afterwards."""
    model = _fit(n_threads=n_threads)
    rows = np.tile(X, (3, 1))[:5000].astype(dtype)
    expected = model.predict_proba(rows)
    messages = {np.nan: "Input X contains NaN", np.inf: "Input X contains infinity",
                -np.inf: "Input X contains infinity"}
    for row, column, bad in [(0, 0, np.nan), (3, 63, np.inf), (2100, 5, -np.inf), (4095, 7, np.nan),
                             (4096, 0, np.inf), (4999, 63, np.nan)]:
        given = rows.copy()
        given[row, column] = bad
        for backend in ("loop", "vectorized"):
            model.set_params(backend=backend)
            with pytest.raises(ValueError, match=messages[bad]):
                model.predict(given)
        model.set_params(backend="loop")
        units, _, params = model._packed_parameters(64)
        work = _loop.Workspace(units, 5000, dtype, backward=False)
        with pytest.raises(_loop.NonFiniteInputError, match=r"\(1 of 5000 rows\)"):
            _loop.forward_pass(params.astype(dtype), units, _loop.input_arrays(given, dtype),
                               ACTIVATION_CODES["relu"], ACTIVATION_CODES["softmax"], work, n_threads)
    np.testing.assert_array_equal(model.predict_proba(rows), expected)


@pytest.mark.parametrize("value", [1e39, np.finfo(np.float64).max])
def test_a_value_beyond_float32_names_the_models_dtype(value):
    """predict casts X to the dtype of coefs_: a finite float64 value beyond
    float32's range would become an infinity there, which the forward pass
    finds; the error then says so in scikit-learn's words for float32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0).fit(X.astype(np.float32), y)
    rows = X[:20].copy()
    rows[7, 3] = value
    expected = model.predict_proba(X[:20])
    message = re.escape("Input X contains infinity or a value too large for dtype('float32')")
    # Every kind of input and both backends: the vectorized backend and a
    # sparse input have no check inside the pass, a list or an object array
    # is validated before it (they gave NaN probabilities or a private error).
    # The error comes alone: no RuntimeWarning from the cast before it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for backend in ("loop", "vectorized"):
            model.set_params(backend=backend)
            for given in (rows, sp.csr_matrix(rows), sp.csc_matrix(rows), rows.tolist(), rows.astype(object),
                          rows.astype(np.longdouble)):
                for method in (model.predict, model.predict_proba, lambda rows: model.score(rows, y[:20])):
                    with pytest.raises(ValueError, match=message):
                        method(given)
    np.testing.assert_array_equal(model.set_params(backend="loop").predict_proba(X[:20]), expected)
    # partial_fit casts X to the model's float32 as well: the same message, not
    # one about the solver's weights, and the model is left as it was.
    model = MLPClassifier(hidden_layer_sizes=(20,), random_state=0).partial_fit(X.astype(np.float32), y,
                                                                                classes=np.unique(y))
    coefs = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match=message):
        model.partial_fit(rows, y[:20])
    for before, after in zip(coefs, model.coefs_):
        np.testing.assert_array_equal(before, after)


def test_a_longdouble_value_beyond_float64_names_float64():
    model = _fit()
    rows = X[:5].astype(np.longdouble)
    rows[2, 1] = np.longdouble(1e308) * 10
    if not np.isfinite(rows[2, 1]):
        pytest.skip("longdouble is float64 on this platform")
    for given in (rows, sp.csr_matrix(rows)):
        with pytest.raises(ValueError, match=re.escape("Input X contains infinity or a value too large for "
                                                       "dtype('float64')")):
            model.predict(given)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("n_threads", [0, -1, 1.5, "2"])
def test_an_invalid_n_threads_set_after_fit_gets_fits_message_at_predict(backend, n_threads):
    model = _fit(backend=backend).set_params(n_threads=n_threads)
    message = re.escape("The 'n_threads' parameter of MLPClassifier must be None or an int in the range [1, inf). "
                        f"Got {n_threads!r} instead.")
    for method in (model.predict, model.predict_proba):
        with pytest.raises(InvalidParameterError, match=message):
            method(X[:3])
    with pytest.raises(InvalidParameterError, match=message):
        model.fit(X, y)
    np.testing.assert_array_equal(model.set_params(n_threads=np.int64(1)).predict_proba(X[:3]),
                                  model.set_params(n_threads=None).predict_proba(X[:3]))


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_finite_values_whose_sum_overflows_are_still_predicted(backend):
    model = _fit(backend=backend)
    # Each row far from overflowing the network, all of them together the sum.
    big = np.tile(X[:1], (1000, 1))
    big[:, 10] = np.finfo(np.float64).max / 500
    expected = model.to_sklearn().predict_proba(big)
    # Quietly, as scikit-learn predicts them: the quick finiteness check's sum
    # overflows, which is no reason for a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for given in (big, big.tolist(), sp.csr_matrix(big), sp.csc_matrix(big)):
            np.testing.assert_allclose(model.predict_proba(given), expected, rtol=1e-12)


class _Opaque:
    """A value of a class written in Python, which Python's messages name bare."""


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_values_that_are_no_numbers_get_scikit_learns_type_error(backend):
    """A list holding None passes scikit-learn's validation as an object array,
    and datetime64 or timedelta64 values as they are: scikit-learn's predict
    then fails in its matrix product. A cast would make NaN (a private error
    of the loop backend, NaN predictions of the vectorized one) or day counts
    of them; fastbp raises the same TypeError, with scikit-learn's text."""
    from decimal import Decimal
    from fractions import Fraction

    model = _fit(backend=backend)
    twin = model.to_sklearn()
    coefs = [c.copy() for c in model.coefs_]
    for replacement in (None, Decimal("0.5"), _Opaque()):
        rows = X[:4].tolist()
        rows[2][5] = replacement
        with pytest.raises(TypeError) as theirs:
            twin.predict(rows)
        assert "unsupported operand type(s) for *" in str(theirs.value)
        for method in (model.predict, model.predict_proba, lambda rows: model.score(rows, y[:4])):
            with pytest.raises(TypeError, match=re.escape(str(theirs.value))):
                method(rows)
    for values in (np.full((2, 64), np.datetime64("2020-01-01")), np.full((2, 64), np.timedelta64(3, "D"))):
        # NumPy 1.24 says the DType could not be promoted; later versions, that ufunc 'matmul' has no loop.
        with pytest.raises(TypeError, match="ufunc 'matmul'|could not be promoted") as theirs:
            twin.predict(values)
        with pytest.raises(TypeError, match=re.escape(f"{theirs.value}: X of dtype {values.dtype} is not numeric")):
            model.predict(values)
    # Real numbers of any Python type are cast and predicted (scikit-learn's
    # regressor computes with them as objects, its classifier's activations
    # refuse an object array), and checked finite as any other input.
    rows = X[:4].tolist()
    rows[2][5] = Fraction(1, 2)
    exact = X[:4].copy()
    exact[2, 5] = 0.5
    np.testing.assert_array_equal(model.predict_proba(rows), model.predict_proba(exact))
    rows[1][7] = float("inf")
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.predict(rows)
    for before, after in zip(coefs, model.coefs_):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_assume_finite_predicts_through_nan_and_infinity_as_scikit_learn(backend, activation):
    """Under scikit-learn's config_context(assume_finite=True) its predict
    skips the finiteness check and carries NaN and infinities through the
    network: so does fastbp's, rather than raise (the loop backend's pass
    raised a private error for them)."""
    from sklearn import config_context

    model = _fit(backend=backend, activation=activation)
    twin = model.to_sklearn()
    rows = X[:6].copy()
    rows[1, 20], rows[3, 33], rows[4, 40] = np.nan, np.inf, -np.inf
    with config_context(assume_finite=True):
        for given in (rows, rows.tolist()):
            expected = twin.predict_proba(given)
            assert np.isnan(expected[1]).all() and np.isfinite(expected[[0, 2, 5]]).all()
            np.testing.assert_allclose(model.predict_proba(given), expected, rtol=1e-12, equal_nan=True)
            np.testing.assert_array_equal(model.predict(given), twin.predict(given))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(rows)


def test_a_sparse_matrix_of_the_other_byte_order_predicts_across_chunks():
    """More rows than one chunk (_loop.PREDICT_CHUNK) of a CSR matrix whose
    values are big-endian, as read from some files: scipy slices no such
    matrix, so it is converted before the chunks are taken."""
    model = _fit()
    rows = sp.csr_matrix(np.tile(X, (3, 1)))
    assert rows.shape[0] > _loop.PREDICT_CHUNK
    swapped = rows.copy()
    swapped.data = swapped.data.astype(">f8")
    np.testing.assert_array_equal(model.predict_proba(swapped), model.predict_proba(rows))


def test_a_model_fitted_with_feature_names_still_warns_about_an_array(monkeypatch):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0).fit(frame, y)
    calls = _counting_validation(monkeypatch)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X[:2])
    assert calls == [1]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_a_plain_sparse_matrix_skips_validate_data_and_predicts_as_dense(monkeypatch, fmt):
    model = _fit()
    dense = model.predict_proba(X[:7])
    calls = _counting_validation(monkeypatch)
    np.testing.assert_allclose(model.predict_proba(sp.csr_matrix(X[:7]).asformat(fmt)), dense, rtol=1e-12)
    assert calls == []
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(sp.csr_matrix(np.full((2, 64), np.nan)).asformat(fmt))
    assert calls == [1]


def test_unsorted_sparse_indices_predict_as_sorted_and_the_input_is_left_as_given():
    model = _fit()
    rows = sp.csr_matrix(X[:5])
    # Each row's stored values reversed: the same matrix, indices unsorted.
    for n in range(5):
        lo, hi = rows.indptr[n], rows.indptr[n + 1]
        rows.indices[lo:hi] = rows.indices[lo:hi][::-1].copy()
        rows.data[lo:hi] = rows.data[lo:hi][::-1].copy()
    rows.has_sorted_indices = False
    given = rows.indices.copy()
    np.testing.assert_array_equal(model.predict_proba(rows), model.predict_proba(sp.csr_matrix(X[:5])))
    np.testing.assert_array_equal(rows.indices, given)


@pytest.mark.parametrize("corrupt, message", [
    (lambda m: m.indices.__setitem__(0, 64), "column indices out of range"),
    (lambda m: m.indices.__setitem__(0, -1), "column indices out of range"),
    (lambda m: m.indptr.__setitem__(2, m.indptr[3] + 1), "not non-decreasing"),
    (lambda m: m.indptr.__setitem__(-1, m.indptr[-1] + 5), "index pointer array"),
])
def test_a_malformed_csr_matrix_is_refused_before_compiled_code(corrupt, message):
    model = _fit()
    rows = sp.csr_matrix(X[:4])
    corrupt(rows)
    with pytest.raises(ValueError, match=message):
        model.predict_proba(rows)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_functional_forward_takes_predicts_path_across_chunks(backend):
    from fastbp import forward

    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(8, 16)), rng.normal(size=(16, 3))]
    intercepts = [rng.normal(size=16), rng.normal(size=3)]
    rows = rng.normal(size=(_loop.PREDICT_CHUNK + 904, 8))
    whole = forward(coefs, intercepts, rows, backend=backend)
    parts = np.vstack([forward(coefs, intercepts, rows[:1000], backend=backend),
                       forward(coefs, intercepts, rows[1000:], backend=backend)])
    if backend == "loop":
        # Each row's sums run in one fixed order: any split gives the same bits.
        np.testing.assert_array_equal(whole, parts)
    else:
        # BLAS may block a product differently for another number of rows.
        np.testing.assert_allclose(whole, parts, rtol=1e-12, atol=1e-15)
    z = np.maximum(rows @ coefs[0] + intercepts[0], 0) @ coefs[1] + intercepts[1]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(whole, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("labels", [
    y,  # ten integer classes
    np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y],
    y % 2,  # binary: one output column
    np.where(y % 2, "odd", "even"),
    y % 2 == 1,
    np.where(y < 3, -1, 7),  # binary classes that are not 0 and 1
    np.column_stack([y % 2, y < 5]),  # multilabel: inverse_transform itself
])
def test_labels_are_those_of_the_label_binarizers_inverse_transform(labels, monkeypatch):
    from sklearn.preprocessing import LabelBinarizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0).fit(X, labels)
    proba = model._forward_pass_fast(X)
    output = proba.ravel() if model.n_outputs_ == 1 else proba
    expected = model._label_binarizer.inverse_transform(output)
    if labels.ndim == 1:
        # A dense multiclass or binary output is decoded without inverse_transform's checks.
        monkeypatch.setattr(LabelBinarizer, "inverse_transform", None)
    predicted = model.predict(X)
    assert predicted.dtype == expected.dtype
    np.testing.assert_array_equal(predicted, expected)
    assert len(np.unique(predicted)) > 1  # a model predicting one class could not tell the two apart


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ties_and_the_binary_threshold_give_inverse_transforms_labels(dtype):
    from fastbp._labels import labels_of
    from sklearn.preprocessing import LabelBinarizer

    multiclass = LabelBinarizer().fit(["a", "b", "c"])
    output = np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [np.nan, 0.9, 0.1]], dtype=dtype)
    np.testing.assert_array_equal(labels_of(multiclass, output), multiclass.inverse_transform(output))
    binary = LabelBinarizer().fit([3, 8])
    output = np.array([0.5, np.nextafter(dtype(0.5), dtype(1)), 0.49, 0.0, 1.0, np.nan], dtype=dtype)
    np.testing.assert_array_equal(labels_of(binary, output), binary.inverse_transform(output))
    np.testing.assert_array_equal(labels_of(binary, output), [3, 8, 3, 3, 8, 3])


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_float32_softmax_rows_of_many_classes_sum_to_one(backend):
    """Σ_i e^{z_i} summed in float32 one term at a time left rows of 1000
    classes summing to 1 ± 2e-6, 10000 classes ± 6e-6 (scikit-learn's ± 2e-7,
    the tolerance of its estimator checks): now each probability is within
    rounding of the float64 softmax."""
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(10, 20)).astype(np.float32), rng.normal(size=(20, 5000)).astype(np.float32)]
    intercepts = [np.zeros(20, np.float32), np.zeros(5000, np.float32)]
    X = rng.normal(size=(64, 10)).astype(np.float32)
    proba = forward(coefs, intercepts, X, activation="relu", out_activation="softmax", backend=backend)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=2e-7)
    z = np.maximum(X.astype(np.float64) @ coefs[0], 0) @ coefs[1]
    exact = np.exp(z - z.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, exact, rtol=2e-5, atol=1e-12)
