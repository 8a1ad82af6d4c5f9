"""The vectorized backend: the same maths in matrix form with NumPy (and
whatever BLAS it runs on), the reference the loop backend is tested against.

It provides what ``_backends`` lists for every backend, with the loop
backend's signatures. Activations, losses and deltas come from the shared
tables; only the forward and backward arithmetic differs: matrix products
here, loops there. An input stays a matrix (dense, or scipy CSR) throughout.
"""

import numpy as np
import scipy.sparse as sp

from ._activations import activate_rows, multiply_derivative_rows
from ._losses import output_delta, sample_losses
from ._dropout import NO_DROPOUT, dropout_factors, hidden_unit_offset
from ._loop import as_csr, check_sparse_structure
from ._optimizers import step_rate, update_slice
from ._params import unpack
from ._threads import thread_limits


def input_arrays(X, dtype):
    """X in dtype: a C-contiguous array, or a CSR matrix."""
    if sp.issparse(X):
        # scipy's products and conversions read the index arrays unchecked.
        check_sparse_structure(X)
        return sp.csr_matrix(as_csr(X, dtype))
    return np.ascontiguousarray(X, dtype=dtype)


class Workspace:
    """Nothing to allocate ahead: NumPy allocates each product. Takes the
    loop backend's arguments, so the estimators make either alike."""

    def __init__(self, units, capacity, dtype, *, gather=False, max_nnz=None, backward=True, dropout=False):
        self.capacity = capacity


def add_gradient_norms(grads, units, work, norms):
    """norms[l] += ‖∂C/∂w^l‖ (Frobenius, the L2 term included) for every layer."""
    coef_grads, _ = unpack(grads, units)
    for layer, g in enumerate(coef_grads):
        norms[layer] += np.sqrt(np.sum(np.square(g, dtype=np.float64)))


def forward_layers(params, units, X, act_code, out_code, factors=()):
    """[A^0 = X, A^1, ..., A^L] with A^l = σ(A^{l-1} W^l + b^l), each hidden
    A^l then multiplied by factors[l-1] (dropout's m / (1 − p)) when given."""
    coefs, intercepts = unpack(params, units)
    layers = [X]
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        z = np.asarray(layers[-1] @ w)
        z += b
        activate_rows(out_code if layer == len(coefs) - 1 else act_code, z, 0, z.shape[0])
        if layer < len(factors):
            z *= factors[layer]
        layers.append(z)
    return layers


def dropout_factor_matrices(units, n_samples, dtype, dropout, position0):
    """Dropout's m / (1 − p) for every hidden layer, rows at position0, position0 + 1, …
    of the epoch: drawn by the loop kernels' own hash."""
    rate, key = dropout
    if rate == 0.0:
        return []
    factors = [np.empty((n_samples, units[h]), dtype=dtype) for h in range(1, len(units) - 1)]
    for h, f in enumerate(factors, start=1):
        dropout_factors(f, key, position0, hidden_unit_offset(units, h), rate)
    return factors


def forward_pass(params, units, inputs, act_code, out_code, work=None):
    """The output A^L; `work` is unused."""
    return forward_layers(params, units, inputs, act_code, out_code)[-1]


def predict(params, units, X, act_code, out_code, n_threads):
    """The network's output on X, on BLAS's n_threads threads (None: the thread rule)."""
    with thread_limits("vectorized", n_threads):
        return np.asarray(forward_pass(params, units, input_arrays(X, params.dtype), act_code, out_code))


def backprop(params, units, inputs, Y, sample_weight, codes, alpha, eps, grads, work=None, dropout=NO_DROPOUT,
             position0=0):
    """Loss and gradients in matrix form: Δ^{l-1} = (Δ^l Wᵀ) ⊙ σ',
    ∇W = (Aᵀ Δ + α W) / Σs, ∇b = Σ_n Δ / Σs. Writes grads; returns
    (data loss, penalty) as ``_loop.backprop`` does. dropout = (p, key)
    thins the hidden units of the rows at position0, position0 + 1, … of
    the epoch: Δ^{l-1} = (Δ^l Wᵀ) ⊙ σ'(undropped A) ⊙ m / (1 − p)."""
    act_code, out_code, loss_code = codes
    X = inputs
    coefs, _ = unpack(params, units)
    coef_grads, intercept_grads = unpack(grads, units)
    factors = dropout_factor_matrices(units, X.shape[0], params.dtype, dropout, position0)
    layers = forward_layers(params, units, X, act_code, out_code, factors)
    output = layers[-1]
    n_samples = X.shape[0]
    losses = np.empty(n_samples)
    sample_losses(loss_code, out_code, output, Y, eps, losses)
    weight_sum = float(np.sum(sample_weight, dtype=np.float64))
    data_loss = float(np.dot(sample_weight.astype(np.float64), losses)) / weight_sum

    delta = np.empty_like(output)
    output_delta(loss_code, out_code, output, Y, sample_weight, delta, 0, n_samples)
    dtype = params.dtype.type
    scale = dtype(1.0 / weight_sum)
    penalty = 0.0
    for layer in range(len(coefs) - 1, -1, -1):
        w = coefs[layer]
        penalty += float(np.dot(w.ravel().astype(np.float64), w.ravel()))
        coef_grads[layer][...] = (layers[layer].T @ delta + dtype(alpha) * w) * scale
        intercept_grads[layer][...] = delta.sum(axis=0) * scale
        if layer > 0:
            delta = delta @ w.T
            if factors:
                keep_scale = dtype(1.0 / (1.0 - dropout[0]))
                undropped = np.divide(layers[layer], keep_scale, where=factors[layer - 1] != 0,
                                      out=np.zeros_like(delta))
                multiply_derivative_rows(act_code, undropped, delta, 0, n_samples)
                delta *= factors[layer - 1]
            else:
                multiply_derivative_rows(act_code, layers[layer], delta, 0, n_samples)
    return data_loss, 0.5 * alpha * penalty / weight_sum


def train_epoch(params, units, inputs, Y, sample_weight, order, batch_size, codes, alpha, eps, data_scale, grads,
                optimizer, work, gradient_norms, dropout):
    """One epoch as ``_loop.train_epoch``'s, one Python iteration per minibatch."""
    step = optimizer.step()
    total = 0.0
    for start in range(0, order.shape[0], batch_size):
        rows = order[start : start + batch_size]
        data_loss, penalty = backprop(params, units, inputs[rows], Y[rows], sample_weight[rows], codes, alpha, eps,
                                      grads, dropout=dropout, position0=start)
        total += (data_scale * data_loss + penalty) * rows.shape[0]
        optimizer.t += 1
        if gradient_norms.shape[0] > 0:
            add_gradient_norms(grads, units, work, gradient_norms)
        update_slice(step.code, params, grads, step.first, step.second, 0, params.shape[0],
                     step_rate(step.code, step.learning_rate, step.beta_1, step.beta_2, optimizer.t),
                     step.momentum, step.nesterov, step.beta_1, step.beta_2, step.epsilon)
    if gradient_norms.shape[0] > 0:
        gradient_norms /= -(-order.shape[0] // batch_size)
    return total
