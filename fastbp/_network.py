"""The whole network on flat buffers: forward pass and backprop, from the
layer kernels in ``_kernels``. These are what the public functions, L-BFGS and
the fused epoch call; a fit never loops over layers in Python.

Workspace (allocated once by ``Workspace``, outside every loop):
activations and deltas hold each layer l >= 1 for up to `capacity` samples,
`transposed` holds aᵀ of one layer or wᵀ of one layer at a time, `losses` the
per-sample losses.
"""

import numpy as np
from numba import njit

from ._config import JIT
from ._kernels import (
    backward_layer,
    coef_grads_layer,
    forward_layer,
    intercept_grads_layer,
    output_layer_delta,
    squared_norm,
    transpose,
)
from ._params import coef_view, intercept_view, layer_rows


class Workspace:
    """Buffers for a network of `units` and minibatches of up to `capacity` rows."""

    def __init__(self, units, capacity, dtype):
        units = np.asarray(units, dtype=np.int64)
        self.units = units
        width = int(units[1:].sum())
        self.activations = np.empty(capacity * width, dtype=dtype)
        self.deltas = np.empty(capacity * width, dtype=dtype)
        largest = max(
            max(int(u) * capacity for u in units[:-1]),
            max(int(units[i] * units[i + 1]) for i in range(len(units) - 1)),
        )
        self.transposed = np.empty(largest, dtype=dtype)
        self.losses = np.empty(capacity, dtype=np.float64)


@njit(**JIT)
def forward_pass(params, units, X, act_code, out_code, activations):
    """a^l = σ(a^{l-1} w^l + b^l) for every layer; returns the output layer's view."""
    n_samples = X.shape[0]
    n_layers = units.shape[0] - 1
    a_in = X
    for layer in range(n_layers):
        a_out = layer_rows(activations, units, layer + 1, n_samples)
        code = out_code if layer == n_layers - 1 else act_code
        forward_layer(a_in, coef_view(params, units, layer), intercept_view(params, units, layer), code, a_out)
        a_in = a_out
    return a_in


@njit(**JIT)
def backprop(params, units, X, Y, sample_weight, act_code, out_code, loss_code, alpha, eps,
             grads, activations, deltas, transposed, losses):
    """Loss and gradients of one batch: BP1 at the output, BP2 down the layers,
    BP3 and BP4 at each. Writes grads (same layout as params); returns
    (Σ s_n ℓ_n / Σ s_n, ½ α Σ‖w‖² / Σ s_n).
    """
    n_samples = X.shape[0]
    n_layers = units.shape[0] - 1
    output = forward_pass(params, units, X, act_code, out_code, activations)
    delta = layer_rows(deltas, units, n_layers, n_samples)
    output_layer_delta(loss_code, out_code, output, Y, sample_weight, eps, delta, losses[:n_samples])

    weight_sum = 0.0
    data_loss = 0.0
    for n in range(n_samples):
        weight_sum += sample_weight[n]
        data_loss += losses[n]

    penalty = 0.0
    for layer in range(n_layers - 1, -1, -1):
        coefs = coef_view(params, units, layer)
        penalty += squared_norm(coefs.ravel())
        fan_in, fan_out = units[layer], units[layer + 1]
        if layer == 0:
            a_prev = X
        else:
            a_prev = layer_rows(activations, units, layer, n_samples)
        a_prev_t = transposed[: fan_in * n_samples].reshape((fan_in, n_samples))
        transpose(a_prev, a_prev_t)
        coef_grads_layer(a_prev_t, delta, coefs, alpha, weight_sum, coef_view(grads, units, layer))
        intercept_grads_layer(delta, weight_sum, intercept_view(grads, units, layer))
        if layer > 0:
            coefs_t = transposed[: fan_in * fan_out].reshape((fan_out, fan_in))
            transpose(coefs, coefs_t)
            delta_prev = layer_rows(deltas, units, layer, n_samples)
            backward_layer(delta, coefs_t, a_prev, act_code, delta_prev)
            delta = delta_prev
    return data_loss / weight_sum, 0.5 * alpha * penalty / weight_sum
