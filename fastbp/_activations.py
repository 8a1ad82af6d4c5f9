"""Activations beside their derivatives, selected by a small integer code.

A kernel receives the code, not a function, so one compiled kernel serves
every activation: Numba compiles a function argument once per choice, an
integer once. The code is branched on outside the loop over neurons.

Derivatives are written in terms of the activation a = σ(z) itself, as the
textbook does for the logistic (σ' = σ(1 − σ)) and tanh (1 − tanh²), so the
forward pass need not keep z.
"""

import numpy as np

from ._cache import njit
from ._config import JIT

IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP = range(6)

ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "softmax": SOFTMAX,
    "exp": EXP,
}
HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
OUTPUT_ACTIVATIONS = tuple(ACTIVATION_CODES)


@njit(**JIT)
def exp_underflow(z):
    """For z's dtype, a bound below which e^x rounds to 0: the log of half the
    smallest subnormal is −103.97 in float32 and −745.13 in float64."""
    return z.dtype.type(-104.0) if z.itemsize == 4 else z.dtype.type(-746.0)


@njit(**JIT)
def activate_rows(code, z, n0, n1):
    """a = σ(z), in place on rows n0..n1-1 of z."""
    n_units = z.shape[1]
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    underflow = exp_underflow(z)
    # Where e^x rounds to 0, logistic and softmax take the 0 without calling
    # exp: libm's underflow path costs several times its usual one, and large
    # logits take it for most terms. The call sits inside the branch's own arm:
    # through a helper returning either value, LLVM made the branch a select in
    # some compiled contexts (forward_rows loaded from Numba's cache took twice
    # its fresh time on 200×10 float32 logits in ±1000), calling exp for every term.
    if code == LOGISTIC:
        for n in range(n0, n1):
            for j in range(n_units):
                minus_z = -z[n, j]
                if minus_z < underflow:
                    z[n, j] = one
                else:
                    # 1 / (1 + e^{-z}) overflows harmlessly to 0 for very negative z
                    z[n, j] = one / (one + np.exp(minus_z))
    elif code == TANH:
        for n in range(n0, n1):
            for j in range(n_units):
                z[n, j] = np.tanh(z[n, j])
    elif code == RELU:
        for n in range(n0, n1):
            for j in range(n_units):
                z[n, j] = max(z[n, j], zero)
    elif code == EXP:
        for n in range(n0, n1):
            for j in range(n_units):
                z[n, j] = np.exp(z[n, j])
    elif code == SOFTMAX:
        for n in range(n0, n1):
            # a_j = e^{z_j - max z} / Σ_i e^{z_i - max z}: shifting by the max avoids overflow
            z_max = z[n, 0]
            for j in range(1, n_units):
                z_max = max(z_max, z[n, j])
            total = zero
            for j in range(n_units):
                shifted = z[n, j] - z_max
                if shifted < underflow:
                    z[n, j] = zero
                else:
                    z[n, j] = np.exp(shifted)
                    total += z[n, j]
            for j in range(n_units):
                z[n, j] /= total


@njit(**JIT)
def multiply_derivative_rows(code, a, delta, n0, n1):
    """delta ⊙= σ'(z), with σ' written through a = σ(z), on rows n0..n1-1.

    Elementwise activations only; softmax has a full Jacobian and is handled
    with the loss (see ``_losses.output_delta``).
    """
    n_units = a.shape[1]
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    if code == LOGISTIC:
        # σ' = σ (1 − σ)
        for n in range(n0, n1):
            for j in range(n_units):
                delta[n, j] *= a[n, j] * (one - a[n, j])
    elif code == TANH:
        # tanh' = 1 − tanh²
        for n in range(n0, n1):
            for j in range(n_units):
                delta[n, j] *= one - a[n, j] * a[n, j]
    elif code == RELU:
        # relu' = 1[z > 0], and a > 0 exactly when z > 0
        for n in range(n0, n1):
            for j in range(n_units):
                if a[n, j] <= zero:
                    delta[n, j] = zero
    elif code == EXP:
        # exp' = exp
        for n in range(n0, n1):
            for j in range(n_units):
                delta[n, j] *= a[n, j]
