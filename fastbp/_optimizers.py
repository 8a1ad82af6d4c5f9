"""Update rules of sgd (momentum, Nesterov, learning-rate schedules) and adam,
in place on the flat parameter buffer, in scikit-learn's form.

``update_slice`` runs inside the compiled epoch on the rows each thread owns; ``Optimizer``
holds the state between epochs and the schedule decisions made in Python.
"""

from collections import namedtuple

import numpy as np

from ._cache import njit
from ._config import ENTRY_JIT, JIT

SGD, ADAM = 0, 1

# The optimizer's argument to the compiled epoch, read there by field name.
Step = namedtuple("Step", "code first second t learning_rate momentum nesterov beta_1 beta_2 epsilon")


def no_step(dtype):
    """The Step of a call that updates nothing (empty state): gradients only."""
    empty = np.empty(0, dtype=dtype)
    return Step(SGD, empty, empty, 0, 0.0, 0.0, False, 0.0, 0.0, 0.0)


@njit(**ENTRY_JIT)
def update_slice(code, params, grads, first, second, lo, hi, learning_rate, momentum, nesterov,
                 beta_1, beta_2, epsilon):
    """Update params[lo:hi] from grads[lo:hi].

    sgd: v ← μv − ηg, then θ ← θ + v, or θ ← θ + μv − ηg with Nesterov's momentum.
    adam: m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − η_t m / (√v + ε),
    with learning_rate already η_t (see ``step_rate``).

    No expression adds two products: contraction could fuse either one, and
    LLVM may choose differently in a loop's vector body and in its remainder,
    whose split moves with the arrays' addresses, so the last bit would depend
    on memory layout. Adam's moments are written as m + (1 − β1)(g − m); sgd
    first stores ηg (in `second`, which adam alone needs), then reads it back.
    """
    # Views indexed from 0: an index that could be negative makes Numba check
    # for wraparound, which stops LLVM from vectorizing the loop.
    theta, g, m, v = params[lo:hi], grads[lo:hi], first[lo:hi], second[lo:hi]
    dt = params.dtype.type
    eta = dt(learning_rate)
    if code == SGD:
        mu = dt(momentum)
        for i in range(theta.shape[0]):
            v[i] = eta * g[i]
        for i in range(theta.shape[0]):
            velocity = mu * m[i] - v[i]
            m[i] = velocity
            if nesterov:
                theta[i] += mu * velocity - v[i]
            else:
                theta[i] += velocity
    else:
        eps = dt(epsilon)
        c1, c2 = dt(1 - beta_1), dt(1 - beta_2)
        for i in range(theta.shape[0]):
            m[i] = m[i] + c1 * (g[i] - m[i])
            change = g[i] * g[i] - v[i]
            # inf − inf once g² and v have overflowed: v stays inf and the step 0, as in
            # scikit-learn's β2 v + (1 − β2) g², instead of a NaN. Any other value is as written.
            v[i] = v[i] + c2 * change if change == change else g[i] * g[i]
            theta[i] += -eta * m[i] / (np.sqrt(v[i]) + eps)


@njit(**ENTRY_JIT)
def step_rate(code, learning_rate, beta_1, beta_2, t):
    """The step size of minibatch number t (from 1): η for sgd,
    η_t = η √(1 − β2^t) / (1 − β1^t) for adam."""
    if code == SGD:
        return learning_rate
    return learning_rate * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)


class Optimizer:
    """State of one solver on a flat buffer: velocities (sgd) or moments (adam),
    the minibatch count and the current learning rate."""

    def __init__(self, solver, n_params, dtype, *, learning_rate_init, learning_rate, momentum,
                 nesterovs_momentum, power_t, beta_1, beta_2, epsilon):
        self.code = SGD if solver == "sgd" else ADAM
        self.first = np.zeros(n_params, dtype=dtype)
        # adam's second moments; sgd's scratch for ηg (see update_slice)
        self.second = np.zeros(n_params, dtype=dtype)
        self.t = 0
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.schedule = learning_rate if self.code == SGD else "constant"
        self.momentum = momentum
        self.nesterov = nesterovs_momentum
        self.power_t = power_t
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def check_state(self, n_params, dtype):
        """Before a partial_fit continues from this state: it must be one value
        per parameter, in the model's dtype, and writeable (a model loaded with
        ``joblib.load(..., mmap_mode="r")`` has read-only arrays)."""
        for name in ("first", "second"):
            state = getattr(self, name)
            if state.shape != (n_params,):
                raise ValueError(
                    f"The optimizer state holds {state.size} values for a model of {n_params} parameters: "
                    "coefs_ or intercepts_ were replaced by arrays of other shapes. Call fit to start anew."
                )
            if not state.flags.writeable:
                raise ValueError(
                    "output array is read-only: the optimizer state of this model cannot be updated in place "
                    "(a model loaded with joblib.load(..., mmap_mode='r') is read-only). Load it without "
                    "mmap_mode to continue training."
                )
            # A plain array: one loaded with mmap_mode='c' or 'r+' is a writeable np.memmap.
            setattr(self, name, np.require(np.asarray(state), dtype, ["C_CONTIGUOUS", "ALIGNED"]))

    def step(self):
        """The optimizer's argument to the compiled epoch, each field in the one
        type it is compiled for (a momentum given as the int 0 would otherwise
        compile the epoch again)."""
        return Step(int(self.code), self.first, self.second, int(self.t), float(self.learning_rate),
                    float(self.momentum), bool(self.nesterov), float(self.beta_1), float(self.beta_2),
                    float(self.epsilon))

    def iteration_ends(self, time_step):
        """invscaling: η = η_0 / (samples seen + 1)^power_t."""
        if self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """True to stop; the adaptive schedule first divides η by 5 until it is below 1e-6."""
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False
