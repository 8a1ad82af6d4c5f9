"""Parallel fits: the thread rule, concurrent fits from threads, forked children,
joblib backends, and Numba's on-disk cache shared by processes."""

import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import joblib
import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_validate

from fastbp import MLPClassifier, _threads

X, y = load_digits(return_X_y=True)
X = X[:600] / 16.0
y = y[:600]
PARAMS = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fit_first_layer(seed, n_threads=None):
    model = MLPClassifier(**dict(PARAMS, random_state=seed), n_threads=n_threads).fit(X, y)
    return model.coefs_[0], model.n_threads_


def _run(code, env=None, timeout=240):
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def test_main_thread_fit_uses_every_core():
    # One epoch of a shape no fit has timed runs on the rule's count (see test_thread_policy).
    _threads._epoch_times.clear()
    assert MLPClassifier(**dict(PARAMS, max_iter=1)).fit(X, y).n_threads_ == numba.config.NUMBA_NUM_THREADS


def test_explicit_n_threads_wins_and_is_capped():
    assert MLPClassifier(**PARAMS, n_threads=1).fit(X, y).n_threads_ == 1
    assert MLPClassifier(**PARAMS, n_threads=999).fit(X, y).n_threads_ == numba.config.NUMBA_NUM_THREADS


def test_fits_in_a_thread_pool_use_one_thread_and_match_sequential_fits():
    expected = [_fit_first_layer(seed)[0] for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(_fit_first_layer, range(4)))
    for (coefs, threads), ref in zip(results, expected):
        assert threads == 1
        np.testing.assert_array_equal(coefs, ref)


def test_concurrent_fits_with_two_threads_each_do_not_crash():
    expected = _fit_first_layer(0)[0]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _fit_first_layer(0, n_threads=2), range(8)))
    for coefs, _ in results:
        np.testing.assert_array_equal(coefs, expected)


def test_workqueue_layer_concurrent_parallel_fits_do_not_abort():
    """workqueue aborts the process on concurrent parallel launches; fastbp serializes them."""
    out = _run("""
        from concurrent.futures import ThreadPoolExecutor
        import numba, numpy as np
        from sklearn.datasets import load_digits
        from fastbp import MLPClassifier
        X, y = load_digits(return_X_y=True)
        fit = lambda s: MLPClassifier((16,), max_iter=2, random_state=0, n_threads=2).fit(X, y).coefs_[0]
        with ThreadPoolExecutor(4) as pool:
            res = list(pool.map(fit, range(12)))
        assert all(np.array_equal(r, res[0]) for r in res)
        print("layer", numba.threading_layer())
    """, env={"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "layer workqueue" in out.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_pool_after_parent_fit_matches_parent():
    """GNU OpenMP kills or hangs a forked child that launches a parallel region
    after its parent did; fastbp's kernels take their serial path there."""
    parent = _fit_first_layer(0)[0]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map_async(_fit_first_layer, [0, 1]).get(timeout=120)
    np.testing.assert_array_equal(results[0][0], parent)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_joblib_backends_give_the_same_scores_as_one_job(backend):
    ref = cross_validate(MLPClassifier(**PARAMS), X, y, cv=3, n_jobs=1)["test_score"]
    with joblib.parallel_backend(backend, n_jobs=2):
        res = cross_validate(MLPClassifier(**PARAMS), X, y, cv=3, return_estimator=True)
    np.testing.assert_array_equal(res["test_score"], ref)
    threads = {est.n_threads_ for est in res["estimator"]}
    if backend == "threading":
        assert threads == {1}
    else:
        # loky gives each worker NUMBA_NUM_THREADS = cores // workers (at least 1), the
        # most an epoch may use there; the epochs may settle on fewer (test_thread_policy).
        assert max(threads) <= max(1, (os.cpu_count() or 1) // 2)


def test_read_only_package_directory_falls_back_to_a_user_cache(tmp_path):
    package = tmp_path / "site" / "fastbp"
    shutil.copytree(os.path.join(REPO, "fastbp"), package, ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(tmp_path / "site"):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    os.chmod(package, 0o555)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), HOME=str(home))
    env.pop("NUMBA_CACHE_DIR", None)
    code = ("import numpy as np, fastbp\nX = np.random.default_rng(0).normal(size=(20, 3))\n"
            "print(fastbp.MLPClassifier((4,), max_iter=2).fit(X, np.arange(20) % 2).score(X, np.arange(20) % 2))")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert not os.path.exists(package / "__pycache__")
    finally:
        for root, dirs, files in os.walk(tmp_path):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o755)


def test_processes_compiling_into_one_empty_cache_at_once_agree(tmp_path):
    """Several first-time processes writing one cache must neither crash nor
    corrupt it: all agree, and a later process loads what they wrote."""
    code = """
        import numpy as np
        from sklearn.datasets import load_digits
        from fastbp import MLPClassifier, _loop
        X, y = load_digits(return_X_y=True)
        m = MLPClassifier((8,), max_iter=2, random_state=0).fit(X / 16, y)
        print(repr(float(m.coefs_[0].sum())), sum(_loop.run_epoch_dense.stats.cache_hits.values()))
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-1500:] for _, err in outputs]
    sums = {out.split()[0] for out, _ in outputs}
    assert len(sums) == 1
    later = _run(code, env={"NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    assert later.returncode == 0, later.stderr[-1500:]
    value, hits = later.stdout.split()
    assert value in sums
    assert int(hits) >= 1


def test_partial_fit_of_one_model_from_four_threads_takes_turns():
    """scikit-learn's fit wrapper sets and deletes callback state on the
    estimator outside fastbp's fit lock: the holder's snapshot of the
    estimator failed with "dictionary changed size during iteration" for
    some of the calls (9 and 42 of 120 in a trial)."""
    model = MLPClassifier(hidden_layer_sizes=(512, 512), solver="sgd", random_state=0)
    model.partial_fit(X[:100], y[:100], classes=np.arange(10))
    errors = []

    def work(part):
        for j in range(30):
            rows = slice((part * 30 + j) % 30 * 20, (part * 30 + j) % 30 * 20 + 20)
            try:
                model.partial_fit(X[rows], y[rows])
            except Exception as error:  # noqa: BLE001 - each failed call is counted
                errors.append(repr(error))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert errors == []
    assert model.t_ == 100 + 4 * 30 * 20
    assert not hasattr(model, "_callback_fit_ctx")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_thread_fits_the_model_can_fit_it():
    """The fit lock, held by a parent thread that the child does not have,
    hung the child's fit of that model for good."""
    import threading

    model = MLPClassifier(hidden_layer_sizes=(64,), random_state=0, n_threads=1).partial_fit(
        X, y, classes=np.arange(10))
    stop = threading.Event()

    def keep_fitting():
        while not stop.is_set():
            model.partial_fit(X[:300], y[:300])

    worker = threading.Thread(target=keep_fitting)
    worker.start()
    try:
        statuses = []
        for _ in range(3):
            import time

            time.sleep(0.05)
            pid = os.fork()
            if pid == 0:  # the child: fit, and leave at once without pytest's teardown
                import signal

                signal.alarm(60)
                try:
                    model.partial_fit(X[:300], y[:300])
                finally:
                    os._exit(0)
            statuses.append(os.waitpid(pid, 0)[1])
    finally:
        stop.set()
        worker.join()
    assert statuses == [0, 0, 0]
