"""What predict costs a user, beside scikit-learn on the same weights: latency
on a few rows, throughput on many, sparse text-like input, and partial_fit on
a stream of chunks.

Each figure is the best of `repeats` timings, in one process, fastbp's
timings and then scikit-learn's (and JAX's, where installed) back to back,
in `rounds` rounds of those turns (3 in a full run), each library's best
over all of them: on the shared 2-core host one library's turn alone could
fall in a slow spell (JAX on digits float32 ran at 5.9e6 rows/s in one run
and 4.1e6 in the next, an hour apart, with one round each).

Run alone: ``python -m bench.predict [--quick]``; ``python -m bench`` includes it.
"""

import argparse
import json
import time
import warnings

import numpy as np
import scipy.sparse as sp


def _best(call, repeats, inner):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


# Seconds each library's turn waits first, for the threads the one before
# left spinning to stop: after scikit-learn's predict_proba, an OpenBLAS
# worker spent 100 ms of CPU in the next 300 ms of sleep, and fastbp's calls
# on 50000 rows took 19-25 ms against 10-12 once it had stopped.
_QUIET_S = 0.25


def _side_by_side(ours, theirs, repeats, inner, *others, rounds=1):
    """Best seconds per call of ours(), theirs() and any others, over `rounds`
    rounds of turns: in each turn one's repeats together, after a pause
    (_QUIET_S) and a warm-up as long as one repeat (`inner` calls) of its
    own, so that threads left spinning by one library's last call
    (OpenBLAS's for about 0.1 s, XLA's) slow neither the next library's
    warm-up nor its timed calls. A single warm-up call was not enough: with
    one timed call per repeat, float32 digits predict (after float64's JAX
    run) took 771 µs per call in the bench against 329 µs timed alone."""
    calls = (ours, theirs) + others
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            time.sleep(_QUIET_S)
            for _ in range(inner):
                call()
            best[i] = min(best[i], _best(call, repeats, inner))
    return tuple(best)


def _jax_forward(model, rows):
    """A call of a jitted JAX forward pass (relu hidden layers, softmax output)
    on the model's weights and rows, converted once to JAX arrays of rows'
    dtype; None without JAX. x64 is enabled so that float64 stays float64."""
    from .peers import available

    if not available("jax"):
        return None
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    dtype = rows.dtype
    weights = [(jnp.asarray(w, dtype), jnp.asarray(b, dtype)) for w, b in zip(model.coefs_, model.intercepts_)]

    @jax.jit
    def forward(x):
        for w, b in weights[:-1]:
            x = jax.nn.relu(x @ w + b)
        w, b = weights[-1]
        return jax.nn.softmax(x @ w + b, axis=1)

    inputs = jnp.asarray(rows, dtype)
    return lambda: forward(inputs).block_until_ready()


def _fitted(X, y, hidden, dtype, max_iter=2):
    from fastbp import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden, max_iter=max_iter, random_state=0).fit(X.astype(dtype), y)
    return model, model.to_sklearn()


def latency(repeats=5, rounds=1):
    """predict_proba and predict on 1 and 10 rows: digits (64-100-10) and a 16384-input model."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(64, 16384))
    records = []
    for name, data, labels in (("digits 64-100-10", X, y), ("16384-100-10", wide, np.arange(64) % 10)):
        ours, theirs = _fitted(data, labels, (100,), np.float64)
        for method in ("predict_proba", "predict"):
            for rows in (1, 10):
                batch = data[:rows]
                t_ours, t_theirs = _side_by_side(lambda: getattr(ours, method)(batch),
                                                 lambda: getattr(theirs, method)(batch), repeats, 200, rounds=rounds)
                records.append({"network": name, "method": method, "rows": rows, "fastbp_us": t_ours * 1e6,
                                "sklearn_us": t_theirs * 1e6, "sklearn_over_fastbp": t_theirs / t_ours})
    return records


def _flops_per_row(model):
    """Multiply-adds of a forward pass, two flops each, per row."""
    return sum(2 * w.shape[0] * w.shape[1] for w in model.coefs_)


def _calls_by_threads(model, dtype):
    """How many of fastbp's predict calls on dense input to this model's
    network and dtype ran on each thread count (predict picks it from its own
    timings: see fastbp._threads.forward_threads); empty where every call ran
    on the calling thread."""
    from fastbp import _threads

    widths = np.array([w.shape[0] for w in model.coefs_] + [model.coefs_[-1].shape[1]], dtype=np.int64).tobytes()
    calls = {}
    for key, governor in _threads._forward_governors.items():
        if key[1:4] == (widths, np.dtype(dtype).char, False):
            for count, n in governor.used.items():
                calls[int(count)] = calls.get(int(count), 0) + n
    return dict(sorted(calls.items(), reverse=True))


def throughput(repeats=3, quick=False, rounds=1):
    """Rows per second of predict over many rows, on the reference networks,
    beside scikit-learn and, where installed, a jitted JAX forward pass given
    its input already as a JAX array (its transfer left out, to JAX's favour).

    Each row also has its ceiling: the rows per second a pass would reach if
    its products alone ran at numpy's rate on a 1024³ product (the machine's
    matmul rate, BLAS on all its threads, taken after the dtype's runs), with
    each library's fraction of it: a target above 100% of the ceiling is one
    no forward pass made of these products reaches on this machine."""
    from .worker import ceiling
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(0)
    big = rng.normal(size=(10000 if quick else 50000, 100))
    big_y = (big[:, :10].argmax(1))
    cases = [("digits 64-100-10", X, y, (100,))]
    if not quick:
        cases += [("50k 100-100-10", big, big_y, (100,)), ("50k 100-256-256-10", big, big_y, (256, 256))]
    records = []
    for name, data, labels, hidden in cases:
        for dtype in (np.float64, np.float32):
            ours, theirs = _fitted(data, labels, hidden, dtype, max_iter=1)
            rows = data.astype(dtype)
            jax_forward = _jax_forward(ours, rows)
            others = () if jax_forward is None else (jax_forward,)
            # About 40,000 rows per repeat: 22 calls on digits, one on 50k rows.
            times = _side_by_side(lambda: ours.predict_proba(rows), lambda: theirs.predict_proba(rows), repeats,
                                  max(1, 40000 // rows.shape[0]), *others, rounds=rounds)
            record = {"network": name, "dtype": np.dtype(dtype).name, "rows": rows.shape[0],
                      "fastbp_rows_per_s": rows.shape[0] / times[0], "sklearn_rows_per_s": rows.shape[0] / times[1],
                      "fastbp_over_sklearn": times[1] / times[0],
                      "fastbp_calls_by_threads": _calls_by_threads(ours, dtype)}
            if others:
                record.update(jax_rows_per_s=rows.shape[0] / times[2], fastbp_over_jax=times[2] / times[0])
            gflops = ceiling(dtype, repeats)
            record.update(ceiling_gflops=gflops, ceiling_rows_per_s=gflops * 1e9 / _flops_per_row(ours))
            for library in ("fastbp", "sklearn", "jax"):
                if f"{library}_rows_per_s" in record:
                    record[f"{library}_of_ceiling"] = record[f"{library}_rows_per_s"] / record["ceiling_rows_per_s"]
            records.append(record)
    return records


def sparse_text(repeats=3, quick=False, rounds=1):
    """A TF-IDF-like CSR input (about 16k features, about 20 stored values a
    row): predict on many rows and on one, and a fit of a few epochs."""
    rng = np.random.default_rng(0)
    n_rows, n_features, per_row = (1500 if quick else 4500), 16356, 20
    cols = rng.integers(0, n_features, size=(n_rows, per_row))
    X = sp.csr_matrix((rng.random(n_rows * per_row), cols.ravel(), np.arange(0, n_rows * per_row + 1, per_row)),
                      shape=(n_rows, n_features))
    X.sum_duplicates()
    y = cols[:, 0] % 4
    ours, theirs = _fitted(X, y, (100,), np.float64, max_iter=1)
    records = []
    for rows in (1, min(1500, n_rows)):
        batch = X[:rows]
        t_ours, t_theirs = _side_by_side(lambda: ours.predict_proba(batch), lambda: theirs.predict_proba(batch),
                                         repeats, 50 if rows == 1 else 2, rounds=rounds)
        records.append({"case": f"predict {rows} rows", "fastbp_s": t_ours, "sklearn_s": t_theirs,
                        "fastbp_over_sklearn": t_theirs / t_ours})
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from fastbp import MLPClassifier

    def fit(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls((100,), max_iter=3, random_state=0).fit(X, y)

    t_ours, t_theirs = _side_by_side(lambda: fit(MLPClassifier), lambda: fit(SkMLPClassifier), repeats, 1,
                                     rounds=rounds)
    records.append({"case": "fit 3 epochs", "fastbp_s": t_ours, "sklearn_s": t_theirs,
                    "fastbp_over_sklearn": t_theirs / t_ours})
    return records


def partial_fit_stream(repeats=2, quick=False, chunk=10000, rounds=1):
    """partial_fit over `chunk`-row chunks of a 50-feature float32 stream."""
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from fastbp import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40000 if quick else 200000, 50)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def stream(cls):
        model = cls((100,), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in range(0, X.shape[0], chunk):
                model.partial_fit(X[start:start + chunk], y[start:start + chunk], classes=[0, 1])

    t_ours, t_theirs = _side_by_side(lambda: stream(MLPClassifier), lambda: stream(SkMLPClassifier), repeats, 1,
                                     rounds=rounds)
    return [{"rows": X.shape[0], "chunk": chunk, "fastbp_s": t_ours, "sklearn_s": t_theirs,
             "fastbp_over_sklearn": t_theirs / t_ours}]


def run(quick=False, repeats=3, rounds=None):
    """Every section; rounds (see module docstring) 1 when quick, else 3 unless given."""
    rounds = (1 if quick else 3) if rounds is None else rounds
    return {"latency": latency(repeats, rounds=rounds), "throughput": throughput(repeats, quick, rounds=rounds),
            "sparse_text": sparse_text(repeats, quick, rounds=rounds),
            "partial_fit": partial_fit_stream(min(repeats, 2), quick, rounds=rounds), "rounds": rounds}


def markdown(result):
    lines = ["## Predict (fastbp, scikit-learn and JAX on the same weights, in one process)", "",
             f"Each library's best over {result.get('rounds', 1)} round(s) of turns (see bench/predict.py).", "",
             "| network | method | rows | fastbp µs | scikit-learn µs | scikit-learn / fastbp |",
             "|---|---|---|---|---|---|"]
    for r in result["latency"]:
        lines.append(f"| {r['network']} | {r['method']} | {r['rows']} | {r['fastbp_us']:.0f} | {r['sklearn_us']:.0f} | "
                     f"{r['sklearn_over_fastbp']:.2f} |")
    lines += ["", "| network | dtype | rows | fastbp rows/s | scikit-learn rows/s | fastbp / scikit-learn | "
              "JAX jit rows/s | fastbp / JAX | ceiling rows/s | % of ceiling: fastbp, scikit-learn, JAX | "
              "2× scikit-learn, % of ceiling | fastbp calls by threads |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["throughput"]:
        jax_cells = (f"{r['jax_rows_per_s']:.3g} | {r['fastbp_over_jax']:.2f}" if "jax_rows_per_s" in r
                     else "not installed | –")
        fractions = ", ".join(f"{100 * r[f'{library}_of_ceiling']:.0f}" if f"{library}_of_ceiling" in r else "–"
                              for library in ("fastbp", "sklearn", "jax"))
        lines.append(f"| {r['network']} | {r['dtype']} | {r['rows']} | {r['fastbp_rows_per_s']:.3g} | "
                     f"{r['sklearn_rows_per_s']:.3g} | {r['fastbp_over_sklearn']:.2f} | {jax_cells} | "
                     f"{r['ceiling_rows_per_s']:.3g} | {fractions} | {200 * r['sklearn_of_ceiling']:.0f} | "
                     + (", ".join(f"{count}: {calls}" for count, calls in r["fastbp_calls_by_threads"].items())
                        or "–") + " |")
    rates = {}
    for r in result["throughput"]:
        rates.setdefault(r["dtype"], []).append(r["ceiling_gflops"])
    lines += ["", "Ceiling: the rows per second of a pass whose products ran at numpy's rate on a 1024³ product, "
              "BLAS on all threads (" + ", ".join(f"{dtype} {min(g):.0f}–{max(g):.0f} GFLOP/s"
                                                  for dtype, g in rates.items()) + ", taken after each row's runs). "
              "fastbp calls by threads: how many of its calls (warm-up included) ran on each thread count, "
              "which predict picks from its own timings."]
    lines += ["", "Sparse text-like input (16356 features, 20 stored values a row):", "",
              "| case | fastbp s | scikit-learn s | speed-up |", "|---|---|---|---|"]
    for r in result["sparse_text"]:
        lines.append(f"| {r['case']} | {r['fastbp_s']:.3g} | {r['sklearn_s']:.3g} | {r['fastbp_over_sklearn']:.2f} |")
    lines += ["", "| partial_fit stream rows | chunk | fastbp s | scikit-learn s | speed-up |", "|---|---|---|---|---|"]
    for r in result["partial_fit"]:
        lines.append(f"| {r['rows']} | {r['chunk']} | {r['fastbp_s']:.3g} | {r['sklearn_s']:.3g} | "
                     f"{r['fastbp_over_sklearn']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.predict", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="write predict.json and predict.md here")
    args = parser.parse_args(argv)
    from . import machine

    result = run(quick=args.quick, repeats=2 if args.quick else 5)
    result["machine"] = {"cpu": machine.cpu(), "versions": machine.versions(), "load_average": machine.load_average()}
    cpu = result["machine"]["cpu"]
    table = (f"Measured on {cpu['model']} ({cpu['llvm_cpu']} to LLVM; {', '.join(cpu['vector_extensions'])}; "
             f"{cpu['logical_cores']} logical cores), load average {result['machine']['load_average']}.\n\n"
             + markdown(result))
    print(table)
    if args.out:
        import os

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "predict.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(args.out, "predict.md"), "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
