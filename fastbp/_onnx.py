"""ONNX export through skl2onnx, with no call from the user.

skl2onnx finds a model's converter by its exact class, so ``to_onnx`` on a
fastbp estimator (or a Pipeline holding one) fails unless fastbp's classes
are registered. fastbp's fitted attributes are scikit-learn's, named and
shaped alike, so they are registered with the converters, shape calculators
and options skl2onnx has for scikit-learn's own MLPs: the exported graph is
the one scikit-learn's model with the same weights would give.

skl2onnx (with onnx) takes seconds to import, so ``import fastbp`` never
imports it: the registration runs at ``import fastbp`` when skl2onnx is
already loaded, or else right after skl2onnx's own import completes, through
a finder at the head of ``sys.meta_path`` that waits for that one module name.
"""

import sys
import warnings


def register_with_skl2onnx():
    """Register fastbp's estimators with skl2onnx now if it is loaded, else as
    soon as it is."""
    if "skl2onnx" in sys.modules:
        _register()
    elif not any(isinstance(finder, _Skl2onnxImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Skl2onnxImportHook())


class _Skl2onnxImportHook:
    """A meta path finder that finds nothing itself: asked for skl2onnx, it
    takes the spec the other finders give and makes its loader register
    fastbp's converters once the package has run. It leaves sys.meta_path at
    that point, so no later import consults it."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "skl2onnx":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = None if find_spec is None else find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = _then_register(spec.loader.exec_module)
        return spec


def _then_register(exec_module):
    def exec_module_then_register(module):
        exec_module(module)
        try:
            _register()
        except Exception as exc:  # noqa: BLE001 - skl2onnx itself must still import
            warnings.warn(
                f"fastbp could not register its estimators with skl2onnx {getattr(module, '__version__', '')}: "
                f"{exc!r}. to_onnx on them will fail; to_onnx(estimator.to_sklearn(), ...) exports the same model.",
                stacklevel=2,
            )

    return exec_module_then_register


def _register():
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.neural_network import _multilayer_perceptron as sklearn_mlp

    from ._mlp import MLPClassifier, MLPRegressor

    for cls in (MLPClassifier, MLPRegressor):
        # skl2onnx's name for scikit-learn's class, not its class-keyed map: skl2onnx
        # imported under patch_sklearn keyed that map on fastbp's class.
        alias = f"Sklearn{cls.__name__}"
        converter = get_converter(alias)
        shape_calculator = get_shape_calculator(alias)
        # Passing skl2onnx's options for scikit-learn's classifier (zipmap among them)
        # also gives fastbp's classifier skl2onnx's classifier parser: labels and probabilities.
        options = converter.get_allowed_options()
        update_registered_converter(cls, f"Fastbp{cls.__name__}", shape_calculator,
                                    _refusing_exp_output(converter), options=options)
        # skl2onnx imported under the patch left scikit-learn's own class (to_sklearn's
        # models among them) without a converter: it gets skl2onnx's again.
        sklearn_class = getattr(sklearn_mlp, cls.__name__)
        if sklearn_class not in sklearn_operator_name_map:
            update_registered_converter(sklearn_class, alias, shape_calculator, _refusing_exp_output(converter),
                                        options=options)


def _refusing_exp_output(converter):
    from sklearn.utils.validation import check_is_fitted

    def convert(scope, operator, container):
        check_is_fitted(operator.raw_operator)
        # skl2onnx's MLP converter maps output activations by name and has no
        # 'exp': a KeyError from deep inside it would not say why.
        if operator.raw_operator.out_activation_ == "exp":
            raise NotImplementedError(
                "skl2onnx's MLP converter has no exponential output layer, which loss='poisson' uses "
                "(for scikit-learn's MLPRegressor either): export a model trained with loss='squared_error'."
            )
        converter(scope, operator, container)

    return convert
