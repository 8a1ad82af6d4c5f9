"""Every input check of the functional API, before compiled code runs.

Kernels only ever see writeable, aligned, C-contiguous float32 or float64
arrays: Numba compiles one version per layout and read-only flag, and a
kernel cannot raise a readable error.
"""

import math
from numbers import Real

import numpy as np
import scipy.sparse as sp

from ._activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ._backends import BACKENDS
from ._config import FLOAT_DTYPES
from ._losses import ALLOWED_OUTPUTS


def check_option(kind, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"Unknown {kind} {value!r}; expected one of {', '.join(map(repr, allowed))}.")
    return value


def check_loss_pair(loss, out_activation):
    """The loss/output-activation pair must be one backprop's first equation covers."""
    check_option("loss", loss, tuple(ALLOWED_OUTPUTS))
    check_option("output activation", out_activation, OUTPUT_ACTIVATIONS)
    allowed = ALLOWED_OUTPUTS[loss]
    if out_activation not in allowed:
        raise ValueError(
            f"The pair loss={loss!r} with out_activation={out_activation!r} is not allowed: "
            f"{loss!r} needs one of the output activations {', '.join(map(repr, allowed))}."
        )


def check_names(activation, out_activation, loss, backend):
    check_option("activation", activation, HIDDEN_ACTIVATIONS)
    check_option("backend", backend, tuple(BACKENDS))
    if loss is not None:
        check_loss_pair(loss, out_activation)
    else:
        check_option("output activation", out_activation, OUTPUT_ACTIVATIONS)


def check_positive(name, value, strict):
    """Raise unless value is a finite real number above 0 (strict) or at least 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64, which np.isfinite cannot take either
        number = float("inf")
    if not (np.isfinite(number) and (number > 0 if strict else number >= 0)):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} 0, got {value!r}.")


def check_targets(loss, Y, name):
    """Raise for targets the loss is not defined at, where it would come out
    NaN (poisson, a negative target) or negative (log_loss, a target outside
    [0, 1], the class probabilities it takes), silently."""
    if loss == "poisson" and (Y < 0).any():
        raise ValueError(f"The poisson loss needs non-negative targets; {name} contains negative values.")
    if loss == "log_loss" and ((Y < 0) | (Y > 1)).any():
        raise ValueError(f"The log_loss needs targets in [0, 1] (class probabilities); {name} holds values "
                         "outside it.")


def check_cast_input(X, dtype):
    """Raise scikit-learn's ValueError naming `dtype` when X, finite in its own
    dtype (validated, or plain), holds a value beyond dtype's range: the cast
    to the dtype the model computes in (float64 X for float32 weights, or
    longdouble X) would make it an infinity. Only a narrowing cast looks at
    the values (their largest magnitude, cast alone)."""
    values = X.data if sp.issparse(X) else X
    if values.dtype.kind != "f" or values.dtype.itemsize <= dtype.itemsize or values.size == 0:
        return
    with np.errstate(over="ignore"):
        if np.isfinite(dtype.type(max(values.max(), -values.min()))):
            return
        cast = values.astype(dtype)
    # Imported here: `import fastbp` loads no scikit-learn.
    from sklearn.utils.validation import assert_all_finite

    assert_all_finite(cast, input_name="X")


def training_dtype(X):
    """X's dtype if it is float32 or float64, float64 for anything else."""
    dtype = getattr(X, "dtype", None)
    return dtype if dtype in FLOAT_DTYPES else np.dtype(np.float64)


def as_kernel_array(a, dtype, name, ndim):
    """a as a writeable C-contiguous array of dtype, checked for shape and finiteness."""
    if sp.issparse(a):
        # NumPy would make it a 0-d object array and fail on its cast.
        raise TypeError(f"Sparse data was passed for {name}, but dense data is required. Use '.toarray()' to "
                        "convert to a dense numpy array.")
    try:
        arr = np.asarray(a)
        # A cast would drop an imaginary part (with a warning) or parse strings of digits.
        if arr.dtype.kind in "cUSVmM":
            raise TypeError(f"got dtype {arr.dtype}")
        arr = arr.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return np.require(arr, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])


def check_network(coefs, intercepts, dtype):
    """Layer sizes as an int64 array; each coefs[l] must be (units[l], units[l+1])."""
    if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)):
        raise TypeError(f"coefs and intercepts must be lists of arrays, one per layer; got "
                        f"{type(coefs).__name__} and {type(intercepts).__name__}.")
    if len(coefs) == 0 or len(coefs) != len(intercepts):
        raise ValueError(
            f"coefs and intercepts must be non-empty lists of the same length, "
            f"got {len(coefs)} and {len(intercepts)}."
        )
    coefs = [as_kernel_array(c, dtype, f"coefs[{i}]", 2) for i, c in enumerate(coefs)]
    intercepts = [as_kernel_array(b, dtype, f"intercepts[{i}]", 1) for i, b in enumerate(intercepts)]
    units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        if min(c.shape) == 0:
            raise ValueError(f"coefs[{i}] has shape {c.shape}: every layer needs at least one input and one unit.")
        if c.shape != (units[i], units[i + 1]):
            raise ValueError(
                f"coefs[{i}] has shape {c.shape}, expected ({units[i]}, {units[i + 1]}) "
                "to follow the previous layer."
            )
        if b.shape != (units[i + 1],):
            raise ValueError(f"intercepts[{i}] has shape {b.shape}, expected ({units[i + 1]},).")
    return np.asarray(units, dtype=np.int64), coefs, intercepts


def check_X(X, units, dtype):
    X = as_kernel_array(X, dtype, "X", 2)
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples; at least one is required.")
    if X.shape[1] != units[0]:
        raise ValueError(f"X has {X.shape[1]} features, but coefs[0] expects {units[0]}.")
    return X


def check_Y(Y, n_samples, n_outputs, dtype):
    Y = as_kernel_array(Y, dtype, "Y", 2)
    if Y.shape != (n_samples, n_outputs):
        raise ValueError(f"Y has shape {Y.shape}, expected ({n_samples}, {n_outputs}).")
    return Y


def _weights(sample_weight, n_samples, dtype):
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    sw = as_kernel_array(sample_weight, dtype, "sample_weight", 1)
    if sw.shape != (n_samples,):
        raise ValueError(f"sample_weight has shape {sw.shape}, expected ({n_samples},).")
    if (sw < 0).any():
        raise ValueError("sample_weight contains negative values.")
    return sw


def _weight_sum(sw):
    with np.errstate(over="ignore"):
        return sw.sum()


def _check_weight_sum(sw, given=None):
    """sw, unless its sum is zero, infinite or subnormal; the message gives
    the sum of `given`, the weights as the caller passed them (default sw)."""
    total = _weight_sum(sw)
    if not total > 0:
        raise ValueError("sample_weight sums to zero; at least one sample must have a positive weight.")
    # The loss and its gradients divide by the sum: an infinite one made them NaN, a subnormal one infinite.
    if not (np.isfinite(total) and total >= np.finfo(sw.dtype).tiny):
        shown = total if given is None else _weight_sum(given)
        raise ValueError(f"sample_weight sums to {float(shown)!r} in {sw.dtype}, which the loss cannot be divided by; "
                         "rescale the weights.")
    return sw


def check_sample_weight(sample_weight, n_samples, dtype):
    """sample_weight (None: ones) as a kernel array of dtype, refused unless
    it is n_samples non-negative numbers with a finite, normal sum."""
    return _check_weight_sum(_weights(sample_weight, n_samples, dtype))


def check_training_weights(sample_weight, n_samples, dtype, alpha):
    """(sample_weight, alpha) for a loss and its gradients: the weights checked
    as by check_sample_weight after both are scaled by scale_weights, so that
    weights too small for the dtype give the loss and gradients that their
    scaled copies give exactly."""
    given = _weights(sample_weight, n_samples, dtype)
    sw, alpha = scale_weights(given, alpha)
    return _check_weight_sum(sw, given), alpha


def scale_weights(sample_weight, alpha):
    """(sample_weight, alpha), both times the same power of two 2^k, which
    leaves every loss, gradient and so the model unchanged (a minibatch's
    terms are divided by its weights' sum, the penalty ½ α ‖W‖² too), where
    the smallest positive weight is below the dtype's smallest normal number
    times 2^(mantissa bits) (2^-970 in float64, 2^-103 in float32): the
    reciprocal of a minibatch's sum of subnormal weights overflows, and their
    weighted errors keep few bits (scikit-learn's, divided rather than
    multiplied, stay finite). Otherwise k = 0 and nothing changes. k is at
    most what keeps the weights' total, and α 2^k, 2^8 below overflowing the
    dtype: weights of too wide a range are scaled up as far as that allows
    (a minibatch of subnormal weights alone may then still fail, as before)."""
    finfo = np.finfo(sample_weight.dtype)
    floor = math.log2(float(finfo.tiny)) + finfo.nmant
    # One pass and no copy for the weights of every ordinary fit (all ones without sample_weight).
    if sample_weight.min() >= 2.0**floor:
        return sample_weight, alpha
    positive = sample_weight[sample_weight > 0]
    if positive.size == 0:
        return sample_weight, alpha
    k = math.ceil(floor - math.log2(float(positive.min())))
    if k > 0:
        k = min(k, math.floor(finfo.maxexp - 8 - math.log2(sample_weight.shape[0]) - math.log2(float(positive.max()))))
    if k > 0 and alpha > 0:
        # The kernels take alpha in the model's dtype.
        k = min(k, math.floor(finfo.maxexp - 8 - math.log2(alpha)))
    if k <= 0:
        return sample_weight, alpha
    return np.ldexp(sample_weight, k).astype(sample_weight.dtype, copy=False), math.ldexp(float(alpha), k)


class LayerCountError(ValueError, IndexError):
    """coefs_ or intercepts_ has another number of layers than the model: a
    ValueError as fastbp's other parameter checks, and the IndexError that
    scikit-learn's estimators raise on it."""


def check_model_parameters(coefs, intercepts, n_layers, n_features, n_outputs, layer_units=None):
    """The fitted attributes coefs_ and intercepts_, as a user may have assigned
    them, checked before any compiled code reads them.

    The layers must number n_layers - 1, chain (coefs[l] of shape
    (units[l], units[l+1]), intercepts[l] of shape (units[l+1],)), take
    n_features inputs and give n_outputs outputs, and, given layer_units (a
    warm-start fit or partial_fit), be exactly those widths. Real or integer
    arrays only. Returns (units as int64, dtype): float32 when every array is
    float32, else float64, as a scikit-learn model computes integer weights.
    """
    try:
        coefs, intercepts = list(coefs), list(intercepts)
    except TypeError:
        raise TypeError("coefs_ and intercepts_ must be lists of arrays, one per layer.") from None
    if len(coefs) != n_layers - 1 or len(intercepts) != n_layers - 1:
        raise LayerCountError(
            f"coefs_ and intercepts_ must hold n_layers_ - 1 = {n_layers - 1} arrays; "
            f"got {len(coefs)} and {len(intercepts)}."
        )
    coefs = [np.asarray(c) for c in coefs]
    intercepts = [np.asarray(b) for b in intercepts]
    for name, arrays, ndim in (("coefs_", coefs, 2), ("intercepts_", intercepts, 1)):
        for i, a in enumerate(arrays):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{name}[{i}] must be a real-valued array; got dtype {a.dtype}.")
            if a.ndim != ndim:
                raise ValueError(f"{name}[{i}] must be {ndim}-D; got shape {a.shape}.")
    # The widths the arrays must have: the hidden ones are the arrays' own, unless a fit names them.
    units = [int(n_features)] + [int(c.shape[1]) for c in coefs[:-1]] + [int(n_outputs)]
    if layer_units is not None:
        units = [int(u) for u in layer_units]
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        if c.shape != (units[i], units[i + 1]):
            raise ValueError(
                f"coefs_[{i}] has shape {c.shape}; the model's layer widths {units} "
                f"(n_features_in_ inputs, hidden_layer_sizes, n_outputs_ outputs) need ({units[i]}, {units[i + 1]})."
            )
        if b.shape != (units[i + 1],):
            raise ValueError(f"intercepts_[{i}] has shape {b.shape}; the model's layer widths {units} need "
                             f"({units[i + 1]},).")
    if min(units) == 0:
        raise ValueError(f"Every layer needs at least one unit; the layer widths are {units}.")
    float32 = all(a.dtype == np.float32 for a in coefs + intercepts)
    return np.asarray(units, dtype=np.int64), np.dtype(np.float32 if float32 else np.float64)
