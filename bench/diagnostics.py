"""What record_gradient_norms costs: the same fit timed with and without it.

Run alone: ``python -m bench.diagnostics``; ``python -m bench`` includes it.
"""

import time
import warnings

import numpy as np

from .workloads import REFERENCE, load


def gradient_norm_cost(repeats=5, epochs=3, workloads=REFERENCE[:2], dtype="float64"):
    """Records of the best fit time (adam, `epochs` epochs) off and on."""
    from fastbp import MLPClassifier

    records = []
    for workload in workloads:
        X, y = load(workload.data, np.dtype(dtype))
        times = {}
        for record in (False, True):
            model = MLPClassifier(workload.hidden, max_iter=epochs, random_state=0, record_gradient_norms=record)
            best = float("inf")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(repeats + 1):
                    start = time.perf_counter()
                    model.fit(X, y)
                    best = min(best, time.perf_counter() - start)
            times[record] = best
        records.append({"workload": workload.name, "dtype": dtype, "epochs": epochs, "off_s": times[False],
                        "on_s": times[True], "on_over_off": times[True] / times[False]})
    return records


def table(records):
    lines = ["| workload | dtype | epochs | off s | on s | on / off |", "|---|---|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['workload']} | {r['dtype']} | {r['epochs']} | {r['off_s']:.3f} | {r['on_s']:.3f} | "
                     f"{r['on_over_off']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(gradient_norm_cost()))
