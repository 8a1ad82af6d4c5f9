"""Inverted dropout on the hidden units, with masks from a counter-based hash.

Unit j of sample n is kept with probability 1 − p and then scaled by
1 / (1 − p), so the expected activation is the undropped one and predict's
network needs no rescaling. Whether it is kept is a pure function of
(seed, epoch, position of the sample in the epoch, hidden unit number): no
generator state, so a thread, a block of samples or the vectorized backend
draws the same mask for the same unit, and the backward pass recomputes the
mask instead of storing it. Numba's np.random keeps one state per thread,
which would tie the model to the thread count.

The hash is splitmix64's finalizer, a bijection of 64-bit integers that
spreads every input bit over the output; chaining it over the counters keys
each (sample, unit) pair apart.
"""

import numpy as np
from numba import config

from ._cache import njit
from ._config import ENTRY_JIT, JIT

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_UNIT_INTERVAL = 2.0**-53

# (p, key) of no dropout: a float and an np.uint64, the types every call
# passes, so that none compiles a new specialization.
NO_DROPOUT = (0.0, np.uint64(0))


@njit(**JIT)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@njit(**ENTRY_JIT)
def _epoch_key(seed, epoch):
    return _mix(_mix(np.uint64(seed)) + np.uint64(epoch) * _GOLDEN)


def epoch_key(seed, epoch):
    """The key of one epoch's masks, seed and cumulative epoch number hashed
    together, as the np.uint64 the kernels take (a Python int would be typed
    int64 or uint64 by its value, and mixing int64 with uint64 gives floats)."""
    return np.uint64(_epoch_key(seed, epoch))


@njit(**JIT)
def _sample_key(key, position):
    return _mix(key + np.uint64(position) * _GOLDEN)


@njit(**JIT)
def _kept(sample_key, unit, rate):
    """m = 1: a uniform draw in [0, 1) (the hash's top 53 bits) is at least p."""
    return float(_mix(sample_key + np.uint64(unit)) >> np.uint64(11)) * _UNIT_INTERVAL >= rate


if config.DISABLE_JIT:
    def _wrapping(function):
        """function with NumPy's overflow warnings off: uint64 arithmetic wraps
        around by design, silently when compiled (NUMBA_DISABLE_JIT=1 only)."""
        def call(*args):
            with np.errstate(over="ignore"):
                return function(*args)
        return call

    _epoch_key, _sample_key, _kept = _wrapping(_epoch_key), _wrapping(_sample_key), _wrapping(_kept)


@njit(**ENTRY_JIT)
def hidden_unit_offset(units, layer):
    """The number of the first unit of hidden layer `layer` (1-based) among all hidden units."""
    offset = 0
    for h in range(1, layer):
        offset += units[h]
    return offset


@njit(**JIT)
def drop_rows(values, n0, n1, key, position0, unit0, rate):
    """values_nj ×= m_nj / (1 − p) for rows n0..n1-1, row n being the sample at
    position0 + n in the epoch: a_j → a_j m_j / (1 − p) forward, and the same
    factor on δ_j backward (the chain rule through the dropout product)."""
    scale = values.dtype.type(1.0 / (1.0 - rate))
    zero = values.dtype.type(0)
    for n in range(n0, n1):
        sample_key = _sample_key(key, position0 + n)
        row = values[n]
        for j in range(row.shape[0]):
            row[j] = row[j] * scale if _kept(sample_key, unit0 + j, rate) else zero


@njit(**JIT)
def undropped_rows(activations, undropped, n0, n1, key, position0, unit0, rate):
    """The activations before dropout, a_j = ã_j (1 − p) / m_j (0 where dropped),
    from which σ' is taken in the δ recursion: its formulas are in terms of σ(z)."""
    scale = activations.dtype.type(1.0 / (1.0 - rate))
    zero = activations.dtype.type(0)
    for n in range(n0, n1):
        sample_key = _sample_key(key, position0 + n)
        for j in range(activations.shape[1]):
            undropped[n, j] = activations[n, j] / scale if _kept(sample_key, unit0 + j, rate) else zero


@njit(**ENTRY_JIT)
def dropout_factors(factors, key, position0, unit0, rate):
    """factors_nj = m_nj / (1 − p) for a whole matrix: the vectorized backend's mask."""
    factors[:, :] = 1
    drop_rows(factors, 0, factors.shape[0], key, position0, unit0, rate)
