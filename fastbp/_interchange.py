"""Two-way interchange with scikit-learn's MLP estimators.

A fitted model is its parameters, its weights and a handful of fitted
attributes, named alike on both sides; only the optimizer state differs in
form. scikit-learn keeps it as lists of arrays, one per coefs_/intercepts_
entry (velocities for sgd, moments ms and vs for adam); fastbp keeps the same
values in flat buffers, in the same order (every coefs[l], then every
intercepts[l]). scikit-learn's adam stores the step size η_t of its last
minibatch as `learning_rate`, fastbp stores η_0 and derives η_t from t.
Transferring that state is what makes a partial_fit after the conversion take
the step the original estimator would have taken.
"""

import copy

import numpy as np
# From the defining module, not sklearn.neural_network, whose names fastbp.patch_sklearn replaces.
from sklearn.base import ClassifierMixin
from sklearn.neural_network._multilayer_perceptron import MLPClassifier as SkMLPClassifier
from sklearn.neural_network._multilayer_perceptron import MLPRegressor as SkMLPRegressor
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.utils.validation import check_is_fitted

from ._optimizers import ADAM, Optimizer, step_rate

# The fitted state both estimators share, by name; each is copied when present.
_FITTED = (
    "coefs_", "intercepts_", "n_features_in_", "feature_names_in_", "n_iter_", "n_layers_", "n_outputs_",
    "out_activation_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
    "best_validation_score_", "classes_", "_label_binarizer", "_best_coefs", "_best_intercepts",
    "_no_improvement_count",
)


def sklearn_class(fastbp_class):
    """scikit-learn's estimator class matching a fastbp class."""
    return SkMLPClassifier if issubclass(fastbp_class, ClassifierMixin) else SkMLPRegressor


def _copy_fitted(source, target):
    for name in _FITTED:
        if name in vars(source):
            setattr(target, name, copy.deepcopy(getattr(source, name)))
    # Own, C-ordered arrays rather than views into fastbp's flat buffer.
    target.coefs_ = [np.array(c) for c in source.coefs_]
    target.intercepts_ = [np.array(b) for b in source.intercepts_]


def _split(flat, arrays):
    """flat cut into arrays of the shapes of `arrays` (coefs then intercepts), copies."""
    parts, start = [], 0
    for a in arrays:
        parts.append(np.array(flat[start : start + a.size].reshape(a.shape)))
        start += a.size
    return parts


def _flat(arrays, dtype):
    return np.concatenate([np.asarray(a, dtype=dtype).ravel() for a in arrays])


def to_sklearn(est):
    """A fitted scikit-learn estimator with est's parameters, weights and fitted state."""
    sk_class = sklearn_class(type(est))
    names = sk_class._get_param_names()
    params = {name: value for name, value in est.get_params(deep=False).items() if name in names}
    sk_est = sk_class(**copy.deepcopy(params))
    _copy_fitted(est, sk_est)
    optimizer = getattr(est, "_optimizer", None)
    weights = sk_est.coefs_ + sk_est.intercepts_
    # A state left by weights of other shapes is dropped (see MLPClassifier.to_sklearn).
    if optimizer is not None and optimizer.first.size == sum(w.size for w in weights):
        sk_est._optimizer = _optimizer_to_sklearn(optimizer, weights)
    return sk_est


def _optimizer_to_sklearn(optimizer, params):
    if optimizer.code == ADAM:
        sk_opt = AdamOptimizer(params, optimizer.learning_rate_init, optimizer.beta_1, optimizer.beta_2,
                               optimizer.epsilon)
        sk_opt.t = optimizer.t
        sk_opt.ms = _split(optimizer.first, params)
        sk_opt.vs = _split(optimizer.second, params)
        if optimizer.t > 0:
            sk_opt.learning_rate = step_rate(ADAM, optimizer.learning_rate, optimizer.beta_1, optimizer.beta_2,
                                             optimizer.t)
        return sk_opt
    sk_opt = SGDOptimizer(params, optimizer.learning_rate_init, optimizer.schedule, optimizer.momentum,
                          optimizer.nesterov, optimizer.power_t)
    sk_opt.learning_rate = optimizer.learning_rate
    sk_opt.velocities = _split(optimizer.first, params)
    return sk_opt


def from_sklearn(cls, sk_est):
    """A fitted fastbp estimator of class cls with sk_est's parameters, weights and fitted state."""
    sk_class = sklearn_class(cls)
    if not isinstance(sk_est, sk_class):
        raise TypeError(
            f"{cls.__name__}.from_sklearn takes a fitted sklearn.neural_network.{sk_class.__name__}, "
            f"got {type(sk_est).__module__}.{type(sk_est).__name__}."
        )
    check_is_fitted(sk_est, msg=(
        "This %(name)s instance is not fitted yet: " + f"{cls.__name__}.from_sklearn needs a fitted "
        "estimator. Call 'fit' on it first."
    ))
    params = {name: value for name, value in sk_est.get_params(deep=False).items()
              if name in cls._get_param_names()}
    est = cls(**copy.deepcopy(params))
    _copy_fitted(sk_est, est)
    if "validation_scores_" in vars(sk_est):
        scores = sk_est.validation_scores_
        # scikit-learn records no validation loss: NaN for its epochs keeps the lengths equal.
        est.validation_loss_curve_ = None if scores is None else [np.nan] * len(scores)
    sk_opt = getattr(sk_est, "_optimizer", None)
    if sk_opt is not None:
        est._optimizer = _optimizer_from_sklearn(sk_opt, est)
    return est


def _optimizer_from_sklearn(sk_opt, est):
    arrays = est.coefs_ + est.intercepts_
    dtype = arrays[0].dtype
    n_params = sum(a.size for a in arrays)
    adam = isinstance(sk_opt, AdamOptimizer)
    optimizer = Optimizer(
        "adam" if adam else "sgd", n_params, dtype, learning_rate_init=sk_opt.learning_rate_init,
        learning_rate=getattr(sk_opt, "lr_schedule", est.learning_rate),
        momentum=getattr(sk_opt, "momentum", est.momentum),
        nesterovs_momentum=getattr(sk_opt, "nesterov", est.nesterovs_momentum),
        power_t=getattr(sk_opt, "power_t", est.power_t),
        beta_1=getattr(sk_opt, "beta_1", est.beta_1), beta_2=getattr(sk_opt, "beta_2", est.beta_2),
        epsilon=getattr(sk_opt, "epsilon", est.epsilon),
    )
    if adam:
        optimizer.t = int(sk_opt.t)
        optimizer.first = _flat(sk_opt.ms, dtype)
        optimizer.second = _flat(sk_opt.vs, dtype)
    else:
        optimizer.learning_rate = float(sk_opt.learning_rate)
        optimizer.first = _flat(sk_opt.velocities, dtype)
    return optimizer
