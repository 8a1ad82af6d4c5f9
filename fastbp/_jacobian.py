"""∂output/∂input of a dense network, by forward mode and by reverse mode.

For one sample x the network is a chain x = a^0 → z^1 → a^1 → … → z^L → a^L,
with z^{l+1} = (W^l)ᵀ a^l + b^l and a^l = σ(z^l). Its Jacobian J = ∂a^L/∂x is
(n_outputs, n_features), and the chain rule writes it as a product of
per-layer Jacobians, which can be multiplied from either end:

- **forward mode** pushes a tangent ẋ (a direction in input space) up the
  chain: ż^{l+1} = (W^l)ᵀ ȧ^l, ȧ^l = σ'(z^l) ⊙ ż^l. Seeding ẋ = e_i gives
  ȧ^L = J e_i, column i of J: one sweep per input feature.
- **reverse mode** pulls an adjoint ā (a direction in output space) down the
  chain: z̄^l = σ'(z^l) ⊙ ā^l, ā^{l-1} = W^{l-1} z̄^l. Seeding ā^L = e_o gives
  x̄ = Jᵀ e_o, row o of J: one sweep per output.

Every sweep costs about one multiply-add per weight (its unit seed makes the
first product of a sweep read one row of W^0, or one column of W^{L-1}), so
forward mode costs n_features sweeps and reverse mode n_outputs sweeps:
forward wins with few inputs and many outputs, reverse with many inputs and
few outputs — backprop itself is reverse mode, with one output (the loss)
and many parameters.

The kernels run sample by sample and keep that sample's activations from one
forward pass (σ' is written through a = σ(z), see ``_activations``). Both
modes' inner loops run along contiguous rows: forward mode's over W^l,
reverse mode's over a transposed copy of it.
Elementwise activations multiply by their derivative with
``multiply_derivative_rows``; the softmax output's Jacobian
∂a_i/∂z_j = a_i (1[i = j] − a_j) is full but symmetric, so the same product
serves both modes.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils.validation import check_is_fitted, validate_data

from ._activations import ACTIVATION_CODES, SOFTMAX, activate_rows, multiply_derivative_rows
from ._cache import njit
from ._config import ENTRY_JIT, JIT
from ._params import coef_start, coef_view, intercept_view, pack
from ._validation import (check_cast_input, check_model_parameters, check_names, check_network, check_option,
                          check_X, training_dtype)

MODES = ("forward", "reverse")


# ------------------------------------------------------------------ kernels

@njit(**JIT)
def _forward_sample(params, units, offsets, x, act_code, out_code, a):
    """a^{l+1}_j = σ(Σ_k w_kj a^l_k + b_j) for every layer, a^0 = x; layer l's
    activations are a[offsets[l]:offsets[l+1]]."""
    n_layers = units.shape[0] - 1
    a[offsets[0] : offsets[1]] = x
    for layer in range(n_layers):
        coefs = coef_view(params, units, layer)
        a_in = a[offsets[layer] : offsets[layer + 1]]
        z = a[offsets[layer + 1] : offsets[layer + 2]]
        z[:] = intercept_view(params, units, layer)
        for k in range(units[layer]):
            a_k = a_in[k]
            for j in range(units[layer + 1]):
                z[j] += a_k * coefs[k, j]
        code = out_code if layer == n_layers - 1 else act_code
        activate_rows(code, z.reshape((1, z.shape[0])), 0, 1)


@njit(**JIT)
def _times_activation_jacobian(code, a, v):
    """v ← (∂a/∂z) v, in place. Elementwise σ: v_j ← σ'(z_j) v_j. Softmax:
    v_i ← Σ_j a_i (1[i = j] − a_j) v_j = a_i (v_i − Σ_j a_j v_j). Both matrices
    are symmetric, so this is also (∂a/∂z)ᵀ v, reverse mode's product."""
    if code == SOFTMAX:
        dot = a.dtype.type(0)
        for j in range(a.shape[0]):
            dot += a[j] * v[j]
        for i in range(a.shape[0]):
            v[i] = a[i] * (v[i] - dot)
    else:
        multiply_derivative_rows(code, a.reshape((1, a.shape[0])), v.reshape((1, v.shape[0])), 0, 1)


@njit(**JIT)
def _transposed_layer(coefs_t, units, layer):
    """(W^l)ᵀ as a (fan_out, fan_in) view of a buffer holding every layer's transpose
    at the offset of its coefs in params (unlike the loop workspace's coefs_t, which has no layer 0)."""
    start = coef_start(units, layer)
    return coefs_t[start : start + units[layer] * units[layer + 1]].reshape((units[layer + 1], units[layer]))


@njit(**ENTRY_JIT)
def jacobian_forward(params, units, offsets, X, act_code, out_code, a, tangent, tangent_next, jac):
    """jac[n, :, i] = ∂a^L/∂x_i = ȧ^L for the tangent seed ẋ = e_i (forward mode):
    ż^{l+1}_j = Σ_k w_kj ȧ^l_k, ȧ^{l+1} = σ'(z^{l+1}) ⊙ ż^{l+1}, one sweep per input feature i."""
    n_layers = units.shape[0] - 1
    zero = a.dtype.type(0)
    for n in range(X.shape[0]):
        _forward_sample(params, units, offsets, X[n], act_code, out_code, a)
        for i in range(units[0]):
            # ẋ = e_i, nonzero only at k = i: the first product reads row i of W^0 alone
            da = tangent[: units[0]]
            da[:] = zero
            da[i] = 1
            k0, k1 = i, i + 1
            for layer in range(n_layers):
                # ż^{l+1}_j = Σ_k w_kj ȧ^l_k
                coefs = coef_view(params, units, layer)
                dz = tangent_next[: units[layer + 1]]
                dz[:] = zero
                for k in range(k0, k1):
                    da_k = da[k]
                    for j in range(units[layer + 1]):
                        dz[j] += da_k * coefs[k, j]
                # ȧ^{l+1} = (∂a^{l+1}/∂z^{l+1}) ż^{l+1}
                code = out_code if layer == n_layers - 1 else act_code
                _times_activation_jacobian(code, a[offsets[layer + 1] : offsets[layer + 2]], dz)
                tangent, tangent_next = tangent_next, tangent
                da = dz
                k0, k1 = 0, units[layer + 1]
            for o in range(units[n_layers]):
                jac[n, o, i] = da[o]


@njit(**ENTRY_JIT)
def jacobian_reverse(params, coefs_t, units, offsets, X, act_code, out_code, a, adjoint, adjoint_next, jac):
    """jac[n, o, :] = ∂a^L_o/∂x = ā^0 for the adjoint seed ā^L = e_o (reverse mode):
    z̄^{l+1} = σ'(z^{l+1}) ⊙ ā^{l+1}, ā^l_k = Σ_j w_kj z̄^{l+1}_j, one sweep per output o.

    coefs_t holds every (W^l)ᵀ where params holds W^l, so that the sum over j
    runs along contiguous rows, as forward mode's sum over k does."""
    n_layers = units.shape[0] - 1
    zero = a.dtype.type(0)
    for n in range(X.shape[0]):
        _forward_sample(params, units, offsets, X[n], act_code, out_code, a)
        for o in range(units[n_layers]):
            # z̄^L = (∂a^L/∂z^L)ᵀ e_o: an elementwise σ keeps it zero but at j = o,
            # so that the first product reads column o of W^{L-1} alone
            dz = adjoint[: units[n_layers]]
            dz[:] = zero
            dz[o] = 1
            _times_activation_jacobian(out_code, a[offsets[n_layers] : offsets[n_layers + 1]], dz)
            j0, j1 = (0, units[n_layers]) if out_code == SOFTMAX else (o, o + 1)
            for layer in range(n_layers - 1, -1, -1):
                # ā^l_k = Σ_j w_kj z̄^{l+1}_j, written straight into jac for l = 0 (ā^0 = x̄)
                coefs_t_layer = _transposed_layer(coefs_t, units, layer)
                da = jac[n, o] if layer == 0 else adjoint_next[: units[layer]]
                da[:] = zero
                for j in range(j0, j1):
                    dz_j = dz[j]
                    for k in range(units[layer]):
                        da[k] += dz_j * coefs_t_layer[j, k]
                if layer > 0:
                    # z̄^l = σ'(z^l) ⊙ ā^l
                    _times_activation_jacobian(act_code, a[offsets[layer] : offsets[layer + 1]], da)
                    adjoint, adjoint_next = adjoint_next, adjoint
                    dz = da
                    j0, j1 = 0, units[layer]


# ------------------------------------------------------------------ public API

def _estimator_network(model, X):
    """(coefs, intercepts, activation, out_activation, X, binary) of a fitted MLP estimator."""
    if "hidden_layer_sizes" not in model.get_params(deep=False):
        raise ValueError(f"jacobian needs an MLPClassifier or MLPRegressor, got {type(model).__name__}.")
    check_is_fitted(model, "coefs_")
    X = validate_data(model, X, accept_sparse=["csr", "csc"], reset=False)
    if sp.issparse(X):
        X = X.toarray()
    # Weights as predict takes them, checked whole: float32 when all are, else
    # float64 (integer, bool or float16 weights, or float32 beside float64).
    _, dtype = check_model_parameters(model.coefs_, model.intercepts_, model.n_layers_, X.shape[1], model.n_outputs_)
    check_cast_input(X, dtype)
    # predict_proba of a classifier with one logistic output returns [1 − p, p].
    binary = is_classifier(model) and model.n_outputs_ == 1
    return model.coefs_, model.intercepts_, model.activation, model.out_activation_, np.asarray(X, dtype), binary


def jacobian(model, X, *, mode="reverse", intercepts=None, activation=None, out_activation=None):
    """∂output/∂input of a dense network, sample by sample.

    Parameters
    ----------
    model : fitted MLPClassifier or MLPRegressor, or list of ndarray
        A fitted estimator (fastbp's or scikit-learn's), whose output is what
        ``predict_proba`` returns for a classifier — two columns [1 − p, p] for
        a binary one — and what ``predict`` returns for a regressor. Or the
        weights ``coefs`` as :func:`forward` takes them; the output is then
        :func:`forward`'s.
    X : array-like of shape (n_samples, n_features)
        The points at which to differentiate.
    mode : {'reverse', 'forward'}, default='reverse'
        'forward' propagates a tangent per input feature (a column of the
        Jacobian per sweep), 'reverse' an adjoint per output (a row per
        sweep). The results agree to rounding; forward is cheaper when
        n_features < n_outputs, reverse otherwise.
    intercepts : list of ndarray, default=None
        With ``coefs`` only (required then): the biases, as for :func:`forward`.
    activation : str, default=None
        With ``coefs`` only: the hidden activation ('relu' when None).
    out_activation : str, default=None
        With ``coefs`` only: the output activation ('softmax' when None).

    Returns
    -------
    ndarray of shape (n_samples, n_outputs, n_features)
        ``J[n, o, i] = ∂output_o/∂x_i`` at ``X[n]``, in the dtype of the
        estimator's ``coefs_`` (float32 or float64 X's dtype with ``coefs``).
        At a relu kink (z = 0 exactly) the derivative taken is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import jacobian
    >>> coefs = [np.array([[1.0, -1.0]]), np.array([[2.0], [3.0]])]
    >>> intercepts = [np.zeros(2), np.zeros(1)]
    >>> jacobian(coefs, [[0.5]], intercepts=intercepts, out_activation="identity")
    array([[[2.]]])
    """
    check_option("mode", mode, MODES)
    binary = False
    if isinstance(model, BaseEstimator):
        if intercepts is not None or activation is not None or out_activation is not None:
            raise ValueError("intercepts, activation and out_activation are read from the estimator; "
                             "pass them only with a list of coefs.")
        coefs, intercepts, activation, out_activation, X, binary = _estimator_network(model, X)
        dtype = X.dtype
    else:
        if intercepts is None:
            raise ValueError("jacobian(coefs, X, ...) needs intercepts=; or pass a fitted estimator as model.")
        coefs = model
        activation = "relu" if activation is None else activation
        out_activation = "softmax" if out_activation is None else out_activation
        dtype = training_dtype(X)
    check_names(activation, out_activation, None, "loop")
    units, coefs, intercepts = check_network(coefs, intercepts, dtype)
    X = check_X(X, units, dtype)

    params = pack(coefs, intercepts, dtype)
    offsets = np.concatenate([[0], np.cumsum(units)]).astype(np.int64)
    a = np.empty(offsets[-1], dtype=dtype)
    width = int(units.max())
    jac = np.empty((X.shape[0], units[-1], units[0]), dtype=dtype)
    codes = ACTIVATION_CODES[activation], ACTIVATION_CODES[out_activation]
    buffers = a, np.empty(width, dtype=dtype), np.empty(width, dtype=dtype), jac
    if mode == "forward":
        jacobian_forward(params, units, offsets, X, *codes, *buffers)
    else:
        coefs_t = pack([c.T for c in coefs], [], dtype)
        jacobian_reverse(params, coefs_t, units, offsets, X, *codes, *buffers)
    if binary:
        # ∂(1 − p)/∂x = −∂p/∂x
        return np.concatenate([-jac, jac], axis=1)
    return jac
