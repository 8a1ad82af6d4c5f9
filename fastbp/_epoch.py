"""One training epoch per compiled call: minibatches in the order Python
passes, forward, backward and the optimizer update, with no Python per batch.

X comes dense (X) or as CSR arrays (data, indices, indptr; X then (0, 0)), as
in ``_network``; a sparse minibatch stays sparse.
"""

import scipy.sparse as sp
from numba import njit

from . import _vectorized
from ._config import JIT
from ._network import backprop
from ._optimizers import step


@njit(**JIT)
def gather_batch(X, data, indices, indptr, Y, sample_weight, rows,
                 x_batch, batch_data, batch_indices, batch_indptr, y_batch, sw_batch):
    """Copy the minibatch's rows into contiguous buffers: dense rows into x_batch,
    or sparse rows into the batch CSR arrays."""
    sparse = indptr.shape[0] > 0
    if sparse:
        batch_indptr[0] = 0
    for i in range(rows.shape[0]):
        n = rows[i]
        if sparse:
            start = batch_indptr[i]
            for p in range(indptr[n], indptr[n + 1]):
                batch_data[start + p - indptr[n]] = data[p]
                batch_indices[start + p - indptr[n]] = indices[p]
            batch_indptr[i + 1] = start + indptr[n + 1] - indptr[n]
        else:
            x_batch[i, :] = X[n]
        y_batch[i, :] = Y[n]
        sw_batch[i] = sample_weight[n]


@njit(**JIT)
def run_epoch(params, units, X, data, indices, indptr, Y, sample_weight, order, batch_size,
              act_code, out_code, loss_code, alpha, eps, data_scale,
              grads, opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon,
              x_batch, batch_data, batch_indices, batch_indptr, y_batch, sw_batch,
              activations, deltas, transposed, index_scratch, losses):
    """Σ_batches (batch loss × batch length) and the updated minibatch count t.

    The batch loss is data_scale × data term + penalty, the loss scikit-learn reports.
    """
    n_samples = order.shape[0]
    sparse = indptr.shape[0] > 0
    total = 0.0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        m = stop - start
        gather_batch(X, data, indices, indptr, Y, sample_weight, order[start:stop],
                     x_batch, batch_data, batch_indices, batch_indptr, y_batch, sw_batch)
        data_loss, penalty = backprop(
            params, units, x_batch[: 0 if sparse else m], batch_data, batch_indices,
            batch_indptr[: m + 1 if sparse else 0], y_batch[:m], sw_batch[:m], act_code, out_code, loss_code,
            alpha, eps, grads, activations, deltas, transposed, index_scratch, losses,
        )
        total += (data_scale * data_loss + penalty) * m
        t += 1
        step(opt_code, params, grads, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon)
    return total, t


def run_epoch_vectorized(params, units, X, data, indices, indptr, Y, sample_weight, order, batch_size,
                         act_code, out_code, loss_code, alpha, eps, data_scale,
                         grads, opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2,
                         epsilon, *buffers):
    """``run_epoch`` with NumPy's matrix products, one Python iteration per batch."""
    if indptr.shape[0] > 0:
        X = sp.csr_matrix((data, indices, indptr), shape=(indptr.shape[0] - 1, units[0]))
    total = 0.0
    for start in range(0, order.shape[0], batch_size):
        rows = order[start : start + batch_size]
        data_loss, penalty = _vectorized.backprop(
            params, units, X[rows], None, None, None, Y[rows], sample_weight[rows],
            act_code, out_code, loss_code, alpha, eps, grads,
        )
        total += (data_scale * data_loss + penalty) * rows.shape[0]
        t += 1
        step(opt_code, params, grads, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon)
    return total, t
