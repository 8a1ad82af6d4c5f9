"""Run the benchmark suite: ``python -m bench [--quick] [--out DIR]``.

Every library runs in its own process per thread count (threads set in its
environment before import), all its workloads together: OpenBLAS's spinning
workers were measured to double Numba's times when the two alternate.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from . import diagnostics, jacobian, machine, predict, report, startup
from . import workloads as wl
from .peers import available

LIBS = ("numpy", "loop", "vectorized", "sklearn", "torch", "jax")
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads):
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    cwd = os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH")]))
    return env


def run_worker(spec, threads):
    out = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(spec)], env=thread_env(threads),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {spec['lib']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one tiny workload, all threads only (~1 min)")
    parser.add_argument("--out", default="bench/results", help="folder for results.json, results.md, PNGs")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of " + ",".join(LIBS))
    args = parser.parse_args(argv)
    libs = [name for name in args.libs.split(",") if name]
    unknown = sorted(set(libs) - set(LIBS))
    if unknown:
        parser.error(f"--libs: unknown {', '.join(unknown)}; choose from {','.join(LIBS)}")

    all_threads = os.cpu_count()
    thread_counts = [all_threads] if args.quick else sorted({1, all_threads})
    suite = wl.quick_suite() if args.quick else wl.full_suite()
    repeats = args.repeats or (2 if args.quick else 5)
    dtypes = ["float64", "float32"]
    started = time.time()
    result = {"machine": machine.cpu(), "versions": machine.versions(), "quick": args.quick,
              "load_average_start": machine.load_average(), "records": [], "skipped_libs": {}}

    for threads in thread_counts:
        for lib in libs:
            if not available(lib):
                result["skipped_libs"][lib] = "not installed (pip install -e '.[peers]')"
                continue
            names = [w.name for w in suite if lib in ("numpy", "loop", "vectorized", "sklearn") or w.group != "sparse"]
            spec = {"lib": lib, "threads": threads, "dtypes": dtypes, "workloads": names,
                    "quick": args.quick, "repeats": repeats}
            print(f"[bench] {lib} at {threads} thread(s) ...", flush=True)
            for record in run_worker(spec, threads):
                record["load_average"] = machine.load_average()
                result["records"].append(record)

    result["jacobian"] = jacobian.crossover(repeats=repeats) if not args.quick else []
    result["gradient_norms"] = diagnostics.gradient_norm_cost(repeats=repeats) if not args.quick else []
    result["callback_cost"] = diagnostics.callback_cost(repeats=repeats)
    result["predict"] = predict.run(quick=args.quick, repeats=repeats)
    env = thread_env(all_threads)
    result["startup"] = [startup.compile_times(d, env) for d in dtypes]
    if not args.quick:
        result["peak_memory"] = [
            {"lib": lib, "workload": w.name, "dtype": "float64",
             **startup.peak_memory(lib, w.name, "float64", thread_env(1))}
            for w in wl.REFERENCE for lib in ("loop", "sklearn")
        ]
    result["load_average_end"] = machine.load_average()
    result["wall_s"] = time.time() - started

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    table = report.markdown(result)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table)
    print(table)
    for path in report.plots(result, args.out):
        print(f"[bench] wrote {path}")


if __name__ == "__main__":
    main()
