"""Update rules of sgd (momentum, Nesterov, learning-rate schedules) and adam,
in place on the flat parameter buffer, in scikit-learn's form.

``step`` runs once per minibatch inside the compiled epoch; ``Optimizer``
holds the state between epochs and the schedule decisions made in Python.
"""

import numpy as np
from numba import njit, prange

from ._config import JIT, PARALLEL_JIT

SGD, ADAM = 0, 1


@njit(**PARALLEL_JIT)
def sgd_step(params, grads, velocities, learning_rate, momentum, nesterov):
    """v ← μv − ηg, then θ ← θ + v, or θ ← θ + μv − ηg with Nesterov's momentum."""
    eta = params.dtype.type(learning_rate)
    mu = params.dtype.type(momentum)
    for i in prange(params.shape[0]):
        v = mu * velocities[i] - eta * grads[i]
        velocities[i] = v
        if nesterov:
            params[i] += mu * v - eta * grads[i]
        else:
            params[i] += v


@njit(**PARALLEL_JIT)
def adam_step(params, grads, ms, vs, learning_rate, beta_1, beta_2, epsilon):
    """m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − η_t m / (√v + ε),
    where learning_rate is already η_t = η √(1 − β2^t) / (1 − β1^t)."""
    dt = params.dtype.type
    eta, b1, b2, eps = dt(learning_rate), dt(beta_1), dt(beta_2), dt(epsilon)
    c1, c2 = dt(1 - beta_1), dt(1 - beta_2)
    for i in prange(params.shape[0]):
        g = grads[i]
        m = b1 * ms[i] + c1 * g
        v = b2 * vs[i] + c2 * (g * g)
        ms[i] = m
        vs[i] = v
        params[i] += -eta * m / (np.sqrt(v) + eps)


@njit(**JIT)
def step(code, params, grads, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon):
    """One update with the gradients of minibatch number t (counted from 1)."""
    if code == SGD:
        sgd_step(params, grads, first, learning_rate, momentum, nesterov)
    else:
        lr_t = learning_rate * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
        adam_step(params, grads, first, second, lr_t, beta_1, beta_2, epsilon)


class Optimizer:
    """State of one solver on a flat buffer: velocities (sgd) or moments (adam),
    the minibatch count and the current learning rate."""

    def __init__(self, solver, n_params, dtype, *, learning_rate_init, learning_rate, momentum,
                 nesterovs_momentum, power_t, beta_1, beta_2, epsilon):
        self.code = SGD if solver == "sgd" else ADAM
        self.first = np.zeros(n_params, dtype=dtype)
        self.second = np.zeros(n_params if self.code == ADAM else 0, dtype=dtype)
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

    def step_args(self):
        """The optimizer's part of a compiled call, in ``step``'s order after grads."""
        return (self.code, self.first, self.second, self.t, self.learning_rate,
                self.momentum, self.nesterov, self.beta_1, self.beta_2, self.epsilon)

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
