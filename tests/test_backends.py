"""The loop backend against the vectorized one; dtypes, thread counts and memory layouts."""

import numba
import numpy as np
import pytest
from _reference import (
    ALLOWED_PAIRS,
    HIDDEN_ACTIVATIONS,
    draw_problem,
    max_rel_err,
    pair_id,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import _loop
from fastbp._kernels import accumulate_product_rows, accumulate_transposed_product_rows, dot_product_rows


def summation_condition(coefs, intercepts, X, Y, options):
    """max over gradient arrays of ‖Σ_n s_n |g_n|‖ / ‖Σ_n s_n g_n‖, in float64.

    g_n is sample n's own gradient (sample_weight = e_n, alpha = 0). A large value
    means an array is a cancelling sum, which two summation orders legitimately round
    differently by far more than eps (the issue's "Error measure" section); such draws
    are set aside, since the norm-wise tolerance is meant for well-conditioned sums.
    """
    coefs = [np.asarray(W, np.float64) for W in coefs]
    intercepts = [np.asarray(b, np.float64) for b in intercepts]
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    n = X.shape[0]
    s = np.ones(n) if options["sample_weight"] is None else options["sample_weight"]
    per_sample = dict(options, alpha=0.0, backend="vectorized")  # only picks the draws
    totals, magnitudes = None, None
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        _, cg, ig = fastbp.loss_and_gradients(
            coefs, intercepts, X, Y, **dict(per_sample, sample_weight=e)
        )
        terms = [float(s[i]) * g for g in [*cg, *ig]]
        if totals is None:
            totals, magnitudes = terms, [np.abs(t) for t in terms]
        else:
            totals = [a + t for a, t in zip(totals, terms)]
            magnitudes = [m + np.abs(t) for m, t in zip(magnitudes, terms)]
    worst = 1.0
    for t, m in zip(totals, magnitudes):
        mn, tn = np.linalg.norm(m), np.linalg.norm(t)
        if mn > 0.0:
            worst = max(worst, mn / tn if tn > 0.0 else np.inf)
    return worst


@st.composite
def problems(draw, dtype):
    activation = draw(st.sampled_from(HIDDEN_ACTIVATIONS))
    out_activation, loss = draw(st.sampled_from(ALLOWED_PAIRS))
    hidden = tuple(draw(st.lists(st.integers(1, 12), min_size=0, max_size=3)))
    problem = draw_problem(
        draw(st.integers(0, 2**32 - 1)),
        hidden=hidden,
        activation=activation,
        out_activation=out_activation,
        loss=loss,
        n_samples=draw(st.integers(1, 40)),
        n_features=draw(st.integers(1, 8)),
        n_outputs=draw(st.integers(1, 5)),
        alpha=draw(st.sampled_from([0.0, 0.01, 1.0])),
        weighted=draw(st.booleans()),
        dtype=dtype,
        min_abs_z=1e-4,
    )
    max_condition = 1e3 if dtype == np.float64 else 20.0
    assume(summation_condition(*problem) <= max_condition)
    return problem


def _both_backends(coefs, intercepts, X, Y, options):
    forward_options = {k: options[k] for k in ("activation", "out_activation")}
    results = {}
    for backend in ("loop", "vectorized"):
        out = fastbp.forward(coefs, intercepts, X, backend=backend, **forward_options)
        value, coef_grads, intercept_grads = fastbp.loss_and_gradients(
            coefs, intercepts, X, Y, backend=backend, **options
        )
        results[backend] = (out, value, [*coef_grads, *intercept_grads])
    return results


def _assert_backends_agree(problem, dtype, tol):
    coefs, intercepts, X, Y, options = problem
    results = _both_backends(coefs, intercepts, X, Y, options)
    for backend, (out, value, grads) in results.items():
        assert out.dtype == dtype, backend
        assert all(g.dtype == dtype for g in grads), backend
        assert np.isfinite(value)
    (out_l, value_l, grads_l), (out_v, value_v, grads_v) = results["loop"], results["vectorized"]
    assert max_rel_err([out_l], [out_v]) < tol
    assert abs(value_l - value_v) <= tol * abs(value_v)
    assert max_rel_err(grads_l, grads_v) < tol


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(np.float64))
def test_loop_matches_vectorized_float64(problem):
    _assert_backends_agree(problem, np.float64, 1e-12)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(np.float32))
def test_loop_matches_vectorized_float32(problem):
    _assert_backends_agree(problem, np.float32, 1e-5)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_float32_input_gives_float32_outputs_and_gradients(backend):
    """Y, sample_weight, coefs and intercepts follow X's dtype: float32 X with float64
    everything else trains in float32, exactly as if all were cast to float32 first."""
    coefs, intercepts, X, Y, options = draw_problem(
        1, hidden=(5,), activation="tanh", out_activation="softmax", loss="log_loss",
        n_samples=8, alpha=0.1, weighted=True,
    )
    X32 = X.astype(np.float32)
    out = fastbp.forward(coefs, intercepts, X32, activation="tanh", out_activation="softmax",
                         backend=backend)
    assert out.dtype == np.float32
    _, cg, ig = fastbp.loss_and_gradients(coefs, intercepts, X32, Y, backend=backend, **options)
    assert all(g.dtype == np.float32 for g in [*cg, *ig])

    cast = dict(options, sample_weight=options["sample_weight"].astype(np.float32))
    coefs32 = [W.astype(np.float32) for W in coefs]
    intercepts32 = [b.astype(np.float32) for b in intercepts]
    out32 = fastbp.forward(coefs32, intercepts32, X32, activation="tanh",
                           out_activation="softmax", backend=backend)
    _, cg32, ig32 = fastbp.loss_and_gradients(
        coefs32, intercepts32, X32, Y.astype(np.float32), backend=backend, **cast
    )
    np.testing.assert_array_equal(out, out32)
    for g, g32 in zip([*cg, *ig], [*cg32, *ig32]):
        np.testing.assert_array_equal(g, g32)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("x_dtype", [np.int64, np.int32, np.float16, bool])
def test_other_x_dtypes_run_in_float64(x_dtype, backend):
    rng = np.random.default_rng(2)
    coefs, intercepts, _, Y, options = draw_problem(
        2, hidden=(4,), activation="tanh", out_activation="identity", loss="squared_error",
        n_samples=6, dtype=np.float32,
    )
    X = rng.integers(0, 2, size=(6, 3)).astype(x_dtype)
    X64 = X.astype(np.float64)
    out = fastbp.forward(coefs, intercepts, X, activation="tanh", out_activation="identity",
                         backend=backend)
    assert out.dtype == np.float64
    value, cg, ig = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                              **options)
    assert all(g.dtype == np.float64 for g in [*cg, *ig])
    value64, cg64, ig64 = fastbp.loss_and_gradients(
        [W.astype(np.float64) for W in coefs], [b.astype(np.float64) for b in intercepts],
        X64, Y.astype(np.float64), backend=backend, **options,
    )
    assert value == value64
    for g, g64 in zip([*cg, *ig], [*cg64, *ig64]):
        np.testing.assert_array_equal(g, g64)


def test_float64_input_with_float32_parameters_runs_in_float64():
    coefs, intercepts, X, Y, options = draw_problem(
        3, hidden=(4,), activation="relu", out_activation="softmax", loss="log_loss",
        dtype=np.float32,
    )
    X64 = X.astype(np.float64)
    assert fastbp.forward(coefs, intercepts, X64).dtype == np.float64
    _, cg, ig = fastbp.loss_and_gradients(coefs, intercepts, X64, Y, **options)
    assert all(g.dtype == np.float64 for g in [*cg, *ig])


# ---------------------------------------------------------------- threads
THREAD_CASES = [
    ("relu", ("softmax", "log_loss")),
    ("tanh", ("identity", "squared_error")),
    ("logistic", ("exp", "poisson")),
    ("relu", ("logistic", "log_loss")),
]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 threads")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation, pair", THREAD_CASES,
                         ids=[f"{a}-{pair_id(p)}" for a, p in THREAD_CASES])
def test_loop_results_bitwise_equal_for_1_and_all_threads(activation, pair, dtype):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        4, hidden=(37, 19), activation=activation, out_activation=out_activation, loss=loss,
        n_samples=257, n_features=13, n_outputs=5, alpha=0.01, weighted=True, dtype=dtype,
        min_abs_z=0.0,
    )
    forward_options = {k: options[k] for k in ("activation", "out_activation")}
    previous = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS, 1):
            numba.set_num_threads(threads)
            out = fastbp.forward(coefs, intercepts, X, **forward_options)
            value, cg, ig = fastbp.loss_and_gradients(coefs, intercepts, X, Y, **options)
            runs.append((out, value, [*cg, *ig]))
    finally:
        numba.set_num_threads(previous)
    (out1, value1, grads1), (outn, valuen, gradsn), _ = runs
    np.testing.assert_array_equal(out1, outn)
    assert value1 == valuen
    for g1, gn in zip(grads1, gradsn):
        np.testing.assert_array_equal(g1, gn)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a_transposed", [False, True])
def test_row_update_kernel_on_disjoint_rows_of_one_buffer(a_transposed, dtype):
    """The row-update kernel is compiled on the promise that C overlaps neither
    A nor B (no run-time alias checks); the network keeps it by passing rows of
    different layers of one buffer, as here. Rows 3..22 take the 4 × 4 blocks
    and both remainders."""
    rng = np.random.default_rng(0)
    n, t, w = 23, 18, 37
    buffer = rng.standard_normal(n * t + t * w + n * w).astype(dtype)
    A = buffer[: n * t].reshape((t, n) if a_transposed else (n, t))
    B = buffer[n * t : n * t + t * w].reshape(t, w)
    C = buffer[n * t + t * w :].reshape(n, w)
    expected = C.astype(np.float64)
    product = (A.T if a_transposed else A).astype(np.float64) @ B.astype(np.float64)
    expected[3:22] += product[3:22]
    kernel = accumulate_transposed_product_rows if a_transposed else accumulate_product_rows
    kernel(A, B, C, 3, 22)
    # A call from Python runs the kernel's twin, compiled by the same pipeline.
    promised = [cres.fndesc.noalias for cres in kernel.python_twin().overloads.values()]
    assert promised and all(promised)
    np.testing.assert_allclose(C, expected, rtol=0, atol=50 * np.finfo(dtype).eps * np.abs(product).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("n_terms", [3, 18, 1100])
def test_row_update_kernel_gives_a_row_the_same_bits_in_a_block_or_alone(n_terms, a_transposed, dtype):
    """Rows in blocks of 4 and the rows left over (a predict on 1 to 3 rows)
    take each C[r, j] through the same fused multiply-adds in the same order,
    so a row's result cannot depend on how many rows share the call. 1100
    terms of 300 columns span several TERM_BYTES spans."""
    rng = np.random.default_rng(1)
    n, w = 9, 300 if n_terms == 1100 else 37
    A = rng.standard_normal((n_terms, n) if a_transposed else (n, n_terms)).astype(dtype)
    B = rng.standard_normal((n_terms, w)).astype(dtype)
    start = rng.standard_normal((n, w)).astype(dtype)
    kernel = accumulate_transposed_product_rows if a_transposed else accumulate_product_rows
    together = start.copy()
    kernel(A, B, together, 0, n)
    for r in range(n):
        alone = start.copy()
        kernel(A, B, alone, r, r + 1)
        np.testing.assert_array_equal(alone[r], together[r])
        np.testing.assert_array_equal(np.delete(alone, r, axis=0), np.delete(start, r, axis=0))
    exact = start.astype(np.float64) + (A.T if a_transposed else A).astype(np.float64) @ B.astype(np.float64)
    np.testing.assert_allclose(together, exact, rtol=0, atol=50 * n_terms ** 0.5 * np.finfo(dtype).eps * np.abs(exact).max())


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="asks LLVM; nothing is compiled under NUMBA_DISABLE_JIT")
def test_row_update_kernels_ask_for_wide_vectors_and_the_dot_products_do_not():
    """The row-update kernels let LLVM take 512-bit vectors on an AVX-512 CPU,
    which it declines on Intel's parts unless asked. This checks the request
    only: that the result is the same at either width was checked by a hash
    over fits built both ways (README, Predict). The dot products keep the
    default width, since it picks their order of summation."""
    A, B = np.ones((5, 8)), np.ones((8, 8))
    for kernel, wide in ((accumulate_product_rows, True), (accumulate_transposed_product_rows, True),
                         (dot_product_rows, False)):
        twin = kernel.python_twin()
        kernel(A, B, np.zeros((5, 8)), 0, 5)
        ir = "".join(twin.inspect_llvm(signature) for signature in twin.signatures)
        assert ('"prefer-vector-width"="512"' in ir) == wide, kernel.__name__


@pytest.mark.parametrize("units", [(64, 100, 10), (100, 256, 256, 10), (13, 37, 19, 5), (5, 3), (784, 1000, 10)],
                         ids=str)
def test_gradient_task_shares_are_contiguous_and_equal_in_work(units):
    """Region 2 cuts its task list into one run of tasks per thread; no run may
    exceed an equal share of the multiply-adds by more than one task."""
    tasks = _loop.gradient_task_table(np.asarray(units))
    work = tasks[:, 4]
    np.testing.assert_array_equal(tasks[:, 3], np.cumsum(work) - work)
    assert sum(w for (layer, k0, k1), w in zip(tasks[:, :3].tolist(), work) if k0 >= 0) == sum(
        units[i] * units[i + 1] for i in range(len(units) - 1))
    for n_shares in (1, 2, 3, 7, 16):
        shares = [_loop.task_share(tasks, i, n_shares) for i in range(len(tasks))]
        assert shares == sorted(shares)
        assert 0 <= shares[0] and shares[-1] < n_shares
        for share in range(n_shares):
            assert work[np.asarray(shares) == share].sum() <= work.sum() / n_shares + work.max()


# ---------------------------------------------------------------- layouts
def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _strided(a):
    """The same values as a view with a step of 2 along the first axis."""
    a = np.asarray(a)
    big = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
    big[::2] = a
    return big[::2]


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": _strided,
    "readonly": _readonly,
    "fortran-readonly": lambda a: _readonly(np.asfortranarray(a)),
    "transposed-view": lambda a: np.ascontiguousarray(np.asarray(a).T).T,
}


def _results(coefs, intercepts, X, Y, options, backend):
    fo = {k: options[k] for k in ("activation", "out_activation")}
    out = fastbp.forward(coefs, intercepts, X, backend=backend, **fo)
    value, cg, ig = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                              **options)
    return [out, np.array(value), *cg, *ig]


# 1-D arrays (intercepts, sample_weight) have no transposed layout.
LAYOUT_CASES = [(which, layout) for layout in LAYOUTS
                for which in ["X", "Y", "coefs", "intercepts", "sample_weight", "all"]
                if not (layout == "transposed-view" and which in ("intercepts", "sample_weight"))]


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("which, layout", LAYOUT_CASES)
def test_layouts_give_results_equal_to_c_ordered(which, layout, backend):
    coefs, intercepts, X, Y, options = draw_problem(
        6, hidden=(7, 5), activation="tanh", out_activation="softmax", loss="log_loss",
        n_samples=11, n_outputs=3, alpha=0.1, weighted=True,
    )
    expected = _results(coefs, intercepts, X, Y, options, backend)
    change = LAYOUTS[layout]
    if which in ("X", "all"):
        X = change(X)
    if which in ("Y", "all"):
        Y = change(Y)
    if which in ("coefs", "all"):
        coefs = [change(W) for W in coefs]
    if which in ("intercepts", "all") and layout != "transposed-view":
        intercepts = [change(b) for b in intercepts]
    if which in ("sample_weight", "all") and layout != "transposed-view":
        options = dict(options, sample_weight=change(options["sample_weight"]))
    got = _results(coefs, intercepts, X, Y, options, backend)
    if backend == "loop":  # the wrapper copies into C order: the same bits
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    else:  # numpy may pick another summation order for another layout
        assert max_rel_err(got, expected) < 1e-13


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
def test_readonly_memmap_inputs_work(tmp_path, backend):
    coefs, intercepts, X, Y, options = draw_problem(
        8, hidden=(6,), activation="relu", out_activation="logistic", loss="log_loss",
        n_samples=9, weighted=True,
    )
    expected = _results(coefs, intercepts, X, Y, options, backend)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    X_mm = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    assert not X_mm.flags.writeable
    got = _results(coefs, intercepts, X_mm, Y, options, backend)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inputs_are_not_modified(backend, dtype):
    coefs, intercepts, X, Y, options = draw_problem(
        9, hidden=(5, 4), activation="logistic", out_activation="softmax", loss="log_loss",
        n_samples=7, alpha=0.5, weighted=True, dtype=dtype,
    )
    inputs = [X, Y, options["sample_weight"], *coefs, *intercepts]
    saved = [a.copy() for a in inputs]
    _results(coefs, intercepts, X, Y, options, backend)
    fastbp.check_gradients(coefs, intercepts, X, Y, backend=backend, **options)
    for a, s in zip(inputs, saved):
        np.testing.assert_array_equal(a, s)
