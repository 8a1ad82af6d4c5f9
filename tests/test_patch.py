"""fastbp.patch_sklearn: scikit-learn's MLP names resolve to fastbp's
estimators, for code that imports them after the patch, a library's included."""

import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.neural_network
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import _multilayer_perceptron

import fastbp

ROOT = Path(__file__).resolve().parents[1]
SK_CLASSIFIER = _multilayer_perceptron.MLPClassifier
SK_REGRESSOR = _multilayer_perceptron.MLPRegressor


@pytest.fixture(autouse=True)
def unpatched_after():
    yield
    fastbp.unpatch_sklearn()


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def run_python(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_patch_replaces_the_public_names_and_unpatch_restores_them():
    fastbp.patch_sklearn()
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    assert MLPClassifier is fastbp.MLPClassifier and MLPRegressor is fastbp.MLPRegressor
    # The defining module keeps scikit-learn's classes (what its pickles name).
    assert _multilayer_perceptron.MLPClassifier is SK_CLASSIFIER
    fastbp.unpatch_sklearn()
    assert sklearn.neural_network.MLPClassifier is SK_CLASSIFIER
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR


def test_context_manager_patches_the_block_and_restores_the_state_before():
    with fastbp.patch_sklearn():
        assert sklearn.neural_network.MLPRegressor is fastbp.MLPRegressor
    assert sklearn.neural_network.MLPRegressor is SK_REGRESSOR
    # Already patched at the call: the block's end leaves it patched.
    fastbp.patch_sklearn()
    with fastbp.patch_sklearn():
        pass
    assert sklearn.neural_network.MLPRegressor is fastbp.MLPRegressor


def test_estimators_made_before_the_patch_stay_scikit_learns(data):
    X, y = data
    before = SK_CLASSIFIER(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    fastbp.patch_sklearn()
    assert type(clone(before)) is SK_CLASSIFIER
    after = sklearn.neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    assert isinstance(after, sklearn.neural_network.MLPClassifier)
    assert not isinstance(after, SK_CLASSIFIER) and not isinstance(before, sklearn.neural_network.MLPClassifier)


def test_clone_and_get_params_keep_fastbp_parameters_at_their_defaults():
    fastbp.patch_sklearn()
    est = sklearn.neural_network.MLPRegressor(hidden_layer_sizes=(7,), alpha=0.01)
    copy = clone(est)
    assert type(copy) is fastbp.MLPRegressor
    params = copy.get_params()
    assert params["hidden_layer_sizes"] == (7,) and params["alpha"] == 0.01
    defaults = fastbp.MLPRegressor().get_params()
    for name in ("backend", "n_threads", "dropout", "record_gradient_norms"):
        assert params[name] == defaults[name]


def test_to_sklearn_and_from_sklearn_use_scikit_learns_classes_while_patched(data):
    X, y = data
    fastbp.patch_sklearn()
    clf = fit_quietly(sklearn.neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    sk = clf.to_sklearn()
    assert type(sk) is SK_CLASSIFIER
    np.testing.assert_allclose(sk.predict_proba(X), clf.predict_proba(X), rtol=1e-12)
    back = fastbp.MLPClassifier.from_sklearn(sk)
    assert type(back) is fastbp.MLPClassifier
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


def test_pickles_made_while_patched_load_unpatched_into_fastbp(data, tmp_path):
    X, y = data
    fastbp.patch_sklearn()
    clf = fit_quietly(sklearn.neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", clf.predict_proba(X))
    # A fresh process that never patches.
    code = textwrap.dedent("""
        import pickle, sys
        import numpy as np
        model = pickle.loads(open("model.pkl", "rb").read())
        print(type(model).__module__, type(model).__name__, "fastbp.patch" in sys.modules)
        print(np.array_equal(model.predict_proba(np.load("X.npy")), np.load("expected.npy")))
    """)
    result = run_python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["fastbp._mlp", "MLPClassifier", "False", "True"]


def test_scikit_learn_pickles_load_as_scikit_learns_while_patched(data):
    X, y = data
    sk = fit_quietly(SK_CLASSIFIER(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    payload = pickle.dumps(sk)
    fastbp.patch_sklearn()
    loaded = pickle.loads(payload)
    assert type(loaded) is SK_CLASSIFIER
    np.testing.assert_array_equal(loaded.predict_proba(X), sk.predict_proba(X))


THIRD_PARTY = '''
"""A library written for scikit-learn: it imports the class at its own import."""
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier


def tune(X, y):
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(8,), (16,)]}
    return GridSearchCV(MLPClassifier(max_iter=60, learning_rate_init=0.01, random_state=0), grid, cv=3).fit(X, y)
'''


def test_grid_search_built_inside_a_third_party_function(data, tmp_path, monkeypatch):
    X, y = data
    (tmp_path / "thirdparty_tuning.py").write_text(THIRD_PARTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "thirdparty_tuning", raising=False)
    with fastbp.patch_sklearn():
        import thirdparty_tuning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = thirdparty_tuning.tune(X, y)
        direct = thirdparty_tuning.GridSearchCV(
            fastbp.MLPClassifier(max_iter=60, learning_rate_init=0.01, random_state=0),
            {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(8,), (16,)]}, cv=3,
        ).fit(X, y)
    assert type(search.best_estimator_) is fastbp.MLPClassifier
    assert search.best_estimator_.n_threads_ >= 1  # an attribute only fastbp's fit sets
    # Every fold trained fastbp's model: the same scores as the search written with fastbp.
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], direct.cv_results_["mean_test_score"])
    assert search.best_score_ > 0.8


def test_python_m_fastbp_patch_runs_a_scikit_learn_script_unmodified():
    script = ROOT / "examples" / "unmodified_sklearn.py"
    assert "fastbp" not in script.read_text().split('"""')[2]  # the code below the docstring
    patched = run_python("-m", "fastbp.patch", str(script), cwd=ROOT)
    plain = run_python(str(script), cwd=ROOT)
    assert patched.returncode == 0 and plain.returncode == 0, patched.stderr[-3000:] + plain.stderr[-3000:]
    assert "MLPClassifier: fastbp._mlp.MLPClassifier" in patched.stdout
    assert "MLPClassifier: sklearn.neural_network._multilayer_perceptron.MLPClassifier" in plain.stdout
    accuracy = [float(out.stdout.split("5-fold accuracy ")[1].split()[0]) for out in (patched, plain)]
    assert accuracy[0] > 0.9 and abs(accuracy[0] - accuracy[1]) < 0.01


def test_python_m_fastbp_patch_passes_argv_and_runs_as_main(tmp_path):
    (tmp_path / "helper_module.py").write_text("VALUE = 42\n")
    (tmp_path / "script.py").write_text(textwrap.dedent("""
        import sys
        from sklearn.neural_network import MLPRegressor
        import helper_module  # found beside the script, as python script.py finds it
        if __name__ == "__main__":
            print(MLPRegressor.__module__, sys.argv[1:], helper_module.VALUE, sys.argv[0].endswith("script.py"))
    """))
    result = run_python("-m", "fastbp.patch", str(tmp_path / "script.py"), "--flag", "x", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "fastbp._mlp ['--flag', 'x'] 42 True"
    usage = run_python("-m", "fastbp.patch", cwd=ROOT)
    assert usage.returncode != 0 and "usage: python -m fastbp.patch script.py" in usage.stderr

