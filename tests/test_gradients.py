"""Backprop gradients against central differences, and the loss against a NumPy reference."""

import itertools

import numpy as np
import pytest
from _reference import (
    ALLOWED_PAIRS,
    HIDDEN_ACTIVATIONS,
    central_differences,
    draw_problem,
    max_rel_err,
    pair_id,
    reference_forward,
    reference_loss,
)

import fastbp
from fastbp import _activations

WEIGHTINGS = {
    "plain": dict(alpha=0.0, weighted=False),
    "alpha": dict(alpha=0.3, weighted=False),
    "sample_weight": dict(alpha=0.0, weighted=True),
    "alpha+sample_weight": dict(alpha=0.3, weighted=True),
}

HIDDEN_SHAPES = {0: (), 1: (4,), 2: (4, 3), 3: (3, 4, 2)}


def _grid():
    """Every hidden activation × allowed pair × 1..3 hidden layers × weighting, plus
    the networks with no hidden layer (where the hidden activation plays no part)."""
    for pair, weighting in itertools.product(ALLOWED_PAIRS, WEIGHTINGS):
        yield pytest.param("identity", pair, 0, weighting, id=f"{pair_id(pair)}-0h-{weighting}")
        for activation, depth in itertools.product(HIDDEN_ACTIVATIONS, (1, 2, 3)):
            yield pytest.param(
                activation,
                pair,
                depth,
                weighting,
                id=f"{pair_id(pair)}-{activation}-{depth}h-{weighting}",
            )


@pytest.mark.parametrize("activation, pair, depth, weighting", list(_grid()))
def test_check_gradients_below_1e6_float64(activation, pair, depth, weighting):
    out_activation, loss = pair
    seed = sum(map(ord, f"{activation}{pair}{depth}{weighting}"))  # stable across runs
    coefs, intercepts, X, Y, options = draw_problem(
        seed,
        hidden=HIDDEN_SHAPES[depth],
        activation=activation,
        out_activation=out_activation,
        loss=loss,
        n_samples=5,
        **WEIGHTINGS[weighting],
    )
    err = fastbp.check_gradients(coefs, intercepts, X, Y, **options)
    assert isinstance(err, float)
    assert 0.0 <= err < 1e-6, err


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_check_gradients_below_1e6_vectorized_backend(pair):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        7, hidden=(4, 3), activation="tanh", out_activation=out_activation, loss=loss,
        alpha=0.2, weighted=True,
    )
    err = fastbp.check_gradients(coefs, intercepts, X, Y, backend="vectorized", **options)
    assert 0.0 <= err < 1e-6, err


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_gradients_match_own_central_differences(pair, activation, backend):
    """Central differences computed here, both of fastbp's own loss and of the
    independent NumPy reference loss, against the returned gradients (norm-wise)."""
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        11, hidden=(4, 3), activation=activation, out_activation=out_activation, loss=loss,
        n_samples=4, alpha=0.1, weighted=True,
    )
    _, coef_grads, intercept_grads = fastbp.loss_and_gradients(
        coefs, intercepts, X, Y, backend=backend, **options
    )
    assert len(coef_grads) == len(coefs) and len(intercept_grads) == len(intercepts)
    for g, W in zip(coef_grads, coefs):
        assert g.shape == W.shape
    for g, b in zip(intercept_grads, intercepts):
        assert g.shape == b.shape
    grads = [*coef_grads, *intercept_grads]

    def fastbp_loss(c, i):
        return fastbp.loss_and_gradients(c, i, X, Y, backend=backend, **options)[0]

    def numpy_loss(c, i):
        return reference_loss(c, i, X, Y, **options)

    step = 1e-5
    for loss_fn in (fastbp_loss, numpy_loss):
        num_coefs, num_intercepts = central_differences(loss_fn, coefs, intercepts, step)
        err = max_rel_err(grads, [*num_coefs, *num_intercepts])
        assert err < 1e-6, (loss_fn.__name__, err)


@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("weighting", list(WEIGHTINGS))
@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_loss_matches_numpy_reference(pair, weighting, backend):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        23, hidden=(5, 4), activation="tanh", out_activation=out_activation, loss=loss,
        n_samples=9, n_outputs=3, **WEIGHTINGS[weighting],
    )
    value = fastbp.loss_and_gradients(coefs, intercepts, X, Y, backend=backend, **options)[0]
    expected = reference_loss(coefs, intercepts, X, Y, **options)
    assert np.isfinite(value)
    assert abs(value - expected) <= 1e-12 * abs(expected), (value, expected)


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_forward_matches_numpy_reference(pair, activation):
    out_activation, loss = pair
    coefs, intercepts, X, _, options = draw_problem(
        5, hidden=(6, 3), activation=activation, out_activation=out_activation, loss=loss,
        n_samples=10, n_outputs=3,
    )
    expected = reference_forward(coefs, intercepts, X, activation, out_activation)[1][-1]
    for backend in ("loop", "vectorized"):
        out = fastbp.forward(
            coefs, intercepts, X, activation=activation, out_activation=out_activation,
            backend=backend,
        )
        assert out.shape == expected.shape
        assert max_rel_err([out], [expected]) < 1e-13


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh"])
@pytest.mark.parametrize(
    "pair",
    [("identity", "squared_error"), ("softmax", "log_loss"), ("logistic", "log_loss"),
     ("exp", "poisson")],
    ids=pair_id,
)
def test_check_gradients_float32_default_step_is_sensible(pair, activation):
    """The float32 default step suits float32's eps: on smooth networks the error stays
    near 1e-3 (measured ≤ 1.5e-3 over 20 seeds), where float64's step of 6e-6
    gives 2e-2 on the tanh/identity network here."""
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = draw_problem(
        3, hidden=(4,), activation=activation, out_activation=out_activation, loss=loss,
        dtype=np.float32,
    )
    err = fastbp.check_gradients(coefs, intercepts, X, Y, **options)
    assert 0.0 <= err < 1e-2, err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out_activation", ["softmax", "logistic"])
def test_forward_with_saturated_outputs_matches_numpy(out_activation, dtype):
    """Logits in the thousands: most of softmax's e^(z - max z) and logistic's
    e^-z round to 0, which fastbp takes without calling exp; the outputs stay
    NumPy's, zeros and ones included."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)) * 300.0
    coefs = [rng.standard_normal((5, 4)), rng.standard_normal((4, 3))]
    intercepts = [rng.standard_normal(4), rng.standard_normal(3)]
    # float32 logits in the thousands carry absolute errors near 1e-4, and so relative ones in e^z
    expected = reference_forward(coefs, intercepts, X, "relu", out_activation)[1][-1].astype(dtype)
    out = fastbp.forward([c.astype(dtype) for c in coefs], [b.astype(dtype) for b in intercepts], X.astype(dtype),
                         activation="relu", out_activation=out_activation)
    assert out.dtype == dtype
    saturated = (expected == 0.0) | (expected == 1.0)
    assert saturated.mean() > 0.5
    np.testing.assert_array_equal(out[saturated], expected[saturated])
    np.testing.assert_allclose(out, expected, rtol=1e-3 if dtype == np.float32 else 1e-12,
                               atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_output_activations_at_infinite_logits(dtype):
    """A float32 layer can overflow to ±inf: e^-inf is 0, so logistic gives 1 and
    0 and softmax gives 0 to a -inf logit, not NaN."""
    z = np.array([[np.inf, -np.inf, 0.0]], dtype=dtype)
    _activations.activate_rows(_activations.LOGISTIC, z, 0, 1)
    np.testing.assert_array_equal(z, np.array([[1.0, 0.0, 0.5]], dtype=dtype))
    z = np.array([[0.0, -np.inf, -1000.0]], dtype=dtype)
    _activations.activate_rows(_activations.SOFTMAX, z, 0, 1)
    np.testing.assert_array_equal(z, np.array([[1.0, 0.0, 0.0]], dtype=dtype))
