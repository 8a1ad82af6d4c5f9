"""ONNX export: skl2onnx's to_onnx on fastbp's estimators and on pipelines
holding them, with no call from the user, checked under onnxruntime."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier, MLPRegressor

skl2onnx = pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400].astype(np.float32), y[:400]


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def run_onnx(model, X, **options):
    onx = skl2onnx.to_onnx(model, X[:1], options=options or None)
    session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("labels", ["multiclass", "binary strings"])
def test_classifier_pipeline_exports_labels_and_probabilities(digits, labels):
    X, y = digits
    if labels == "binary strings":
        y = np.where(y < 5, "low", "high")
    pipeline = fit_quietly(make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=50, random_state=0)), X, y)
    label, proba = run_onnx(pipeline, X, zipmap=False)
    np.testing.assert_array_equal(label, pipeline.predict(X))
    np.testing.assert_allclose(proba, pipeline.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_regressor_exports_its_predictions(digits, solver):
    X, y = digits
    target = X[:, :8].sum(axis=1) / 16
    reg = fit_quietly(MLPRegressor(hidden_layer_sizes=(16,), solver=solver, max_iter=50, random_state=0), X, target)
    (prediction,) = run_onnx(reg, X)
    np.testing.assert_allclose(prediction.ravel(), reg.predict(X), rtol=1e-5, atol=1e-5)


def test_poisson_regressor_is_refused_with_the_reason(digits):
    X, y = digits
    reg = fit_quietly(MLPRegressor(hidden_layer_sizes=(8,), loss="poisson", max_iter=5, random_state=0), X, y.astype(float))
    with pytest.raises(NotImplementedError, match="loss='poisson'"):
        skl2onnx.to_onnx(reg, X[:1])


def test_an_unfitted_regressor_is_refused_as_not_fitted(digits):
    """It failed on a missing out_activation_ in fastbp's converter (scikit-learn's too)."""
    X, _ = digits
    with pytest.raises(NotFittedError, match="This MLPRegressor instance is not fitted yet"):
        skl2onnx.to_onnx(MLPRegressor(), X[:1])


def test_export_works_with_skl2onnx_imported_before_fastbp(tmp_path):
    code = textwrap.dedent("""
        import skl2onnx, onnxruntime
        import numpy as np
        from sklearn.datasets import load_iris
        from fastbp import MLPClassifier
        X, y = load_iris(return_X_y=True)
        X = X.astype(np.float32)
        clf = MLPClassifier((8,), solver="lbfgs", max_iter=30, random_state=0).fit(X, y)
        onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
        session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
        print(np.array_equal(session.run(None, {"X": X})[0], clf.predict(X)))
    """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "True"


def test_scikit_learns_own_models_export_after_skl2onnx_was_imported_under_the_patch(tmp_path):
    """skl2onnx imported while patched keys its MLP converters on fastbp's
    classes: scikit-learn's own, and to_sklearn's models, had none left."""
    code = textwrap.dedent("""
        import json
        import fastbp
        fastbp.patch_sklearn()
        import skl2onnx, onnxruntime
        import numpy as np
        from sklearn.datasets import load_iris
        from sklearn.neural_network import _multilayer_perceptron as sklearn_mlp
        fastbp.unpatch_sklearn()
        X, y = load_iris(return_X_y=True)
        X = X.astype(np.float32)
        clf = sklearn_mlp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0).fit(X, y)
        reg = fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0).fit(X, y / 2).to_sklearn()
        worst = []
        for model, want in ((clf, clf.predict_proba(X)), (reg, reg.predict(X)[:, None])):
            options = {"zipmap": False} if model is clf else None
            session = onnxruntime.InferenceSession(skl2onnx.to_onnx(model, X[:1], options=options).SerializeToString(),
                                                   providers=["CPUExecutionProvider"])
            worst.append(float(np.abs(session.run(None, {"X": X})[-1] - want).max()))
        print(json.dumps(worst))
    """)
    result = subprocess.run([sys.executable, "-W", "error:fastbp could not register:UserWarning", "-c", code], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert max(json.loads(result.stdout)) < 1e-5
