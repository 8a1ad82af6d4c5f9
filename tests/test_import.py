"""What ``import fastbp`` loads: nothing heavy until a name is used, and a fit's
path without the plotting, Jacobian, interchange or warm-up code."""

import subprocess
import sys


def loaded_after(statement, modules):
    code = f"import sys; {statement}; print(sorted(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_import_fastbp_loads_neither_scikit_learn_nor_numba_nor_matplotlib():
    modules = ("sklearn", "numba", "matplotlib", "sklearn.callback", "fastbp._mlp", "fastbp._display")
    assert loaded_after("import fastbp", modules) == "[]"


def test_the_estimators_load_without_plotting_jacobian_interchange_or_warmup_code():
    modules = ("matplotlib", "fastbp._display", "fastbp._jacobian", "fastbp._interchange", "fastbp._warmup")
    assert loaded_after("from fastbp import MLPClassifier, MLPRegressor", modules) == "[]"
    # Each public name still loads on use.
    assert loaded_after("import fastbp; fastbp.jacobian", modules) == "['fastbp._jacobian']"
