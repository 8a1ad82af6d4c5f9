"""One flat parameter buffer, with coefs_ and intercepts_ as views into it.

Layout, as scikit-learn's L-BFGS packs it: every coefs[l] raveled in C order,
layer after layer, then every intercepts[l]. One optimizer loop runs over the
whole buffer, L-BFGS reads and writes it directly, and compiled code gets one
array instead of a list per layer.

Views do not survive pickling or a user assigning coefs_, so estimators
rebuild the buffer from coefs_/intercepts_ at every fit.
"""

import numpy as np

from ._cache import njit
from ._config import JIT


def n_params(units):
    return sum(units[i] * units[i + 1] + units[i + 1] for i in range(len(units) - 1))


def pack(coefs, intercepts, dtype):
    """A new flat buffer holding coefs then intercepts, in dtype."""
    return np.concatenate(
        [np.asarray(c, dtype=dtype).ravel() for c in coefs]
        + [np.asarray(b, dtype=dtype).ravel() for b in intercepts]
    )


def unpack(flat, units):
    """coefs and intercepts as lists of views into flat."""
    coefs, intercepts = [], []
    start = 0
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        coefs.append(flat[start : start + fan_in * fan_out].reshape(fan_in, fan_out))
        start += fan_in * fan_out
    for fan_out in units[1:]:
        intercepts.append(flat[start : start + fan_out])
        start += fan_out
    return coefs, intercepts


def views_of(flat, coefs, intercepts):
    """Whether coefs and intercepts are exactly the views unpack(flat, units)
    made: same memory, at the same offsets, in the same shapes."""
    address = flat.__array_interface__["data"][0]
    offset = 0
    for a in list(coefs) + list(intercepts):
        if not (isinstance(a, np.ndarray) and a.base is flat and a.dtype == flat.dtype and a.flags.c_contiguous
                and a.__array_interface__["data"][0] == address + offset * flat.itemsize):
            return False
        offset += a.size
    return offset == flat.size


@njit(**JIT)
def coef_start(units, layer):
    """Index of coefs[layer][0, 0] in the flat buffer."""
    start = 0
    for i in range(layer):
        start += units[i] * units[i + 1]
    return start


@njit(**JIT)
def intercept_start(units, layer):
    """Index of intercepts[layer][0] in the flat buffer."""
    start = coef_start(units, units.shape[0] - 1)
    for i in range(layer):
        start += units[i + 1]
    return start


@njit(**JIT)
def coef_view(params, units, layer):
    """coefs[layer] as a (fan_in, fan_out) view of the flat buffer."""
    start = coef_start(units, layer)
    fan_in, fan_out = units[layer], units[layer + 1]
    return params[start : start + fan_in * fan_out].reshape((fan_in, fan_out))


@njit(**JIT)
def intercept_view(params, units, layer):
    """intercepts[layer] as a view of the flat buffer."""
    start = intercept_start(units, layer)
    return params[start : start + units[layer + 1]]
