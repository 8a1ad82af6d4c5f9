"""Every script in examples/ runs to the end, prints what it promises and writes its plots.

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
    for line in lines:
        assert line in result.stdout, f"{line!r} missing from the output of {name}:\n{result.stdout}"
    for png in pngs:
        path = tmp_path / png
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {png}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
