"""fastbp: textbook backpropagation as Numba loop kernels, with drop-in
scikit-learn MLP estimators."""

from ._display import LossCurveDisplay
from ._functional import check_gradients, forward, loss_and_gradients
from ._jacobian import jacobian
from ._mlp import MLPClassifier, MLPRegressor
from ._warmup import warmup

__all__ = ["LossCurveDisplay", "MLPClassifier", "MLPRegressor", "check_gradients", "forward", "jacobian",
           "loss_and_gradients", "warmup"]
__version__ = "0.1.0"
