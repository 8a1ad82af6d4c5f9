"""Cold compile, warm start and peak memory, each in a fresh process."""

import json
import os
import subprocess
import sys
import tempfile

_FIRST_FIT = """
import json, resource, time
t0 = time.perf_counter()
import numpy as np
import fastbp
t1 = time.perf_counter()
# fastbp's names load on first use: this loads scikit-learn, Numba and the estimators.
MLPClassifier = fastbp.MLPClassifier
t1_estimators = time.perf_counter()
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = (X / 16).astype({dtype!r})
t2 = time.perf_counter()
MLPClassifier((32,), max_iter=1, random_state=0).fit(X, y).predict(X)
t3 = time.perf_counter()
model = MLPClassifier((32,), max_iter=1, random_state=0).fit(X, y)
model.predict(X)
t4 = time.perf_counter()
if {model_path!r}:
    import pickle
    with open({model_path!r}, "wb") as file:
        pickle.dump(model, file)
print(json.dumps({{"import_s": t1 - t0, "estimators_import_s": t1_estimators - t1, "first_fit_s": t3 - t2,
                  "second_fit_s": t4 - t3}}))
"""

# A model fitted elsewhere (a pickle), loaded and predicted: a served model in
# a fresh install.
_FIRST_PREDICT = """
import json, pickle, time
import numpy as np
from sklearn.datasets import load_digits
X, _ = load_digits(return_X_y=True)
X = (X / 16).astype({dtype!r})
with open({model_path!r}, "rb") as file:
    model = pickle.load(file)
t0 = time.perf_counter()
model.predict(X)
t1 = time.perf_counter()
model.predict(X)
print(json.dumps({{"first_predict_s": t1 - t0, "second_predict_s": time.perf_counter() - t1}}))
"""

_PEAK_MEMORY = """
import json, tracemalloc, warnings
import numpy as np
from bench.peers import make_runner
from bench.workloads import full_suite
workload = {{w.name: w for w in full_suite()}}[{name!r}]
warnings.simplefilter("ignore")
runner = make_runner({lib!r}, workload, np.dtype({dtype!r}), 1)
tracemalloc.start()
runner.epoch()
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({{"peak_alloc_mib": peak / 2**20, "epochs": runner.epochs_per_call}}))
"""


def _python(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cache_entries(cache):
    """(functions, signatures) cached in the Numba cache directory `cache`: what
    a cold process and its compile helpers compiled (one index file per
    function, one data file per signature)."""
    files = [name for _, _, names in os.walk(cache) for name in names]
    return sum(name.endswith(".nbi") for name in files), sum(name.endswith(".nbc") for name in files)


def _cold_fit(dtype, env, helpers=True, busy=False):
    """The first fit and predict in a fresh process with an empty cache, with
    its compile helpers or alone, with a Python busy loop on one core or not."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(env, NUMBA_CACHE_DIR=cache, **({} if helpers else {"FASTBP_COMPILE_HELPERS": "0"}))
        loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            return _python(_FIRST_FIT.format(dtype=dtype, model_path=""), env)["first_fit_s"]
        finally:
            if loop is not None:
                loop.kill()
                loop.wait()


def compile_times(dtype, env):
    """First fit and predict in a fresh process with an empty Numba cache (cold),
    then in another fresh process reusing that cache (warm); import timed apart.
    The cold fit again with no compile helpers (FASTBP_COMPILE_HELPERS=0): the
    time on a single core, or wherever helper processes cannot start; and both
    again with another process keeping one core busy. Last, the warm
    process's model loaded and predicted in a fresh process with an empty
    cache: the cold first predict of a model fitted elsewhere."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as predict_cache:
        cold = _python(_FIRST_FIT.format(dtype=dtype, model_path=""), dict(env, NUMBA_CACHE_DIR=cache))
        cold["compiled_functions"], cold["compiled_signatures"] = _cache_entries(cache)
        model_path = os.path.join(predict_cache, "model.pkl")
        warm = _python(_FIRST_FIT.format(dtype=dtype, model_path=model_path), dict(env, NUMBA_CACHE_DIR=cache))
        cold_predict = _python(_FIRST_PREDICT.format(dtype=dtype, model_path=model_path),
                               dict(env, NUMBA_CACHE_DIR=predict_cache))
        cold_predict["compiled_functions"], _ = _cache_entries(predict_cache)
    return {"dtype": dtype, "cold": cold, "warm": warm, "cold_predict": cold_predict,
            "cold_one_process": {"first_fit_s": _cold_fit(dtype, env, helpers=False)},
            "cold_busy_s": _cold_fit(dtype, env, busy=True),
            "cold_one_process_busy_s": _cold_fit(dtype, env, helpers=False, busy=True),
            "warm_overhead_s": warm["first_fit_s"] - warm["second_fit_s"]}


def peak_memory(lib, workload_name, dtype, env):
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])))
    return _python(_PEAK_MEMORY.format(lib=lib, name=workload_name, dtype=dtype), env)
