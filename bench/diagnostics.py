"""What the diagnostics cost: the same fit timed with and without
record_gradient_norms, and without and with scikit-learn's callbacks.

Run alone: ``python -m bench.diagnostics``; ``python -m bench`` includes them.
"""

import contextlib
import io
import time
import warnings

import numpy as np

from .workloads import REFERENCE, load


def _best_fit_time(model, X, y, repeats):
    """The best of `repeats` fits, after one that loads the compiled code."""
    best = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats + 1):
            start = time.perf_counter()
            model.fit(X, y)
            best = min(best, time.perf_counter() - start)
    return best


def gradient_norm_cost(repeats=5, epochs=3, workloads=REFERENCE[:2], dtype="float64"):
    """Records of the best fit time (adam, `epochs` epochs) off and on."""
    from fastbp import MLPClassifier

    records = []
    for workload in workloads:
        X, y = load(workload.data, np.dtype(dtype))
        times = {record: _best_fit_time(MLPClassifier(workload.hidden, max_iter=epochs, random_state=0,
                                                      record_gradient_norms=record), X, y, repeats)
                 for record in (False, True)}
        records.append({"workload": workload.name, "dtype": dtype, "epochs": epochs, "off_s": times[False],
                        "on_s": times[True], "on_over_off": times[True] / times[False]})
    return records


def callback_cost(repeats=3, epochs=20, workload=REFERENCE[0], dtype="float64"):
    """Records of the best fit time (adam, `epochs` epochs) with no callback,
    with a ProgressBar and with a ScoringMonitor (accuracy on the training
    data at every epoch's end); none where scikit-learn has no sklearn.callback."""
    try:
        from sklearn.callback import ProgressBar, ScoringMonitor
    except ImportError:
        return []
    from fastbp import MLPClassifier

    X, y = load(workload.data, np.dtype(dtype))
    callbacks = {"none": (), "progress_bar": (ProgressBar(),),
                 "scoring_monitor": (ScoringMonitor(scoring="accuracy"),)}
    # The bar drawn at each fit would fill the benchmark's log.
    with contextlib.redirect_stdout(io.StringIO()):
        times = {name: _best_fit_time(MLPClassifier(workload.hidden, max_iter=epochs, random_state=0)
                                      .set_callbacks(*cbs), X, y, repeats)
                 for name, cbs in callbacks.items()}
    return [{"workload": workload.name, "dtype": dtype, "epochs": epochs, **{f"{k}_s": v for k, v in times.items()},
             "progress_bar_over_none": times["progress_bar"] / times["none"],
             "scoring_monitor_over_none": times["scoring_monitor"] / times["none"]}]


def table(records):
    lines = ["| workload | dtype | epochs | off s | on s | on / off |", "|---|---|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['workload']} | {r['dtype']} | {r['epochs']} | {r['off_s']:.3f} | {r['on_s']:.3f} | "
                     f"{r['on_over_off']:.3f} |")
    return "\n".join(lines)


def callback_table(records):
    lines = [("| workload | dtype | epochs | none s | ProgressBar s | ScoringMonitor s | ProgressBar / none | "
              "ScoringMonitor / none |"), "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['workload']} | {r['dtype']} | {r['epochs']} | {r['none_s']:.3f} | "
                     f"{r['progress_bar_s']:.3f} | {r['scoring_monitor_s']:.3f} | {r['progress_bar_over_none']:.3f} | "
                     f"{r['scoring_monitor_over_none']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(gradient_norm_cost()))
    print(callback_table(callback_cost()))
