"""Losses beside their output deltas, selected by a small integer code.

Per-sample losses as scikit-learn defines them (summed over outputs):

- squared_error: ½ Σ_o (a_o − y_o)²
- log_loss, softmax output: −Σ_o y_o log a_o
- log_loss, logistic output: −Σ_o [y_o log a_o + (1 − y_o) log(1 − a_o)]
- poisson (half deviance): Σ_o [y_o log(y_o / a_o) − y_o + a_o], 0 log 0 = 0

Probabilities are clipped to [eps, 1 − eps] inside the logs; the delta is
that of the unclipped loss, as in scikit-learn.
"""

import math

from ._activations import EXP, IDENTITY, LOGISTIC, SOFTMAX, multiply_derivative_rows
from ._cache import njit
from ._config import ENTRY_JIT, JIT

SQUARED_ERROR, LOG_LOSS, POISSON = range(3)

LOSS_CODES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS, "poisson": POISSON}

ALLOWED_OUTPUTS = {
    "squared_error": ("identity", "logistic", "tanh", "relu", "softmax", "exp"),
    "log_loss": ("softmax", "logistic"),
    "poisson": ("exp", "logistic", "softmax"),
}


@njit(**JIT)
def sample_loss(loss_code, out_code, a, y, eps, n):
    """ℓ_n, the loss of sample n summed over outputs, in float64."""
    n_outputs = a.shape[1]
    total = 0.0
    if loss_code == SQUARED_ERROR:
        for o in range(n_outputs):
            diff = float(a[n, o]) - float(y[n, o])
            total += 0.5 * diff * diff
    elif loss_code == LOG_LOSS:
        for o in range(n_outputs):
            p = float(min(max(a[n, o], eps), 1 - eps))
            t = float(y[n, o])
            if t != 0.0:
                total -= t * math.log(p)
            if out_code == LOGISTIC and t != 1.0:
                total -= (1.0 - t) * math.log(1.0 - p)
    else:
        for o in range(n_outputs):
            t = float(y[n, o])
            p = float(a[n, o])
            if t != 0.0:
                total += t * math.log(t / p)
            total += p - t
    return total


@njit(**ENTRY_JIT)
def sample_losses(loss_code, out_code, a, y, eps, losses):
    """losses[n] = ℓ_n for every sample."""
    for n in range(a.shape[0]):
        losses[n] = sample_loss(loss_code, out_code, a, y, eps, n)


@njit(**ENTRY_JIT)
def output_delta(loss_code, out_code, a, y, sample_weight, delta, n0, n1):
    """δ^L = s_n ∇_a ℓ_n ⊙ σ'(z^L) on rows n0..n1-1 (BP1), s_n the sample weight.

    For the canonical pairs this is s_n (a − y). A softmax output has a full
    Jacobian: δ_i = a_i (g_i − Σ_j a_j g_j) with g = ∇_a ℓ.
    """
    n_outputs = a.shape[1]
    one = a.dtype.type(1)
    canonical = (
        loss_code == LOG_LOSS
        or (loss_code == SQUARED_ERROR and out_code == IDENTITY)
        or (loss_code == POISSON and out_code == EXP)
    )
    for n in range(n0, n1):
        for o in range(n_outputs):
            if canonical or loss_code == SQUARED_ERROR:
                delta[n, o] = a[n, o] - y[n, o]
            else:
                # poisson: ∂ℓ/∂a = 1 − y/a
                delta[n, o] = one - y[n, o] / a[n, o]
    if not canonical:
        if out_code == SOFTMAX:
            for n in range(n0, n1):
                dot = a.dtype.type(0)
                for o in range(n_outputs):
                    dot += a[n, o] * delta[n, o]
                for o in range(n_outputs):
                    delta[n, o] = a[n, o] * (delta[n, o] - dot)
        else:
            multiply_derivative_rows(out_code, a, delta, n0, n1)
    for n in range(n0, n1):
        s = sample_weight[n]
        for o in range(n_outputs):
            delta[n, o] *= s
