"""One training epoch per compiled call: every minibatch, in the order Python
passes, through ``_network.batch_step`` (forward, backward and the optimizer
update), with no Python per batch. The vectorized backend's epoch does the
same with NumPy, one Python iteration per batch.

Both take the same arguments: `order` (the rows of the epoch, in minibatch
order), the Optimizer (its state is updated in place), a Workspace sized
for one minibatch and `dropout` = (p, key of the epoch's masks); both
return Σ_batches (batch loss × batch length), where the batch loss is
data_scale × data term + penalty, the loss scikit-learn reports.
"""

from . import _vectorized
from ._cache import njit
from ._config import JIT
from ._network import add_gradient_norms, batch_step, build_coefs_t
from ._optimizers import step_rate, update_slice
from ._threads import kernel_threads, parallel_launches


@njit(**JIT)
def run_epoch(params, units, X, data, indices, indptr, Y, sample_weight, order, batch_size,
              act_code, out_code, loss_code, alpha, eps, data_scale, grads, dropout, dropout_key,
              x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, coefs_t, coef_grads_t, col_data,
              index_scratch,
              tasks, task_penalty, penalty_columns,
              opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon, threads,
              gradient_norms):
    """The compiled epoch; returns (Σ batch loss × length, minibatch count t).

    A non-empty gradient_norms receives each layer's ‖∂C/∂w‖ averaged over the
    epoch's minibatches; an empty one costs nothing.
    """
    build_coefs_t(params, units, coefs_t)
    n_samples = order.shape[0]
    total = 0.0
    record = gradient_norms.shape[0] > 0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        t += 1
        data_loss, penalty = batch_step(
            params, units, X, data, indices, indptr, order[start:stop], order[stop : stop + batch_size], Y,
            sample_weight, stop - start,
            act_code, out_code, loss_code, alpha, eps, grads, dropout, dropout_key, start,
            x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, coefs_t, coef_grads_t, col_data,
            index_scratch, tasks, task_penalty, penalty_columns,
            opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon, threads,
        )
        total += (data_scale * data_loss + penalty) * (stop - start)
        if record:
            add_gradient_norms(grads, units, penalty_columns[0], gradient_norms)
    if record:
        n_batches = (n_samples + batch_size - 1) // batch_size
        for layer in range(gradient_norms.shape[0]):
            gradient_norms[layer] /= n_batches
    return total, t


def train_epoch(params, units, inputs, Y, sample_weight, order, batch_size, codes, alpha, eps, data_scale,
                grads, optimizer, work, gradient_norms, dropout):
    with parallel_launches():
        total, optimizer.t = run_epoch(
            params, units, *inputs, Y, sample_weight, order, batch_size, *codes, alpha, eps, data_scale, grads,
            *dropout, *work.buffers(), *optimizer.step_args(), kernel_threads(), gradient_norms,
        )
    return total


def train_epoch_vectorized(params, units, inputs, Y, sample_weight, order, batch_size, codes, alpha, eps,
                           data_scale, grads, optimizer, work, gradient_norms, dropout):
    X = _vectorized.as_matrix(*inputs, units[0])
    code, first, second, _, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon = optimizer.step_args()
    total = 0.0
    for start in range(0, order.shape[0], batch_size):
        rows = order[start : start + batch_size]
        data_loss, penalty = _vectorized.backprop(
            params, units, (X[rows], None, None, None), Y[rows], sample_weight[rows], codes, alpha, eps, grads,
            dropout=dropout, position0=start,
        )
        total += (data_scale * data_loss + penalty) * rows.shape[0]
        optimizer.t += 1
        if gradient_norms.shape[0] > 0:
            add_gradient_norms(grads, units, work.penalty_columns[0], gradient_norms)
        update_slice(code, params, grads, first, second, 0, params.shape[0],
                     step_rate(code, learning_rate, beta_1, beta_2, optimizer.t),
                     momentum, nesterov, beta_1, beta_2, epsilon)
    if gradient_norms.shape[0] > 0:
        gradient_norms /= -(-order.shape[0] // batch_size)
    return total
