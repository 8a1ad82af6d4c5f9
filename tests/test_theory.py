"""Backprop as the theory works it out: the hand-worked exercise, least squares, and the
properties the definition of the loss implies (penalty, sample weights, canonical δ)."""

import math

import numpy as np
import pytest
from _reference import ALLOWED_PAIRS, draw_problem, max_rel_err, pair_id
from scipy.special import expit

import fastbp

BACKENDS = ["loop", "vectorized"]


def _assert_same_loss_and_gradients(got, expected, rel):
    """Two (loss, coef_grads, intercept_grads) results agree to ``rel`` (norm-wise)."""
    assert got[0] == pytest.approx(expected[0], rel=rel)
    assert max_rel_err([*got[1], *got[2]], [*expected[1], *expected[2]]) < rel


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


@pytest.mark.parametrize("backend", BACKENDS)
def test_worked_exercise_logistic_network_squared_error(backend):
    """2 inputs → 2 logistic hidden neurons → 1 logistic output, C = ½(y − t)², t = 1.0.

    Input x = (0.35, 0.9); weights w_kj from input k to hidden j:
    w_11 = 0.1, w_12 = 0.4, w_21 = 0.8, w_22 = 0.6; hidden biases b = (0.25, −0.15);
    output weights v = (0.3, 0.9), output bias c = 0.1; learning rate η = 0.5.

    Forward pass:
      z_1 = 0.35·0.1 + 0.9·0.8 + 0.25  = 1.005    a_1 = σ(1.005) ≈ 0.732041
      z_2 = 0.35·0.4 + 0.9·0.6 − 0.15  = 0.530    a_2 = σ(0.530) ≈ 0.629483
      z_o = 0.3·a_1 + 0.9·a_2 + 0.1   ≈ 0.886147  y   = σ(z_o)   ≈ 0.708094
      C   = ½(0.708094 − 1)²           ≈ 0.0426044
    Backward pass (δ^L = ∇_a C ⊙ σ'(z^L), σ' = σ(1 − σ)):
      δ_o = (y − t)·y·(1 − y)          ≈ −0.0603359
      ∂C/∂v_j = a_j δ_o                ≈ (−0.0441683, −0.0379804);  ∂C/∂c = δ_o
      δ_j = v_j δ_o · a_j(1 − a_j)     ≈ (−0.00355060, −0.0126652)
      ∂C/∂w_kj = x_k δ_j: ∂C/∂w_11 ≈ −0.00124271, ∂C/∂w_12 ≈ −0.00443281,
                          ∂C/∂w_21 ≈ −0.00319554, ∂C/∂w_22 ≈ −0.0113986;  ∂C/∂b_j = δ_j
    Gradient-descent update θ ← θ − η ∂C/∂θ:
      w_11 ≈ 0.100621, w_12 ≈ 0.402216, w_21 ≈ 0.801598, w_22 ≈ 0.605699,
      b ≈ (0.251775, −0.143667), v ≈ (0.322084, 0.918990), c ≈ 0.130168
    and the new forward pass gives y ≈ 0.720566, C ≈ 0.0390417 < 0.0426044.
    """
    x = (0.35, 0.9)
    w = ((0.1, 0.4), (0.8, 0.6))  # w[k][j]
    b = (0.25, -0.15)
    v = (0.3, 0.9)
    c = 0.1
    t = 1.0
    eta = 0.5

    # The hand computation, in plain Python on scalars.
    z = [x[0] * w[0][j] + x[1] * w[1][j] + b[j] for j in range(2)]
    a = [_sigmoid(zj) for zj in z]
    z_o = a[0] * v[0] + a[1] * v[1] + c
    y = _sigmoid(z_o)
    C = 0.5 * (y - t) ** 2
    delta_o = (y - t) * y * (1.0 - y)
    dv = [a[j] * delta_o for j in range(2)]
    dc = delta_o
    delta_h = [v[j] * delta_o * a[j] * (1.0 - a[j]) for j in range(2)]
    dw = [[x[k] * delta_h[j] for j in range(2)] for k in range(2)]
    w_new = [[w[k][j] - eta * dw[k][j] for j in range(2)] for k in range(2)]
    b_new = [b[j] - eta * delta_h[j] for j in range(2)]
    v_new = [v[j] - eta * dv[j] for j in range(2)]
    c_new = c - eta * dc
    a_new = [_sigmoid(x[0] * w_new[0][j] + x[1] * w_new[1][j] + b_new[j]) for j in range(2)]
    y_new = _sigmoid(a_new[0] * v_new[0] + a_new[1] * v_new[1] + c_new)
    C_new = 0.5 * (y_new - t) ** 2

    # The hand computation's rounded numbers, as written in the docstring.
    assert y == pytest.approx(0.708094, abs=1e-6)
    assert C == pytest.approx(0.0426044, abs=1e-7)
    assert delta_o == pytest.approx(-0.0603359, abs=1e-7)
    assert delta_h == pytest.approx([-0.00355060, -0.0126652], abs=1e-7)
    assert y_new == pytest.approx(0.720566, abs=1e-6)

    coefs = [np.array(w), np.array([[v[0]], [v[1]]])]
    intercepts = [np.array(b), np.array([c])]
    X = np.array([x])
    Y = np.array([[t]])
    options = dict(activation="logistic", out_activation="logistic", backend=backend)

    # one forward pass
    out = fastbp.forward(coefs, intercepts, X, **options)
    assert out.shape == (1, 1)
    assert out[0, 0] == pytest.approx(y, rel=1e-14)

    # one backward pass
    loss, coef_grads, intercept_grads = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, loss="squared_error", **options
    )
    assert loss == pytest.approx(C, rel=1e-13)
    np.testing.assert_allclose(coef_grads[0], dw, rtol=1e-12)
    np.testing.assert_allclose(coef_grads[1], [[dv[0]], [dv[1]]], rtol=1e-12)
    np.testing.assert_allclose(intercept_grads[0], delta_h, rtol=1e-12)
    np.testing.assert_allclose(intercept_grads[1], [dc], rtol=1e-12)

    # one gradient-descent update
    coefs = [W - eta * g for W, g in zip(coefs, coef_grads)]
    intercepts = [bb - eta * g for bb, g in zip(intercepts, intercept_grads)]
    np.testing.assert_allclose(coefs[0], w_new, rtol=1e-14)
    np.testing.assert_allclose(coefs[1], [[v_new[0]], [v_new[1]]], rtol=1e-14)
    np.testing.assert_allclose(intercepts[0], b_new, rtol=1e-14)
    np.testing.assert_allclose(intercepts[1], [c_new], rtol=1e-14)
    out_new = fastbp.forward(coefs, intercepts, X, **options)
    assert out_new[0, 0] == pytest.approx(y_new, rel=1e-13)
    loss_new = fastbp.loss_and_gradients(coefs, intercepts, X, Y, loss="squared_error",
                                         **options)[0]
    assert loss_new == pytest.approx(C_new, rel=1e-12)
    assert loss_new < loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_descent_on_linear_network_converges_to_least_squares(backend):
    """No hidden layer, identity output, squared error: L = (1/2n) ‖Xw + b − y‖², whose
    minimiser is the least-squares solution with an intercept column."""
    rng = np.random.default_rng(0)
    n, d = 80, 3
    X = rng.standard_normal((n, d)) + np.array([0.3, -0.2, 0.1])
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.1 * rng.standard_normal(n)
    Y = y[:, None]
    X1 = np.hstack([X, np.ones((n, 1))])
    solution = np.linalg.lstsq(X1, y, rcond=None)[0]

    # step 1/L, L = largest eigenvalue of the Hessian X1ᵀX1 / n
    lr = 1.0 / np.linalg.eigvalsh(X1.T @ X1 / n).max()
    coefs, intercepts = [np.zeros((d, 1))], [np.zeros(1)]
    for _ in range(3000):
        loss, (gW,), (gb,) = fastbp.loss_and_gradients(
            coefs, intercepts, X, Y, activation="identity", out_activation="identity",
            loss="squared_error", backend=backend,
        )
        coefs = [coefs[0] - lr * gW]
        intercepts = [intercepts[0] - lr * gb]
        if max(np.abs(gW).max(), np.abs(gb).max()) < 1e-14:
            break
    found = np.concatenate([coefs[0][:, 0], intercepts[0]])
    np.testing.assert_allclose(found, solution, rtol=1e-10)  # measured 3e-15 after 53 steps
    residual = X1 @ solution - y
    assert loss == pytest.approx(0.5 * np.mean(residual**2), rel=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_penalty_adds_half_alpha_norm_over_weight_sum(weighted, backend):
    """loss(α) − loss(0) = ½ α Σ‖W‖² / Σ s; coef grads gain α W / Σ s; intercepts unchanged."""
    alpha = 0.7
    coefs, intercepts, X, Y, options = draw_problem(
        12, hidden=(4, 3), activation="tanh", out_activation="softmax", loss="log_loss",
        n_samples=8, weighted=weighted,
    )
    s = options["sample_weight"]
    total = X.shape[0] if s is None else s.sum()
    loss0, cg0, ig0 = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                                **options)
    loss1, cg1, ig1 = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, backend=backend, **dict(options, alpha=alpha)
    )
    penalty = 0.5 * alpha * sum((W**2).sum() for W in coefs) / total
    assert loss1 - loss0 == pytest.approx(penalty, rel=1e-10)
    assert max_rel_err(cg1, [g + alpha * W / total for g, W in zip(cg0, coefs)]) < 1e-13
    for g1, g0 in zip(ig1, ig0):
        np.testing.assert_array_equal(g1, g0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_zero_sample_weight_equals_dropping_the_sample(pair, backend):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        13, hidden=(5,), activation="logistic", out_activation=out_activation, loss=loss,
        n_samples=9, alpha=0.2, weighted=True,
    )
    keep = np.array([True, False, True, True, False, True, True, True, False])
    s = options["sample_weight"].copy()
    s[~keep] = 0.0
    full = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                     **dict(options, sample_weight=s))
    dropped = fastbp.loss_and_gradients(coefs, intercepts, X[keep], Y[keep], backend=backend,
                                        **dict(options, sample_weight=s[keep]))
    _assert_same_loss_and_gradients(full, dropped, 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_integer_sample_weight_equals_repeating_samples(pair, backend):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        14, hidden=(5,), activation="relu", out_activation=out_activation, loss=loss,
        n_samples=6, alpha=0.2,
    )
    counts = np.array([1, 3, 2, 1, 4, 2])
    weighted = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                         **dict(options, sample_weight=counts.astype(float)))
    repeated = fastbp.loss_and_gradients(
        coefs, intercepts, np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0),
        backend=backend, **options,
    )
    _assert_same_loss_and_gradients(weighted, repeated, 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaling_sample_weights_changes_nothing_without_penalty(backend):
    coefs, intercepts, X, Y, options = draw_problem(
        15, hidden=(4,), activation="tanh", out_activation="exp", loss="poisson",
        n_samples=7, weighted=True,
    )
    base = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend, **options)
    scaled = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, backend=backend,
        **dict(options, sample_weight=8.0 * options["sample_weight"]),
    )
    _assert_same_loss_and_gradients(scaled, base, 1e-13)


CANONICAL = [("softmax", "log_loss"), ("logistic", "log_loss"), ("identity", "squared_error"),
             ("exp", "poisson")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", CANONICAL, ids=pair_id)
def test_canonical_pairs_have_output_delta_a_minus_y(pair, backend):
    """With no hidden layer, ∂L/∂W = Xᵀ diag(s) (a − y) / Σ s and ∂L/∂b = sᵀ(a − y) / Σ s."""
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        16, hidden=(), activation="identity", out_activation=out_activation, loss=loss,
        n_samples=10, n_outputs=3, weighted=True,
    )
    s = options["sample_weight"]
    a = fastbp.forward(coefs, intercepts, X, out_activation=out_activation, backend=backend)
    _, (gW,), (gb,) = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend,
                                                **options)
    delta = (a - Y) * s[:, None] / s.sum()
    assert max_rel_err([gW, gb], [X.T @ delta, delta.sum(axis=0)]) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_loss_where_clip_binds_is_finite_with_gradient_a_minus_y(backend):
    """A logistic output saturated at a = 1.0 with y = 0: the loss is −log(eps) (the clip
    binds) and the gradient is that of the unclipped loss, δ = a − y = 1."""
    coefs, intercepts = [np.array([[50.0]])], [np.array([0.0])]
    X, Y = np.array([[1.0]]), np.array([[0.0]])
    assert expit(50.0) == 1.0
    loss, (gW,), (gb,) = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, out_activation="logistic", loss="log_loss", backend=backend
    )
    assert loss == pytest.approx(-np.log(np.finfo(np.float64).eps), rel=1e-12)
    np.testing.assert_allclose(gW, [[1.0]], rtol=1e-15)
    np.testing.assert_allclose(gb, [1.0], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_log_loss_where_clip_binds_is_finite_with_gradient_a_minus_y(backend, dtype):
    coefs, intercepts = [np.array([[40.0, -40.0]], dtype=dtype)], [np.zeros(2, dtype=dtype)]
    X, Y = np.array([[1.0]], dtype=dtype), np.array([[0.0, 1.0]], dtype=dtype)
    loss, (gW,), (gb,) = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, out_activation="softmax", loss="log_loss", backend=backend
    )
    assert loss == pytest.approx(-np.log(np.finfo(dtype).eps), rel=1e-6)
    np.testing.assert_allclose(gW, [[1.0, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(gb, [1.0, -1.0], rtol=1e-6)


# ------------------------------------------------------------------ e^x


def _libm_exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def test_exp_of_is_within_one_ulp_of_libm_over_the_whole_float64_range():
    from fastbp._activations import exp_of

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-746.0, 710.0, 20000), rng.uniform(-1.0, 1.0, 5000),
                        np.arange(-20, 21) * math.log(2.0)])
    got = np.array([exp_of(v) for v in x])
    expected = np.array([_libm_exp(v) for v in x])
    normal = (expected >= np.finfo(np.float64).tiny) & np.isfinite(expected)
    assert np.all(got[np.isinf(expected)] == np.inf)
    assert np.all(np.abs(got[normal] - expected[normal]) <= np.spacing(expected[normal]))
    # Subnormal results within one subnormal step, 0 and inf where e^x rounds there.
    small = ~normal & (expected < 1)
    assert np.all(np.abs(got[small] - expected[small]) <= 5e-324)
    edges = [-1e300, -800.0, -745.2, -745.1, 709.78, 709.8, 1e300, -np.inf, np.inf, 0.0]
    assert [exp_of(v) for v in edges] == [0.0, 0.0, 0.0, 5e-324, _libm_exp(709.78), np.inf, np.inf, 0.0, np.inf, 1.0]
    assert np.isnan(exp_of(np.nan))


def test_tanh_of_is_within_three_ulp_of_numpy_and_exact_at_its_edges():
    from fastbp._activations import TANH, activate_rows, tanh_of

    rng = np.random.default_rng(3)
    # Every scale the formula treats apart: e^{-2|x|} - 1 near 0 (k = 0), in the
    # bands k = -1, -2, ..., and where tanh rounds to ±1.
    x = np.concatenate([rng.normal(scale=s, size=4000) for s in (1e-300, 1e-12, 1e-4, 0.1, 0.3, 0.6, 1, 3, 10, 30)])
    got = np.array([tanh_of(v) for v in x])
    expected = np.tanh(x)
    assert np.all(np.abs(got - expected) <= 3 * np.spacing(np.abs(expected)))
    edges = [0.0, 19.07, 20.0, 1e300, np.inf, 5e-324]
    assert [tanh_of(v) for v in edges] == [0.0, np.tanh(19.07), 1.0, 1.0, 1.0, 5e-324]
    assert [tanh_of(-v) for v in edges] == [-0.0, -np.tanh(19.07), -1.0, -1.0, -1.0, -5e-324]
    assert math.copysign(1.0, tanh_of(-0.0)) == -1.0 and np.isnan(tanh_of(np.nan))
    # The activation: float64 as tanh_of, float32 rounded once from it.
    for dtype in (np.float64, np.float32):
        z = x.astype(dtype).reshape(-1, 8)
        a = z.copy()
        activate_rows(TANH, a, 0, a.shape[0])
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, np.array([tanh_of(float(v)) for v in z.ravel()]).astype(dtype).reshape(z.shape))


@pytest.mark.parametrize("width", [1, 10, 37])
@pytest.mark.parametrize("code", range(6))
def test_an_activation_changes_only_its_rows_and_each_as_a_whole_pass_does(code, width):
    """activate_rows takes rows n0..n1-1 as one run of elements: rows outside
    stay as they were, and a row's result is the same whichever rows share
    the call (identity, logistic, tanh, relu, softmax, exp)."""
    from fastbp._activations import activate_rows

    rng = np.random.default_rng(2)
    z = rng.normal(scale=3.0, size=(9, width))
    whole = z.copy()
    activate_rows(code, whole, 0, 9)
    part = z.copy()
    activate_rows(code, part, 2, 6)
    np.testing.assert_array_equal(part[2:6], whole[2:6])
    np.testing.assert_array_equal(part[:2], z[:2])
    np.testing.assert_array_equal(part[6:], z[6:])
    if code != 0:
        assert not np.array_equal(whole, z)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_activations_agree_with_scipy_and_stay_finite_at_extreme_logits(dtype):
    from scipy.special import softmax

    from fastbp._activations import EXP, LOGISTIC, SOFTMAX, activate_rows

    rng = np.random.default_rng(1)
    z = np.concatenate([rng.normal(scale=5.0, size=(200, 10)), rng.normal(scale=1000.0, size=(20, 10))]).astype(dtype)
    # The shift by the row's max is taken in the dtype, as scikit-learn's softmax does.
    shifted = (z - z.max(axis=1, keepdims=True)).astype(np.float64)
    expected = {SOFTMAX: softmax(shifted, axis=1), LOGISTIC: expit(z.astype(np.float64)),
                EXP: np.exp(np.minimum(z.astype(np.float64), 80.0))}
    for code, reference in expected.items():
        a = np.minimum(z, 80.0) if code == EXP else z.copy()
        activate_rows(code, a, 0, a.shape[0])
        assert a.dtype == dtype and np.all(np.isfinite(a))
        # Within a few units of the dtype's last place of the float64 reference.
        np.testing.assert_allclose(a, reference, rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)
    # NaN logits stay NaN, and only in their own row for softmax.
    z_nan = z[:3].copy()
    z_nan[1, 4] = np.nan
    activate_rows(SOFTMAX, z_nan, 0, 3)
    assert np.isnan(z_nan[1]).all() and np.isfinite(z_nan[[0, 2]]).all()
