"""Activations beside their derivatives, selected by a small integer code.

A kernel receives the code, not a function, so one compiled kernel serves
every activation: Numba compiles a function argument once per choice, an
integer once. The code is branched on outside the loop over neurons.

Derivatives are written in terms of the activation a = σ(z) itself, as the
textbook does for the logistic (σ' = σ(1 − σ)) and tanh (1 − tanh²), so the
forward pass need not keep z.
"""

import math

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.extending import intrinsic

from ._cache import njit
from ._config import ENTRY_JIT, JIT

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


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 `bits`: a bitcast, which
    LLVM vectorizes with the loop around it."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


if config.DISABLE_JIT:
    def _float64_from_bits(bits):  # noqa: F811 - the same bitcast in pure Python (NUMBA_DISABLE_JIT=1)
        return np.int64(bits).view(np.float64)


# e^x = 2^k e^r with k the integer nearest x / ln 2, so |r| <= ln(2)/2. ln 2 is
# split in two (Cody and Waite): its high part has 11 trailing zero bits, so
# k · _LN2_HI is exact for every k reached here and r loses nothing to it.
_LOG2_E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# e^r's Taylor terms 1/n! from n = 13 down to 2, for Horner's rule: the first
# term left out, r^14/14!, is below 2^-60 for |r| <= ln(2)/2.
_EXP_TERMS = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))


@njit(**JIT)
def _reduced_exp(x):
    """(k, r, p) with e^x = 2^k e^r, |r| <= ln(2)/2, and p the sum of e^r's
    Taylor terms from r²/2 on, over r²: e^r = 1 + r (1 + r p). A NaN x gives
    k = 0 and carries through r."""
    k = np.floor(x * _LOG2_E + 0.5)
    k = k if k == k else 0.0
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 0.0
    for term in _EXP_TERMS:
        p = term + r * p
    return k, r, p


@njit(**JIT)
def exp_of(x):
    """e^x in float64, within one unit in the last place of the correctly
    rounded value, as plain arithmetic.

    libm's exp is one opaque call per element, which keeps the loop around it
    scalar: it was over half of a 10-class softmax's time. This one inlines
    into the caller's loop and runs in vector lanes. Each step adds one
    product, so contraction fuses it the same way in every loop body.
    """
    # Beyond these bounds e^x rounds to 0 or overflows in float64; a NaN fails
    # both comparisons and carries through r.
    x = -746.0 if x < -746.0 else x
    x = 710.0 if x > 710.0 else x
    k, r, p = _reduced_exp(x)
    p = 1.0 + r * (1.0 + r * p)
    # 2^k as two factors: k reaches −1076, below the smallest normal exponent.
    k_low = np.int64(k) >> 1
    k_high = np.int64(k) - k_low
    return p * _float64_from_bits((k_low + 1023) << 52) * _float64_from_bits((k_high + 1023) << 52)


@njit(**JIT)
def tanh_of(x):
    """tanh x in float64, within three units in the last place of libm's, as
    plain arithmetic: libm's tanh, one opaque call per element, took 15 times
    as long over a hidden layer's activations, more than its matrix product.

    tanh |x| = −m / (2 + m) with m = e^{−2|x|} − 1, taken as 2^k (e^r − 1) +
    (2^k − 1) so that no 1 is subtracted from e^r near x = 0; the sign is x's.
    """
    # Below −40, e^y − 1 rounds to −1 and tanh |x| to 1; a NaN passes through.
    y = -2.0 * abs(x)
    y = -40.0 if y < -40.0 else y
    k, r, p = _reduced_exp(y)
    scale = _float64_from_bits((np.int64(k) + 1023) << 52)
    m = scale * (r * (1.0 + r * p)) + (scale - 1.0)
    return math.copysign(-m / (2.0 + m), x)


@njit(**ENTRY_JIT)
def activate_rows(code, z, n0, n1):
    """a = σ(z), in place on rows n0..n1-1 of z (C-contiguous)."""
    n_units = z.shape[1]
    zero = z.dtype.type(0)
    # The rows' elements as one run, so that e^x takes vector lanes across
    # rows: a narrow layer's rows (one unit for a binary classifier, ten for
    # digits) left most of each row to a loop's scalar remainder. e^x is
    # taken in float64 for both dtypes (exp_of), then rounded once.
    flat = z[n0:n1].reshape((n1 - n0) * n_units)
    if code == LOGISTIC:
        for i in range(flat.shape[0]):
            # 1 / (1 + e^{-z}) overflows harmlessly to 0 for very negative z
            flat[i] = 1.0 / (1.0 + exp_of(-float(flat[i])))
    elif code == TANH:
        for i in range(flat.shape[0]):
            flat[i] = tanh_of(float(flat[i]))
    elif code == RELU:
        for i in range(flat.shape[0]):
            flat[i] = max(flat[i], zero)
    elif code == EXP:
        for i in range(flat.shape[0]):
            flat[i] = exp_of(float(flat[i]))
    elif code == SOFTMAX:
        # a_j = e^{z_j - max z} / Σ_i e^{z_i - max z}: shifting by the max avoids overflow
        for n in range(n0, n1):
            z_max = z[n, 0]
            for j in range(1, n_units):
                z_max = max(z_max, z[n, j])
            for j in range(n_units):
                z[n, j] -= z_max
        for i in range(flat.shape[0]):
            flat[i] = exp_of(float(flat[i]))
        # Σ_i e^{z_i} summed in float64 for both dtypes: summed in float32, one term at a
        # time, a row of 1000 float32 probabilities summed to 1 ± 2e-6 (scikit-learn's ± 2e-7).
        for n in range(n0, n1):
            total = 0.0
            for j in range(n_units):
                total += z[n, j]
            for j in range(n_units):
                z[n, j] /= total


@njit(**ENTRY_JIT)
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
