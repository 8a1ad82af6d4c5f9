"""Smoke test of the benchmark suite: `python -m bench --quick` on a tiny workload.

No time is asserted: only that every figure is present and the plots are written.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numba
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_bench_writes_json_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "versions", "records", "startup", "callback_cost", "load_average_start",
            "load_average_end"} <= set(result)
    assert result["machine"]["model"] and result["machine"]["llvm_cpu"] and "logical_cores" in result["machine"]
    ceilings = [r for r in result["records"] if r.get("kind") == "ceiling"]
    assert {r["dtype"] for r in ceilings} == {"float64", "float32"}
    assert all(r["gflops"] > 0 for r in ceilings)
    after = [r for r in result["records"] if r.get("kind") == "ceiling_after"]
    assert all(r["parallel_region_us"] > 0 if r["threads"] > 1 else r["parallel_region_us"] is None for r in after)
    checks = {(r["lib"], r["dtype"]) for r in after if r["gflops"] > 0}
    assert {(lib, d) for lib in ("loop", "vectorized", "sklearn") for d in ("float64", "float32")} <= checks
    runs = {(r["lib"], r["dtype"]) for r in result["records"] if "epoch_s" in r}
    for lib in ("numpy", "loop", "vectorized", "sklearn"):
        assert {(lib, "float64"), (lib, "float32")} <= runs
    for record in result["records"]:
        if record.get("lib") in ("loop", "vectorized", "sklearn") and "kind" not in record:
            assert record["epoch_s"] > 0 and record["predict_samples_per_s"] > 0 and record["flops"] > 0
            assert record["partial_fit_s"] > 0 and record["epochs_per_call"] == 10
            # Clocked by a callback in fastbp's fits; scikit-learn's MLP takes none.
            clocked = importlib.util.find_spec("sklearn.callback") is not None and record["lib"] != "sklearn"
            assert ("epoch_alone_s" in record) == clocked and record.get("epoch_alone_s", 1) > 0
    for startup in result["startup"]:
        assert startup["cold"]["first_fit_s"] > 0 and startup["warm"]["first_fit_s"] > 0
        assert startup["cold"]["compiled_functions"] > 0
        assert startup["cold_one_process"]["first_fit_s"] > 0
        assert startup["cold_busy_s"] > 0 and startup["cold_one_process_busy_s"] > 0
        # A model fitted elsewhere compiles its forward pass only: no loss, backward or optimizer kernels.
        assert startup["cold_predict"]["first_predict_s"] > 0
        assert 0 < startup["cold_predict"]["compiled_functions"] < startup["cold"]["compiled_functions"]
    predict = result["predict"]
    assert {(r["method"], r["rows"]) for r in predict["latency"]} == {
        (method, rows) for method in ("predict_proba", "predict") for rows in (1, 10)}
    assert all(r["fastbp_us"] > 0 and r["sklearn_us"] > 0 for r in predict["latency"])
    assert {r["dtype"] for r in predict["throughput"]} == {"float64", "float32"}
    for r in predict["throughput"]:
        # digits 64-100-10: 2 × (64·100 + 100·10) flops a row at the matmul rate.
        assert r["ceiling_rows_per_s"] * 2 * (64 * 100 + 100 * 10) == pytest.approx(r["ceiling_gflops"] * 1e9)
        assert r["fastbp_of_ceiling"] == pytest.approx(r["fastbp_rows_per_s"] / r["ceiling_rows_per_s"])
        # Every timed call on many rows went through predict's thread choice (none with one thread to use).
        assert sum(r["fastbp_calls_by_threads"].values()) >= 3 or numba.config.NUMBA_NUM_THREADS == 1
    assert len(predict["sparse_text"]) == 3 and len(predict["partial_fit"]) == 1
    assert "## Predict" in (tmp_path / "results.md").read_text()
    assert "| ceiling rows/s | % of ceiling: fastbp, scikit-learn, JAX |" in (tmp_path / "results.md").read_text()
    assert "| cold, one process s | cold, busy s | cold, one process, busy s |" in (tmp_path / "results.md").read_text()
    if importlib.util.find_spec("sklearn.callback"):
        (cost,) = result["callback_cost"]
        assert cost["none_s"] > 0 and cost["progress_bar_over_none"] > 0 and cost["scoring_monitor_over_none"] > 0
        assert "| ProgressBar / none |" in (tmp_path / "results.md").read_text()
    table = (tmp_path / "results.md").read_text()
    assert "| digits 64-32-10 | float64 |" in table and "% ceiling" in table and "partial_fit ms" in table
    assert "Ceiling check" in table and "| loop | " in table
    reference = table.split("## Reference workloads")[1].split("## Every run")[0]
    assert "epoch alone ms" in reference and "| digits 64-32-10 | float32 | " in reference
    for name in ("speedup_vs_sklearn.png", "fraction_of_ceiling.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_handover_watch_prints_its_three_figures():
    out = subprocess.run([sys.executable, "-m", "bench.handover", "0.1"], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.splitlines()[0]
    assert "parallel region" in line and "serial" in line and "digits float32 epoch" in line
    figures = [float(word) for word in line.replace("(", " ").split() if word.replace(".", "", 1).isdigit()]
    assert len(figures) >= 4 and all(f > 0 for f in figures[1:])


def test_side_by_side_takes_each_librarys_best_over_rounds_of_turns(monkeypatch):
    # Each turn's best is stubbed: what is tested is the order of turns and the minimum kept.
    monkeypatch.syspath_prepend(REPO)
    from bench import predict

    monkeypatch.setattr(predict, "_QUIET_S", 0)
    turns, times = [], iter([3.0, 5.0, 4.0, 1.0, 6.0, 2.0])
    monkeypatch.setattr(predict, "_best", lambda call, repeats, inner: (turns.append(call.__name__), next(times))[1])

    def ours():
        pass

    def theirs():
        pass

    def jax():
        pass

    assert predict._side_by_side(ours, theirs, 1, 1, jax, rounds=2) == (1.0, 5.0, 2.0)
    # The turns alternate by library, ours first in each round.
    assert turns == ["ours", "theirs", "jax"] * 2
    # A full run takes three rounds, a quick one one, unless told.
    for name in ("latency", "throughput", "sparse_text", "partial_fit_stream"):
        monkeypatch.setattr(predict, name, lambda *args, rounds: rounds)
    sections = ("latency", "throughput", "sparse_text", "partial_fit", "rounds")
    assert [predict.run(quick=False)[key] for key in sections] == [3] * 5
    assert [predict.run(quick=True)[key] for key in sections] == [1] * 5
    assert [predict.run(quick=True, rounds=2)[key] for key in sections] == [2] * 5
