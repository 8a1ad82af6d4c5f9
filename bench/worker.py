"""One benchmark process: all of one library's runs at one thread count.

Run by ``bench.__main__`` as ``python -m bench.worker '<json spec>'`` with the
thread counts already set in its environment, so no other library's thread
pool spins beside the one measured. Prints one JSON list of records.
"""

import json
import resource
import sys
import time

import numpy as np

from . import workloads as wl
from .machine import parallel_region_us
from .peers import make_runner


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ceiling(dtype, repeats):
    """numpy's GFLOP/s on a 1024³ product: the machine's matmul rate."""
    a = np.random.default_rng(0).random((1024, 1024)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    return 2 * 1024**3 / best_time(lambda: np.matmul(a, a, out=out), repeats) / 1e9


def matmul_epoch(workload, dtype, repeats):
    """Seconds numpy takes for the epoch's matrix products alone, at the same
    shapes and batch: A·W per layer, δ·Wᵀ per layer but the first, Aᵀ·δ per layer."""
    X, y = wl.load(workload.data, dtype)
    n_out = 1 if workload.task == "regression" else int(np.max(y)) + 1
    units = [X.shape[1], *workload.hidden, n_out]
    rng = np.random.default_rng(0)
    n = X.shape[0]
    batches = [min(workload.batch_size, n - s) for s in range(0, n, workload.batch_size)]
    W = [rng.random((a, b)).astype(dtype) for a, b in zip(units[:-1], units[1:])]
    A = [rng.random((workload.batch_size, u)).astype(dtype) for u in units]
    G = [np.empty_like(w) for w in W]

    def epoch():
        for m in batches:
            for i, w in enumerate(W):
                np.matmul(A[i][:m], w, out=A[i + 1][:m])
            for i in range(len(W) - 1, -1, -1):
                np.matmul(A[i][:m].T, A[i + 1][:m], out=G[i])
                if i > 0:
                    np.matmul(A[i + 1][:m], W[i].T, out=A[i][:m])

    epoch()
    return best_time(epoch, repeats)


def run(spec):
    records = []
    dtypes = [np.dtype(d) for d in spec["dtypes"]]
    suite = {w.name: w for w in (wl.quick_suite() if spec["quick"] else wl.full_suite())}
    repeats = spec["repeats"]
    for dtype in dtypes:
        if spec["lib"] == "numpy":
            records.append({"kind": "ceiling", "dtype": dtype.name, "threads": spec["threads"],
                            "gflops": ceiling(dtype, repeats)})
        for name in spec["workloads"]:
            workload = suite[name]
            record = {"lib": spec["lib"], "workload": name, "group": workload.group, "dtype": dtype.name,
                      "threads": spec["threads"]}
            X, _ = wl.load(workload.data, dtype)
            n_out = 1 if workload.task == "regression" else 10
            record["flops"] = wl.flops_per_epoch(X.shape[0], X.shape[1], workload.hidden, n_out)
            if spec["lib"] == "numpy":
                record["epoch_s"] = matmul_epoch(workload, dtype, repeats)
                records.append(record)
                continue
            try:
                runner = make_runner(spec["lib"], workload, dtype, spec["threads"])
            except NotImplementedError as exc:
                record["skipped"] = str(exc)
                records.append(record)
                continue
            epoch_repeats = max(1, repeats if X.shape[0] * sum(workload.hidden) < 5e6 else repeats // 2)
            record["epoch_s"] = best_time(runner.epoch, epoch_repeats) / runner.epochs_per_call
            record["epochs_per_call"] = runner.epochs_per_call
            if getattr(runner, "clocked", None) is not None and workload.group == "reference":
                alone = min(runner.epochs_alone() for _ in range(epoch_repeats))
                record["epoch_alone_s"] = alone / runner.epochs_per_call
            if hasattr(runner, "partial_fit"):
                record["partial_fit_s"] = best_time(runner.partial_fit, epoch_repeats)
            record["predict_samples_per_s"] = X.shape[0] / best_time(runner.predict, repeats)
            records.append(record)
    if spec["lib"] != "numpy":
        # The machine again, after this library's runs and in its process: the 1024³ product (a core slowed
        # meanwhile) and, with several threads, an empty parallel region (cores moved apart meanwhile).
        region_us = parallel_region_us(spec["threads"]) if spec["threads"] > 1 else None
        for dtype in dtypes:
            records.append({"kind": "ceiling_after", "lib": spec["lib"], "dtype": dtype.name,
                            "threads": spec["threads"], "gflops": ceiling(dtype, repeats),
                            "parallel_region_us": region_us})
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for record in records:
        record["process_peak_rss_mib"] = peak_kib / 1024
    return records


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
