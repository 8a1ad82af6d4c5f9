"""Where a cold first fit's compile time goes: LLVM's optimization of each
library's final module and of its functions, machine-code emission, and the
rest (Numba's typing and lowering), in a fresh process with an empty cache.

It times Numba's own methods by wrapping them, so it reads Numba internals
(numba.core.codegen's CPUCodeLibrary and JitEngine); with a Numba that lacks
one, that stage is counted in "the rest".

Run: ``python -m bench.compile_profile [--dtype float32]``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

_PROFILE = """
import collections, json, time, warnings
warnings.simplefilter("ignore")
from numba.core import codegen

spent = collections.defaultdict(float)
counts = collections.Counter()
largest = []


def timed(owner, name, stage):
    original = getattr(owner, name, None)
    if original is None:
        return

    def wrapper(self, *args):
        start = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            seconds = time.perf_counter() - start
            spent[stage] += seconds
            counts[stage] += 1
            largest.append((seconds, stage, getattr(self, "name", "")))

    setattr(owner, name, wrapper)


timed(codegen.JitEngine, "finalize_object", "emit machine code")
timed(codegen.CPUCodeLibrary, "_optimize_final_module", "optimize final modules")
timed(codegen.CPUCodeLibrary, "_optimize_functions", "optimize functions")

import numpy as np
from sklearn.datasets import load_digits

from fastbp import MLPClassifier

X, y = load_digits(return_X_y=True)
X = (X / 16).astype({dtype!r})
start = time.perf_counter()
MLPClassifier((32,), max_iter=1, random_state=0).fit(X, y).predict(X)
total = time.perf_counter() - start
stages = {{stage: {{"seconds": spent[stage], "calls": counts[stage]}} for stage in spent}}
stages["typing, lowering and the rest"] = {{"seconds": total - sum(spent.values()), "calls": None}}
print(json.dumps({{"dtype": {dtype!r}, "total_s": total, "stages": stages,
                  "largest": [[round(s, 3), stage, str(name)] for s, stage, name in sorted(largest)[::-1][:10]]}}))
"""


def profile(dtype="float64"):
    """The breakdown, from a fresh process with an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, "-c", _PROFILE.format(dtype=dtype)], env=env, capture_output=True,
                              text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.compile_profile", description=__doc__)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    result = profile(parser.parse_args(argv).dtype)
    print(f"cold first fit + predict, {result['dtype']}: {result['total_s']:.1f} s")
    for stage, figures in result["stages"].items():
        calls = "" if figures["calls"] is None else f" ({figures['calls']} calls)"
        print(f"  {stage}: {figures['seconds']:.1f} s{calls}")
    print("largest single calls (s, stage, library):")
    for seconds, stage, name in result["largest"]:
        print(f"  {seconds:.2f}  {stage}  {name[:60]}")


if __name__ == "__main__":
    main()
