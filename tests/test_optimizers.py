"""The update rules on their own, step by step against scikit-learn's
SGDOptimizer and AdamOptimizer (as scikit-learn tests its own): same
parameters, same gradients, same schedule decisions."""

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from fastbp._optimizers import Optimizer, step_rate, update_slice
from fastbp._params import pack, unpack

SHAPES = [(3, 4), (4, 2)]
UNITS = [3, 4, 2]


def _arrays(rng):
    coefs = [rng.normal(size=s) for s in SHAPES]
    intercepts = [rng.normal(size=s[1]) for s in SHAPES]
    return coefs + intercepts


def _steps(optimizer, theirs, start, rng, n_steps):
    """n_steps of the same random gradients from `start` (a list of arrays) by
    both; returns (ours, theirs) parameters, flat."""
    their_params = [a.copy() for a in start]
    params = pack(*_split(start), np.float64)
    for t in range(1, n_steps + 1):
        grads = _arrays(rng)
        theirs.update_params(their_params, grads)
        optimizer.t = t
        step = optimizer.step()
        update_slice(step.code, params, pack(*_split(grads), np.float64), step.first, step.second, 0, params.shape[0],
                     step_rate(step.code, step.learning_rate, step.beta_1, step.beta_2, t),
                     step.momentum, step.nesterov, step.beta_1, step.beta_2, step.epsilon)
    return params, pack(*_split(their_params), np.float64)


def _split(arrays):
    return list(arrays[: len(SHAPES)]), list(arrays[len(SHAPES):])


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_steps_equal_scikit_learns(momentum, nesterov):
    rng = np.random.default_rng(0)
    start = _arrays(rng)
    theirs = SGDOptimizer([a.copy() for a in start], learning_rate_init=0.1, momentum=momentum,
                          nesterov=nesterov)
    ours = Optimizer("sgd", sum(a.size for a in start), np.float64, learning_rate_init=0.1, learning_rate="constant",
                     momentum=momentum, nesterovs_momentum=nesterov, power_t=0.5, beta_1=0.9, beta_2=0.999,
                     epsilon=1e-8)
    mine, reference = _steps(ours, theirs, start, rng, 5)
    np.testing.assert_allclose(mine, reference, rtol=1e-14, atol=1e-15)


def test_adam_steps_equal_scikit_learns():
    rng = np.random.default_rng(1)
    start = _arrays(rng)
    theirs = AdamOptimizer([a.copy() for a in start], learning_rate_init=0.01, beta_1=0.9, beta_2=0.999,
                           epsilon=1e-8)
    ours = Optimizer("adam", sum(a.size for a in start), np.float64, learning_rate_init=0.01,
                     learning_rate="constant", momentum=0.9, nesterovs_momentum=True, power_t=0.5, beta_1=0.9,
                     beta_2=0.999, epsilon=1e-8)
    mine, reference = _steps(ours, theirs, start, rng, 7)
    np.testing.assert_allclose(mine, reference, rtol=1e-13, atol=1e-15)


def test_a_slice_updates_its_parameters_only():
    rng = np.random.default_rng(2)
    start = _arrays(rng)
    params = pack(*_split(start), np.float64)
    before = params.copy()
    ours = Optimizer("adam", params.size, np.float64, learning_rate_init=0.01, learning_rate="constant",
                     momentum=0.9, nesterovs_momentum=True, power_t=0.5, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    step = ours.step()
    grads = np.ones_like(params)
    update_slice(step.code, params, grads, step.first, step.second, 5, 9, 0.01, 0.9, True, 0.9, 0.999, 1e-8)
    changed = np.flatnonzero(params != before)
    np.testing.assert_array_equal(changed, np.arange(5, 9))
    assert unpack(params, UNITS)[0][0].shape == SHAPES[0]


def test_adaptive_schedule_divides_by_five_until_below_a_millionth():
    ours = Optimizer("sgd", 1, np.float64, learning_rate_init=1e-5, learning_rate="adaptive", momentum=0.9,
                     nesterovs_momentum=True, power_t=0.5, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    theirs = SGDOptimizer([np.zeros(1)], learning_rate_init=1e-5, lr_schedule="adaptive")
    for _ in range(4):
        assert ours.trigger_stopping("", False) == theirs.trigger_stopping("", False)
        assert ours.learning_rate == pytest.approx(theirs.learning_rate, rel=1e-15)
