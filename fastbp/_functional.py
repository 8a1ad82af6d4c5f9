"""The public functional API: forward, loss_and_gradients, check_gradients."""

import numpy as np

from ._activations import ACTIVATION_CODES
from ._backends import BACKENDS
from ._losses import LOSS_CODES, sample_losses
from ._params import pack, unpack
from ._validation import (
    check_names,
    check_network,
    check_option,
    check_positive,
    check_training_weights,
    check_targets,
    check_X,
    check_Y,
    training_dtype,
)


def _prepare(coefs, intercepts, X, activation, out_activation, loss, backend):
    check_names(activation, out_activation, loss, backend)
    dtype = training_dtype(X)
    units, coefs, intercepts = check_network(coefs, intercepts, dtype)
    X = check_X(X, units, dtype)
    return units, pack(coefs, intercepts, dtype), X


def forward(coefs, intercepts, X, *, activation="relu", out_activation="softmax", backend="loop"):
    """Output activations of a dense network.

    Parameters
    ----------
    coefs : list of ndarray of shape (fan_in, fan_out)
        Weights, ``coefs[l][k, j]`` from input k to neuron j, as scikit-learn's
        ``coefs_``.
    intercepts : list of ndarray of shape (fan_out,)
        Biases, as scikit-learn's ``intercepts_``.
    X : array-like of shape (n_samples, n_features)
        Inputs. float32 and float64 are kept; anything else runs in float64.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    out_activation : {'identity', 'logistic', 'tanh', 'relu', 'softmax', 'exp'}, default='softmax'
        Activation of the output layer.
    backend : {'loop', 'vectorized'}, default='loop'
        Numba loop kernels, or NumPy matrix products.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import forward
    >>> coefs = [np.array([[1.0, -1.0]]), np.array([[1.0], [1.0]])]
    >>> intercepts = [np.zeros(2), np.array([0.5])]
    >>> forward(coefs, intercepts, np.array([[2.0]]), out_activation="identity")
    array([[2.5]])
    """
    units, params, X = _prepare(coefs, intercepts, X, activation, out_activation, None, backend)
    # predict's path: chunked, with reused workspaces, on a new array.
    return BACKENDS[backend].predict(params, units, X, ACTIVATION_CODES[activation],
                                     ACTIVATION_CODES[out_activation], None)


def _loss_and_flat_gradients(units, params, X, Y, sample_weight, activation, out_activation, loss,
                             alpha, backend, work):
    grads = np.empty_like(params)
    codes = (ACTIVATION_CODES[activation], ACTIVATION_CODES[out_activation], LOSS_CODES[loss])
    engine = BACKENDS[backend]
    data_loss, penalty = engine.backprop(params, units, engine.input_arrays(X, X.dtype), Y, sample_weight, codes,
                                         float(alpha), float(np.finfo(X.dtype).eps), grads, work)
    return data_loss + penalty, grads


def loss_value(backend, params, units, inputs, Y, sample_weight, codes, alpha, eps, work, losses, data_scale=1.0):
    """data_scale × Σ s_n ℓ_n / Σ s_n + ½ α Σ‖W‖² / Σ s_n, by a forward pass alone:
    for evaluations whose gradients would be thrown away (central differences,
    the validation loss). `losses` is a float64 buffer of one value per row."""
    act_code, out_code, loss_code = codes
    output = BACKENDS[backend].forward_pass(params, units, inputs, act_code, out_code, work)
    sample_losses(loss_code, out_code, output, Y, eps, losses)
    weights = np.asarray(sample_weight, dtype=np.float64)
    weight_sum = float(weights.sum())
    coefs = params[: sum(int(units[i] * units[i + 1]) for i in range(len(units) - 1))].astype(np.float64)
    return float(data_scale * np.dot(weights, losses) / weight_sum + 0.5 * alpha * np.dot(coefs, coefs) / weight_sum)


def _prepare_training(coefs, intercepts, X, Y, activation, out_activation, loss, alpha, sample_weight, backend):
    # forward's loss of None means none: a training call needs one.
    check_option("loss", loss, tuple(LOSS_CODES))
    units, params, X = _prepare(coefs, intercepts, X, activation, out_activation, loss, backend)
    check_positive("alpha", alpha, strict=False)
    if float(alpha) > float(np.finfo(X.dtype).max):
        raise ValueError(f"alpha={alpha!r} is beyond the range of {X.dtype}, the dtype of X the loss is computed "
                         "in; use a smaller alpha.")
    Y = check_Y(Y, X.shape[0], units[-1], X.dtype)
    check_targets(loss, Y, "Y")
    sample_weight, alpha = check_training_weights(sample_weight, X.shape[0], X.dtype, float(alpha))
    work = BACKENDS[backend].Workspace(units, X.shape[0], X.dtype)
    return units, params, X, Y, sample_weight, alpha, work


def loss_and_gradients(coefs, intercepts, X, Y, *, activation="relu", out_activation="softmax",
                       loss="log_loss", alpha=0.0, sample_weight=None, backend="loop"):
    """Loss of a dense network on (X, Y) and its gradients, by backpropagation.

    The loss is the sample-weighted mean of the per-sample loss (summed over
    outputs) plus ``0.5 * alpha * Σ‖W‖² / Σ sample_weight``; intercepts are not
    penalised. The gradients are those of that loss.

    Parameters
    ----------
    coefs, intercepts, X, activation, out_activation, backend
        As in :func:`forward`.
    Y : array-like of shape (n_samples, n_outputs)
        Targets; one-hot rows for a softmax output.
    loss : {'log_loss', 'squared_error', 'poisson'}, default='log_loss'
        log_loss needs a softmax or logistic output; poisson an exp, logistic or
        softmax output; squared_error takes any.
    alpha : float, default=0.0
        L2 penalty on the weights.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; None weighs every sample 1.

    Returns
    -------
    loss : float
    coef_grads : list of ndarray, shaped like coefs
    intercept_grads : list of ndarray, shaped like intercepts

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import loss_and_gradients
    >>> coefs, intercepts = [np.array([[2.0]])], [np.array([0.0])]
    >>> loss, dw, db = loss_and_gradients(coefs, intercepts, [[1.0]], [[3.0]],
    ...                                   out_activation="identity", loss="squared_error")
    >>> loss, dw[0], db[0]
    (0.5, array([[-1.]]), array([-1.]))
    """
    units, params, X, Y, sample_weight, alpha, work = _prepare_training(
        coefs, intercepts, X, Y, activation, out_activation, loss, alpha, sample_weight, backend
    )
    value, grads = _loss_and_flat_gradients(
        units, params, X, Y, sample_weight, activation, out_activation, loss, alpha, backend, work
    )
    coef_grads, intercept_grads = unpack(grads, units)
    return value, coef_grads, intercept_grads


def relative_error(a, b):
    """‖a − b‖ / max(‖b‖, tiny), Frobenius norms; 0 when both are exactly zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = np.linalg.norm(a - b)
    return 0.0 if diff == 0 else float(diff / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def check_gradients(coefs, intercepts, X, Y, *, activation="relu", out_activation="softmax",
                    loss="log_loss", alpha=0.0, sample_weight=None, backend="loop", eps=None):
    """Largest relative error between backprop's gradients and central differences.

    Each parameter θ_i is moved by ±eps and (C(θ + eps e_i) − C(θ − eps e_i)) / 2 eps
    is compared with backprop's ∂C/∂θ_i, array by array (see :func:`relative_error`).
    That costs two forward passes per parameter: meant for small networks.
    Central differences across a relu kink are wrong by construction, and so
    are those of a log-loss where a sample's probability of its true class is
    below the clip (the dtype's machine epsilon, as in scikit-learn): the loss
    is flat there, while backprop's output delta p − y, as scikit-learn's, is not.

    Parameters
    ----------
    coefs, intercepts, X, Y, activation, out_activation, loss, alpha, sample_weight, backend
        As in :func:`loss_and_gradients`.
    eps : float, default=None
        The step. None takes the cube root of the dtype's machine epsilon
        (6e-6 in float64), which balances truncation error (∝ eps²) against
        roundoff (∝ machine epsilon / eps).

    Returns
    -------
    float
        max over the coefs and intercepts arrays of ‖backprop − numeric‖ / ‖numeric‖.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import check_gradients
    >>> rng = np.random.default_rng(0)
    >>> coefs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    >>> intercepts = [rng.normal(size=4), rng.normal(size=2)]
    >>> X, Y = rng.normal(size=(5, 3)), np.eye(2)[[0, 1, 1, 0, 1]]
    >>> check_gradients(coefs, intercepts, X, Y, activation="tanh") < 1e-6
    True
    """
    units, params, X, Y, sample_weight, alpha, work = _prepare_training(
        coefs, intercepts, X, Y, activation, out_activation, loss, alpha, sample_weight, backend
    )
    if eps is None:
        eps = float(np.cbrt(np.finfo(X.dtype).eps))
    check_positive("eps", eps, strict=True)
    _, grads = _loss_and_flat_gradients(
        units, params, X, Y, sample_weight, activation, out_activation, loss, alpha, backend, work
    )
    inputs = BACKENDS[backend].input_arrays(X, X.dtype)
    codes = (ACTIVATION_CODES[activation], ACTIVATION_CODES[out_activation], LOSS_CODES[loss])
    losses = np.empty(X.shape[0])
    clip = float(np.finfo(X.dtype).eps)

    def loss_at(theta):
        return loss_value(backend, theta, units, inputs, Y, sample_weight, codes, float(alpha), clip, work, losses)

    numeric = np.empty(params.shape, dtype=np.float64)
    theta = params.copy()
    # A loss that overflows is named below, not in NumPy's warnings first.
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(params.size):
            theta[i] = params[i] + eps
            plus = loss_at(theta)
            theta[i] = params[i] - eps
            minus = loss_at(theta)
            theta[i] = params[i]
            numeric[i] = (plus - minus) / (2 * eps)
    if not np.isfinite(numeric).all():
        # Else the answer would be NaN, with only NumPy's warnings to say why.
        raise ValueError(f"The central differences are not finite: the loss at θ ± eps (eps={eps!r}) overflowed "
                         "for some parameter. Use a smaller eps (None takes the cube root of machine epsilon).")
    analytic_arrays = sum(unpack(grads, units), [])
    numeric_arrays = sum(unpack(numeric, units), [])
    return max(relative_error(a, b) for a, b in zip(analytic_arrays, numeric_arrays))
