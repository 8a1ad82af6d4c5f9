"""One training epoch per compiled call: minibatches in the order Python
passes, forward, backward and the optimizer update, with no Python per batch.

X comes either dense (X) or as CSR arrays (data, indices, indptr; X is then
an empty (0, 0) array), so one compiled function serves both.
"""

from numba import njit

from . import _vectorized
from ._config import JIT
from ._network import backprop
from ._optimizers import step


@njit(**JIT)
def gather_batch(X, data, indices, indptr, Y, sample_weight, rows, x_batch, y_batch, sw_batch):
    """Copy the minibatch's rows into contiguous buffers (a sparse X row by row)."""
    for i in range(rows.shape[0]):
        n = rows[i]
        if indptr.shape[0] > 0:
            x_batch[i, :] = 0
            for p in range(indptr[n], indptr[n + 1]):
                x_batch[i, indices[p]] = data[p]
        else:
            x_batch[i, :] = X[n]
        y_batch[i, :] = Y[n]
        sw_batch[i] = sample_weight[n]


@njit(**JIT)
def run_epoch(params, units, X, data, indices, indptr, Y, sample_weight, order, batch_size,
              act_code, out_code, loss_code, alpha, eps, data_scale,
              grads, opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon,
              x_batch, y_batch, sw_batch, activations, deltas, transposed, losses):
    """Σ_batches (batch loss × batch length) and the updated minibatch count t.

    The batch loss is data_scale × data term + penalty, the loss scikit-learn reports.
    """
    n_samples = order.shape[0]
    total = 0.0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        m = stop - start
        gather_batch(X, data, indices, indptr, Y, sample_weight, order[start:stop], x_batch, y_batch, sw_batch)
        data_loss, penalty = backprop(
            params, units, x_batch[:m], y_batch[:m], sw_batch[:m], act_code, out_code, loss_code,
            alpha, eps, grads, activations, deltas, transposed, losses,
        )
        total += (data_scale * data_loss + penalty) * m
        t += 1
        step(opt_code, params, grads, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon)
    return total, t


def run_epoch_vectorized(params, units, X, data, indices, indptr, Y, sample_weight, order, batch_size,
                         act_code, out_code, loss_code, alpha, eps, data_scale,
                         grads, opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2,
                         epsilon, x_batch, y_batch, sw_batch, *workspace):
    """``run_epoch`` with NumPy's matrix products, looping over batches in Python."""
    n_samples = order.shape[0]
    total = 0.0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        m = stop - start
        gather_batch(X, data, indices, indptr, Y, sample_weight, order[start:stop], x_batch, y_batch, sw_batch)
        data_loss, penalty = _vectorized.backprop(
            params, units, x_batch[:m], y_batch[:m], sw_batch[:m], act_code, out_code, loss_code,
            alpha, eps, grads,
        )
        total += (data_scale * data_loss + penalty) * m
        t += 1
        step(opt_code, params, grads, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon)
    return total, t
