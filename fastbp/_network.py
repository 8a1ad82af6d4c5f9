"""The whole network on flat buffers: forward pass and backprop, from the
layer kernels in ``_kernels``. These are what the public functions, L-BFGS and
the fused epoch call; a fit never loops over layers in Python.

The input layer comes either dense (X) or as CSR arrays (data, indices,
indptr, with X then an empty (0, 0) array), so one compiled function serves
both: a sparse X only changes the first layer's forward pass and gradient sums,
which loop over the stored nonzeros.

Workspace (allocated once by ``Workspace``, outside every loop): activations
and deltas hold each layer l >= 1 for up to `capacity` samples; `transposed`
holds aᵀ or wᵀ of one layer at a time (or a sparse X's values by column);
`index_scratch` a sparse X's row indices by column and column pointers;
`losses` the per-sample losses.
"""

import numpy as np
import scipy.sparse as sp
from numba import njit

from ._config import JIT
from ._kernels import (
    backward_layer,
    coef_grads_layer,
    coef_grads_layer_sparse,
    csr_to_csc,
    forward_layer,
    forward_layer_sparse,
    intercept_grads_layer,
    output_layer_delta,
    squared_norm,
    transpose,
)
from ._params import coef_view, intercept_view, layer_rows


class Workspace:
    """Buffers for a network of `units`, minibatches of up to `capacity` rows,
    and a sparse input of up to `max_nnz` stored values."""

    def __init__(self, units, capacity, dtype, max_nnz=0):
        units = np.asarray(units, dtype=np.int64)
        width = int(units[1:].sum())
        self.activations = np.empty(capacity * width, dtype=dtype)
        self.deltas = np.empty(capacity * width, dtype=dtype)
        largest = max(
            max(int(u) * capacity for u in units[:-1]),
            max(int(units[i] * units[i + 1]) for i in range(len(units) - 1)),
            max_nnz,
        )
        self.transposed = np.empty(largest, dtype=dtype)
        self.index_scratch = np.empty(max_nnz + units[0] + 1 if max_nnz else 0, dtype=np.int64)
        self.losses = np.empty(capacity, dtype=np.float64)

    def buffers(self):
        """The workspace arguments of ``backprop``, in order."""
        return self.activations, self.deltas, self.transposed, self.index_scratch, self.losses


def input_arrays(X, dtype):
    """(X, data, indices, indptr) as the kernels take an input: a dense X as a
    writeable C-contiguous array with empty CSR arrays, a sparse X as CSR arrays
    with an empty (0, 0) X."""
    no_index = np.empty(0, dtype=np.int64)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
        X.sort_indices()
        return (np.empty((0, 0), dtype=dtype), np.ascontiguousarray(X.data),
                X.indices.astype(np.int64), X.indptr.astype(np.int64))
    X = np.require(X, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])
    return X, np.empty(0, dtype=dtype), no_index, no_index


@njit(**JIT)
def n_rows(X, indptr):
    return indptr.shape[0] - 1 if indptr.shape[0] > 0 else X.shape[0]


@njit(**JIT)
def forward_pass(params, units, X, data, indices, indptr, act_code, out_code, activations):
    """a^l = σ(a^{l-1} w^l + b^l) for every layer; returns the output layer's view."""
    n_samples = n_rows(X, indptr)
    n_layers = units.shape[0] - 1
    a_out = layer_rows(activations, units, 1, n_samples)
    code = out_code if n_layers == 1 else act_code
    if indptr.shape[0] > 0:
        forward_layer_sparse(data, indices, indptr, coef_view(params, units, 0),
                             intercept_view(params, units, 0), code, a_out)
    else:
        forward_layer(X, coef_view(params, units, 0), intercept_view(params, units, 0), code, a_out)
    for layer in range(1, n_layers):
        a_in = a_out
        a_out = layer_rows(activations, units, layer + 1, n_samples)
        code = out_code if layer == n_layers - 1 else act_code
        forward_layer(a_in, coef_view(params, units, layer), intercept_view(params, units, layer), code, a_out)
    return a_out


@njit(**JIT)
def backprop(params, units, X, data, indices, indptr, Y, sample_weight, act_code, out_code, loss_code,
             alpha, eps, grads, activations, deltas, transposed, index_scratch, losses):
    """Loss and gradients of one batch: BP1 at the output, BP2 down the layers,
    BP3 and BP4 at each. Writes grads (same layout as params); returns
    (Σ s_n ℓ_n / Σ s_n, ½ α Σ‖w‖² / Σ s_n).
    """
    n_samples = n_rows(X, indptr)
    n_layers = units.shape[0] - 1
    output = forward_pass(params, units, X, data, indices, indptr, act_code, out_code, activations)
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
        coef_grads = coef_view(grads, units, layer)
        penalty += squared_norm(coefs.ravel())
        fan_in, fan_out = units[layer], units[layer + 1]
        intercept_grads_layer(delta, weight_sum, intercept_view(grads, units, layer))
        if layer == 0 and indptr.shape[0] > 0:
            nnz = indptr[n_samples]
            col_data = transposed[:nnz]
            col_rows = index_scratch[:nnz]
            col_ptr = index_scratch[nnz : nnz + fan_in + 1]
            csr_to_csc(data, indices, indptr, fan_in, col_data, col_rows, col_ptr)
            coef_grads_layer_sparse(col_data, col_rows, col_ptr, delta, coefs, alpha, weight_sum, coef_grads)
            break
        a_prev = X if layer == 0 else layer_rows(activations, units, layer, n_samples)
        a_prev_t = transposed[: fan_in * n_samples].reshape((fan_in, n_samples))
        transpose(a_prev, a_prev_t)
        coef_grads_layer(a_prev_t, delta, coefs, alpha, weight_sum, coef_grads)
        if layer > 0:
            coefs_t = transposed[: fan_in * fan_out].reshape((fan_out, fan_in))
            transpose(coefs, coefs_t)
            delta_prev = layer_rows(deltas, units, layer, n_samples)
            backward_layer(delta, coefs_t, a_prev, act_code, delta_prev)
            delta = delta_prev
    return data_loss / weight_sum, 0.5 * alpha * penalty / weight_sum
