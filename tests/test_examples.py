"""Every script in examples/ runs to the end, prints what it promises and writes its plots,
without a warning; without the extra it needs, it says which and stops.

Each runs as a user runs it: ``python examples/NAME.py`` from the repository root,
in its own process, with --out pointed at a temporary folder where it takes one.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# name: (takes --out, PNGs written there, lines stdout must contain)
EXAMPLES = {
    "quickstart": (False, [], ["5-fold cross-validation", "fastbp        accuracy", "speed-up"]),
    "worked_exercise": (False, [], [
        "1. Forward pass", "2. Backward pass", "3. Gradients", "4. Gradient-descent update",
        "loss 0.0426044 -> 0.0390417 (decreased)",
    ]),
    "least_squares": (False, [], ["equal to lstsq", "diverged"]),
    "loop_vs_vectorized": (True, ["loop_vs_vectorized.png"], ["loop ms/epoch", "vectorized ms/epoch"]),
    "dask_cross_validation": (False, [], ["speed-up over one process", "same scores and best parameters: True"]),
    "vanishing_gradients": (True, ["vanishing_gradients.png"], [
        "logistic, default init", "relu, default init", "vanishing", "healthy", "exploding",
    ]),
    "unmodified_sklearn": (False, [], [
        "MLPClassifier: sklearn.neural_network._multilayer_perceptron.MLPClassifier", "5-fold accuracy 0.9",
    ]),
}
# name: (the module it needs beyond fastbp, the extra that installs it)
NEEDS = {
    "dask_cross_validation": ("distributed", "fastbp[distributed]"),
    "loop_vs_vectorized": ("matplotlib", "fastbp[examples]"),
    "vanishing_gradients": ("matplotlib", "fastbp[examples]"),
}


def test_every_example_is_smoke_tested():
    assert {p.stem for p in (ROOT / "examples").glob("*.py")} == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_prints_its_results(name, tmp_path):
    takes_out, pngs, lines = EXAMPLES[name]
    if takes_out:
        pytest.importorskip("matplotlib")
    if name == "dask_cross_validation":
        pytest.importorskip("distributed")
    command = [sys.executable, str(ROOT / "examples" / f"{name}.py")]
    if takes_out:
        command += ["--out", str(tmp_path)]
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr[-3000:]
    for line in lines:
        assert line in result.stdout, f"{line!r} missing from the output of {name}:\n{result.stdout}"
    for png in pngs:
        path = tmp_path / png
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {png}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_without_its_extra_names_the_extra(name, tmp_path):
    module, extra = NEEDS[name]
    # First on the path, a module of that name that fails to import as an absent one does.
    message = f"No module named {module!r}"
    (tmp_path / f"{module}.py").write_text(f"raise ModuleNotFoundError({message!r}, name={module!r})\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert f"pip install '{extra}'" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert f"pip install '{extra}'" in (ROOT / "examples" / f"{name}.py").read_text().split('"""')[1]
