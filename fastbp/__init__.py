"""fastbp: textbook backpropagation as Numba loop kernels, with drop-in
scikit-learn MLP estimators.

The public names load on first use (PEP 562): ``import fastbp`` itself loads
neither scikit-learn, Numba nor matplotlib, and a fit loads what a fit needs,
not the plotting, Jacobian or interchange code.
"""

import importlib

from . import _onnx

# Public name: the submodule defining it.
_LAZY = {
    "LossCurveDisplay": "._display",
    "MLPClassifier": "._mlp",
    "MLPRegressor": "._mlp",
    "check_gradients": "._functional",
    "forward": "._functional",
    "jacobian": "._jacobian",
    "loss_and_gradients": "._functional",
    "patch_sklearn": ".patch",
    "unpatch_sklearn": ".patch",
    "warmup": "._warmup",
}

__all__ = sorted(_LAZY)
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    # Cached as a module attribute: later lookups do not come back here.
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


_onnx.register_with_skl2onnx()
