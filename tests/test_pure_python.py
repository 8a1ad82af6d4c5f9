"""The kernels as plain Python (NUMBA_DISABLE_JIT=1), as stumpy tests its
own: the same source runs uncompiled, where coverage tools see each line and
Python's indexing catches a read past an array's end, and gives the compiled
results to rounding (FMA contraction is the one difference)."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import scipy.sparse as sp

import fastbp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_FITS = """
import json, warnings
import numpy as np
import scipy.sparse as sp
import fastbp
warnings.simplefilter("ignore")
# uint64 hashing wraps around by design: NumPy's overflow warnings, uncompiled, would fail the fit here.
warnings.simplefilter("error", RuntimeWarning)
rng = np.random.default_rng(0)
X = rng.normal(size=(30, 4))
y = np.arange(30) % 3
out = {}
for solver in ("adam", "sgd", "lbfgs"):
    model = fastbp.MLPClassifier((5, 3), solver=solver, max_iter=3, random_state=0, batch_size=8).fit(X, y)
    out[solver] = model.predict_proba(X).tolist()
model = fastbp.MLPClassifier((5,), max_iter=2, random_state=0, dropout=0.2).fit(sp.csr_matrix(X), y)
out["sparse dropout"] = model.predict_proba(sp.csr_matrix(X)).tolist()
print(json.dumps(out))
"""


def _run(disable_jit):
    env = dict(os.environ, NUMBA_DISABLE_JIT="1" if disable_jit else "0",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", _FITS], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_uncompiled_kernels_give_the_compiled_models():
    plain, compiled = _run(True), _run(False)
    assert plain.keys() == compiled.keys()
    for case in plain:
        np.testing.assert_allclose(plain[case], compiled[case], rtol=0, atol=1e-12, err_msg=case)


def test_the_in_process_models_are_the_subprocess_ones():
    # The subprocess reads this checkout's fastbp, as the test process does.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fastbp.MLPClassifier((5,), max_iter=2, random_state=0, dropout=0.2).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(model.predict_proba(sp.csr_matrix(X)), _run(False)["sparse dropout"])
