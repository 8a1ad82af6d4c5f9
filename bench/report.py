"""Tables and plots from a results dictionary."""

import os


def _index(result):
    ceilings = {(r["dtype"], r["threads"]): r["gflops"] for r in result["records"] if r.get("kind") == "ceiling"}
    runs = [r for r in result["records"] if r.get("kind") != "ceiling" and "epoch_s" in r]
    by_key = {(r["lib"], r["workload"], r["dtype"], r["threads"]): r for r in runs}
    return ceilings, runs, by_key


def derived(result):
    """Each run with GFLOP/s, fraction of the ceiling, multiple of the matmul-only
    epoch and speed-up over scikit-learn, all from figures of the same run."""
    ceilings, runs, by_key = _index(result)
    rows = []
    for r in runs:
        if r["lib"] == "numpy":
            continue
        key = (r["workload"], r["dtype"], r["threads"])
        matmul = by_key.get(("numpy", *key))
        sk = by_key.get(("sklearn", *key))
        gflops = r["flops"] / r["epoch_s"] / 1e9
        ceiling = ceilings.get((r["dtype"], r["threads"]))
        alone = r.get("epoch_alone_s")
        rows.append({
            **r,
            "gflops": gflops,
            "ceiling_gflops": ceiling,
            "fraction_of_ceiling": gflops / ceiling if ceiling else None,
            "alone_fraction_of_ceiling": r["flops"] / alone / 1e9 / ceiling if ceiling and alone else None,
            "x_matmul_epoch": r["epoch_s"] / matmul["epoch_s"] if matmul else None,
            "speedup_vs_sklearn": sk["epoch_s"] / r["epoch_s"] if sk else None,
        })
    return rows


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def reference_table(result):
    """The loop backend on the reference workloads beside every other library:
    the table README quotes. Ratios are the other library's epoch over the loop
    backend's, both as timed in a fit (above 1: fastbp is faster)."""
    rows = {(r["lib"], r["workload"], r["dtype"], r["threads"]): r for r in derived(result)}
    others = (("sklearn", "scikit-learn"), ("vectorized", "vectorized"), ("torch", "PyTorch"), ("jax", "JAX"))
    lines = ["| workload | dtype | threads | loop ms | % ceiling | epoch alone ms | % ceiling, epoch alone | "
             "× matmul-only | " + " | ".join(f"vs {name}" for _, name in others) + " | "
             + " | ".join(f"{name} ms" for _, name in others) + " |",
             "|---|---|---|" + "---:|" * 13]
    loops = sorted((r for r in rows.values() if r["lib"] == "loop" and r["group"] == "reference"),
                   key=lambda r: (r["flops"], r["workload"], r["dtype"] == "float32", r["threads"]))
    for loop in loops:
        key = (loop["workload"], loop["dtype"], loop["threads"])
        peers = [rows.get((lib, *key)) for lib, _ in others]
        alone = loop.get("epoch_alone_s")
        cells = [f"{1e3 * loop['epoch_s']:.2f}", _fmt(_percent(loop["fraction_of_ceiling"]), ".0f"),
                 _fmt(None if alone is None else 1e3 * alone, ".2f"),
                 _fmt(_percent(loop["alone_fraction_of_ceiling"]), ".0f"), _fmt(loop["x_matmul_epoch"], ".2f")]
        cells += [_fmt(None if p is None else p["epoch_s"] / loop["epoch_s"], ".2f") + ("×" if p else "")
                  for p in peers]
        cells += [_fmt(None if p is None else 1e3 * p["epoch_s"], ".2f") for p in peers]
        lines.append(f"| {' | '.join(map(str, key))} | " + " | ".join(cells) + " |")
    return lines


def _percent(fraction):
    return None if fraction is None else 100 * fraction


def markdown(result):
    m = result["machine"]
    lines = [
        "# fastbp benchmark" + (" (quick)" if result.get("quick") else ""),
        "",
        f"CPU: {m['model']}" + (f", {m['llvm_cpu']} to LLVM" if "llvm_cpu" in m else "")
        + f" ({m['logical_cores']} logical cores; {', '.join(m['vector_extensions'])}). "
        f"Load average at start {result['load_average_start']}, at end {result.get('load_average_end')}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        "",
        "Per-epoch time is the best of several repeats after a warm-up (compile excluded); for fastbp and "
        "scikit-learn it is a fit's time over its epoch count (10, or 2 on the 50000-sample workloads), and one "
        "partial_fit call, which validates its input at every epoch, is shown apart. "
        "Work counted as 2 flops per multiply-add: per sample, one per weight for the forward pass, one for "
        "the gradient sums, one for the δ recursion in every layer but the first. Ceiling: numpy's 1024³ "
        "matmul at the same dtype and threads. × matmul: epoch time over numpy's time for the epoch's "
        "matrix products alone. Epoch alone (fastbp, reference workloads): the same fit with a sklearn.callback "
        "callback that clocks each epoch from its begin to its end hook, so the fit's set-up (input checks, label "
        "encoding, initial weights) is left out, as it is from PyTorch's and JAX's epochs.",
        "",
        "## Reference workloads: the loop backend beside the others",
        "",
        *reference_table(result),
        "",
        "## Every run",
        "",
        "| workload | dtype | threads | library | epoch ms | GFLOP/s | % ceiling | × matmul | vs sklearn | "
        "partial_fit ms | predict samples/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(derived(result), key=lambda r: (r["group"], r["workload"], r["dtype"], r["threads"], r["lib"]))
    for r in rows:
        frac = _percent(r["fraction_of_ceiling"])
        partial_fit_ms = 1e3 * r["partial_fit_s"] if "partial_fit_s" in r else None
        lines.append(
            f"| {r['workload']} | {r['dtype']} | {r['threads']} | {r['lib']} | {1e3 * r['epoch_s']:.2f} | "
            f"{r['gflops']:.1f} | {_fmt(frac, '.0f')} | {_fmt(r['x_matmul_epoch'], '.2f')} | "
            f"{_fmt(r['speedup_vs_sklearn'], '.2f')} | {_fmt(partial_fit_ms, '.2f')} | "
            f"{_fmt(r.get('predict_samples_per_s'), '.3g')} |"
        )
    ceilings, _, _ = _index(result)
    lines += ["", "| ceiling | " + " | ".join(f"{d} × {t} threads: {g:.1f} GFLOP/s"
                                              for (d, t), g in sorted(ceilings.items())) + " |", ""]
    lines += _ceiling_check(result, ceilings)
    if result.get("skipped_libs"):
        lines += ["Not run: " + "; ".join(f"{k}: {v}" for k, v in result["skipped_libs"].items()), ""]
    lines += ["## Start-up (fresh processes)", "",
              "First fit and predict (digits, one hidden layer of 32, one adam epoch); cold: an empty Numba "
              "cache, with the compile helper processes a first fit starts (one per core beyond the first, at "
              "most 2), and in one process alone (FASTBP_COMPILE_HELPERS=0); the compiled functions are those "
              "the cold fit cached, with their signatures; busy: a Python busy loop keeps one core busy "
              "meanwhile. Cold first predict: the fitted model pickled, loaded and predicted in a fresh process "
              "with an empty cache (a model fitted elsewhere), with the functions that compiled.", "",
              "| dtype | import fastbp s | load estimators s | cold first fit s | cold, one process s | "
              "cold, busy s | cold, one process, busy s | "
              "warm first fit s | warm second fit s | warm overhead s | compiled functions (signatures) | "
              "cold first predict s (functions) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in result.get("startup", []):
        # Results from before fastbp's names loaded lazily have no estimators' time: "import" loaded them.
        estimators = s["warm"].get("estimators_import_s")
        lines.append(f"| {s['dtype']} | {s['warm']['import_s']:.2f} | "
                     f"{'-' if estimators is None else f'{estimators:.2f}'} | {s['cold']['first_fit_s']:.2f} | "
                     f"{_fmt(s.get('cold_one_process', {}).get('first_fit_s'), '.2f')} | "
                     f"{_fmt(s.get('cold_busy_s'), '.2f')} | {_fmt(s.get('cold_one_process_busy_s'), '.2f')} | "
                     f"{s['warm']['first_fit_s']:.2f} | {s['warm']['second_fit_s']:.3f} | "
                     f"{s['warm_overhead_s']:.2f} | {s['cold'].get('compiled_functions', '-')} "
                     f"({s['cold'].get('compiled_signatures', '-')}) | "
                     f"{_fmt(s.get('cold_predict', {}).get('first_predict_s'), '.2f')} "
                     f"({s.get('cold_predict', {}).get('compiled_functions', '-')}) |")
    if result.get("peak_memory"):
        lines += ["", "## Peak memory of a fit beyond its data (fresh process, 1 thread)", "",
                  "The largest total of the arrays a fit allocates while it runs (numpy's allocations, traced by "
                  "tracemalloc once the data and the model exist).", "",
                  "| workload | library | epochs | MiB |", "|---|---|---|---|"]
        for p in result["peak_memory"]:
            lines.append(f"| {p['workload']} | {p['lib']} | {p['epochs']} | {p['peak_alloc_mib']:.2f} |")
    if result.get("jacobian"):
        from .jacobian import table

        lines += ["", "## Jacobian: forward mode (one sweep per input) vs reverse mode (one per output)", "",
                  table(result["jacobian"])]
    if result.get("gradient_norms"):
        from .diagnostics import table as norms_table

        lines += ["", "## record_gradient_norms: a fit (adam, 3 epochs, all threads) without and with it", "",
                  norms_table(result["gradient_norms"])]
    if result.get("callback_cost"):
        from .diagnostics import callback_table

        lines += ["", "## Callbacks: a fit (adam, all threads) with none, a ProgressBar, a ScoringMonitor", "",
                  callback_table(result["callback_cost"])]
    if result.get("predict"):
        from .predict import markdown as predict_table

        lines += ["", predict_table(result["predict"])]
    return "\n".join(lines) + "\n"


def _ceiling_check(result, ceilings):
    """The ceiling measured again after each library's runs, as a fraction of the one taken before."""
    after = [r for r in result["records"] if r.get("kind") == "ceiling_after"]
    if not after:
        return []
    lines = ["Ceiling check, in each library's process after its runs: numpy's 1024³ matmul again, as % of the "
             "ceiling above (well below 100: the host slowed a core meanwhile), and the µs an empty Numba parallel "
             "region takes on all threads (at twice its usual value the host had moved the cores apart, and "
             "fastbp's 2-thread epochs on the small networks were measured up to 1.5× slower).",
             "", "| library | threads | " + " | ".join(f"{d} GFLOP/s | {d} %" for d in ("float64", "float32"))
             + " | parallel region µs |", "|---|---|" + "---|---|" * 2 + "---|"]
    for lib, threads in sorted({(r["lib"], r["threads"]) for r in after}, key=lambda k: (k[1], k[0])):
        cells = []
        region_us = next(r["parallel_region_us"] for r in after if (r["lib"], r["threads"]) == (lib, threads))
        for dtype in ("float64", "float32"):
            gflops = next((r["gflops"] for r in after if (r["lib"], r["threads"], r["dtype"]) == (lib, threads, dtype)),
                          None)
            base = ceilings.get((dtype, threads))
            cells += [_fmt(gflops, ".1f"), _fmt(None if gflops is None or not base else 100 * gflops / base, ".0f")]
        lines.append(f"| {lib} | {threads} | " + " | ".join(cells) + f" | {_fmt(region_us, '.2f')} |")
    return lines + [""]


def plots(result, out):
    """PNG plots: epoch time vs width, speed-up over scikit-learn, fraction of the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = derived(result)
    threads = max((r["threads"] for r in rows), default=1)
    paths = []
    libs = sorted({r["lib"] for r in rows})

    width = [r for r in rows if r["group"] == "width" and r["threads"] == threads]
    if width:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, dtype in zip(axes, ("float64", "float32")):
            for lib in libs:
                pts = sorted((int(r["workload"].split()[-1]), 1e3 * r["epoch_s"])
                             for r in width if r["lib"] == lib and r["dtype"] == dtype)
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=lib)
            ax.set(xscale="log", yscale="log", xlabel="hidden width", title=f"{dtype}, {threads} threads")
        axes[0].set_ylabel("ms per epoch (10000 samples)")
        axes[0].legend()
        paths.append(_save(fig, out, "epoch_time_vs_width.png"))

    ref = [r for r in rows if r["group"] == "reference" and r["threads"] == threads]
    for metric, label, name in (("speedup_vs_sklearn", "speed-up over scikit-learn", "speedup_vs_sklearn.png"),
                                ("fraction_of_ceiling", "fraction of matmul ceiling", "fraction_of_ceiling.png")):
        cases = sorted({(r["workload"], r["dtype"]) for r in ref})
        if not cases:
            continue
        fig, ax = plt.subplots(figsize=(10, 4))
        bar = 0.8 / max(1, len(libs))
        for i, lib in enumerate(libs):
            vals = [next((r[metric] or 0 for r in ref if r["lib"] == lib and (r["workload"], r["dtype"]) == c), 0)
                    for c in cases]
            ax.bar([x + i * bar for x in range(len(cases))], vals, bar, label=lib)
        ax.set_xticks([x + 0.4 - bar / 2 for x in range(len(cases))])
        ax.set_xticklabels([f"{w}\n{d}" for w, d in cases], fontsize=7)
        ax.set_ylabel(label)
        ax.set_title(f"{label}, {threads} threads, {result['machine']['model']}")
        ax.legend()
        paths.append(_save(fig, out, name))
    return paths


def _save(fig, out, name):
    import matplotlib.pyplot as plt

    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
