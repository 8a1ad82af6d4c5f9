"""Numba's on-disk cache at its edges: an install with nowhere to cache, and
damaged cache files. Each case runs in fresh processes, on two small kernels
(the dropout epoch key and activate_rows, each compiled in about a second)."""

import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from fastbp._dropout import _GOLDEN, _MIX_1, _MIX_2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs activate_rows (relu on rows 0 and 1) in float64 and float32 (two
# entries of one function Python calls, so cached with its CPython wrapper)
# and prints whether both gave the rows they should, with the cache hits and
# misses, as JSON.
ACTIVATE_ROWS = """
    import json, numpy as np
    from fastbp import _activations
    ok = True
    for dtype in (np.float64, np.float32):
        a = np.array([[-1, 2], [3, -4], [-5, 6]], dtype)
        _activations.activate_rows(_activations.RELU, a, 0, 2)
        ok &= bool((a == [[0, 2], [3, 0], [-5, 6]]).all())
    stats = _activations.activate_rows.stats
    print(json.dumps({"ok": ok, "hits": sum(stats.cache_hits.values()),
                      "misses": sum(stats.cache_misses.values())}))
"""

# Prints the epoch key, the RuntimeWarnings raised by the import and the
# call, and the kernel's cache directory and hits and misses, as JSON.
EPOCH_KEY = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from fastbp import _dropout
        key = _dropout.epoch_key(7, 3)
    stats = _dropout._epoch_key.stats
    print(json.dumps({
        "key": int(key),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "cache_path": stats.cache_path,
        "hits": sum(stats.cache_hits.values()),
        "misses": sum(stats.cache_misses.values()),
    }))
"""


def _expected_epoch_key(seed, epoch):
    """fastbp._dropout.epoch_key in Python integers."""
    mask = 2**64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * int(_MIX_1)) & mask
        z = ((z ^ (z >> 27)) * int(_MIX_2)) & mask
        return z ^ (z >> 31)

    return mix((mix(seed) + epoch * int(_GOLDEN)) & mask)


def _run(code, env, cwd, prefix=()):
    """Run code in a fresh process (its command line after `prefix`); cwd is
    where `python -c` looks first for packages, so never the repository when
    PYTHONPATH names another copy."""
    out = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def _nowhere_to_cache(tmp_path, **extra):
    """The environment of a read-only installed copy of the package with an
    unusable home: Numba finds no directory to cache in."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "fastbp"), site / "fastbp", ignore=shutil.ignore_patterns("__pycache__"))
    # Root ignores permission bits, so the directories Numba would create
    # lie below regular files instead: creating them fails for anyone.
    (site / "fastbp" / "__pycache__").write_text("")
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = dict(os.environ, PYTHONPATH=str(site), HOME=str(blocker / "home"),
               XDG_CACHE_HOME=str(blocker / "cache"), **extra)
    env.pop("NUMBA_CACHE_DIR", None)
    return env


def test_import_with_nowhere_to_cache_compiles_in_memory_and_warns_once(tmp_path):
    """A read-only installed package and an unusable home: Numba's cache=True
    finds no directory and raised at import."""
    result = _run(EPOCH_KEY, _nowhere_to_cache(tmp_path), tmp_path)
    assert result["key"] == _expected_epoch_key(7, 3)
    assert len(result["warnings"]) == 1
    assert "NUMBA_CACHE_DIR" in result["warnings"][0]
    assert result["cache_path"] is None


def test_with_nowhere_to_cache_a_fit_compiles_everything_itself(tmp_path):
    """No helper can hand code over without a disk cache: the first fit, which
    looks for a cold cache to start helpers, must still run (it raised on the
    cache's missing directory)."""
    result = _run(FIT_WITHOUT_CACHE, _nowhere_to_cache(tmp_path, FASTBP_COMPILE_HELPERS="1"), tmp_path)
    assert result == {"misses": 1, "processes": 0}


# A small fit: whether the epoch compiled in its process, and how many
# processes it started, as JSON.
FIT_WITHOUT_CACHE = """
    import json, subprocess, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    started = []
    original = subprocess.Popen.__init__
    def spy(self, *args, **kwargs):
        started.append(args)
        original(self, *args, **kwargs)
    subprocess.Popen.__init__ = spy
    from fastbp import MLPClassifier, _loop
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), np.arange(40) % 3
    MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    print(json.dumps({"misses": sum(_loop.run_epoch_dense._cache_misses.values()), "processes": len(started)}))
"""


def test_an_entry_goes_stale_when_any_module_of_the_package_changes(tmp_path):
    """A cached entry holds the code of the kernels its function calls, from
    other modules too: editing _kernels.py must not leave _loop's or
    _dropout's entries running the old kernels (Numba itself checks only the
    function's own file)."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "fastbp"), site / "fastbp", ignore=shutil.ignore_patterns("__pycache__"))
    # An editor's lock file beside the modules, a dangling link: no module, and no error.
    (site / "fastbp" / ".#_mlp.py").symlink_to(tmp_path / "nowhere")
    env = dict(os.environ, PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert _run(EPOCH_KEY, env, tmp_path)["misses"] == 1
    assert (_run(EPOCH_KEY, env, tmp_path)["hits"], _run(EPOCH_KEY, env, tmp_path)["misses"]) == (1, 0)
    other = site / "fastbp" / "_kernels.py"
    stat = other.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    stale = _run(EPOCH_KEY, env, tmp_path)
    assert (stale["hits"], stale["misses"], stale["key"]) == (0, 1, _expected_epoch_key(7, 3))
    assert _run(EPOCH_KEY, env, tmp_path)["hits"] == 1


def _zero(data):
    return b""


def _truncate(data):
    return data[: len(data) // 2]


def _garble(data):
    return bytes(range(256)) * (len(data) // 256 + 1)


def _flip_middle(data):
    """Keep the file's start readable and spoil its middle: in a data file,
    the compiled code."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 200]) + data[middle + 200:]


def _cache_env(cache_dir):
    return dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
                PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))


def _cache_file(cache_dir, pattern):
    (path,) = cache_dir.glob(f"*/{pattern}")
    return path


@pytest.fixture(scope="module")
def populated_cache(tmp_path_factory):
    """A Numba cache holding the epoch key and both activate_rows entries."""
    root = tmp_path_factory.mktemp("populated")
    _run(EPOCH_KEY + ACTIVATE_ROWS, _cache_env(root / "cache"), root)
    return root / "cache"


@pytest.mark.parametrize("suffix", [".nbi", ".1.nbc"])
@pytest.mark.parametrize("damage", [_zero, _truncate, _garble, _flip_middle])
def test_damaged_cache_entry_is_compiled_again_and_rewritten(populated_cache, tmp_path, suffix, damage):
    """Each used to fail every later process (EOFError, UnpicklingError,
    UnicodeDecodeError, LLVM bitcode parsing error), naming no cache file."""
    cache_dir = tmp_path / "cache"
    shutil.copytree(populated_cache, cache_dir)
    path = _cache_file(cache_dir, f"_dropout._epoch_key-*.py*{suffix}")
    path.write_bytes(damage(path.read_bytes()))
    env = _cache_env(cache_dir)

    healing = _run(EPOCH_KEY, env, tmp_path)
    assert healing["key"] == _expected_epoch_key(7, 3)
    assert healing["misses"] == 1
    (warning,) = healing["warnings"]
    assert "_epoch_key" in warning and healing["cache_path"] in warning

    healed = _run(EPOCH_KEY, env, tmp_path)
    assert healed["key"] == _expected_epoch_key(7, 3)
    assert (healed["hits"], healed["misses"], healed["warnings"]) == (1, 0, [])


def test_data_file_of_another_signature_is_compiled_again_and_rewritten(populated_cache, tmp_path):
    """Two processes numbering new entries at once can leave an index entry
    pointing at another signature's code; the call then failed with "can't
    unbox array" in every later process."""
    cache_dir = tmp_path / "cache"
    shutil.copytree(populated_cache, cache_dir)
    first = _cache_file(cache_dir, "_activations.activate_rows-*.1.nbc")
    second = _cache_file(cache_dir, "_activations.activate_rows-*.2.nbc")
    first_data = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_data)
    env = _cache_env(cache_dir)

    assert _run(ACTIVATE_ROWS, env, tmp_path) == {"ok": True, "hits": 0, "misses": 2}
    assert _run(ACTIVATE_ROWS, env, tmp_path) == {"ok": True, "hits": 2, "misses": 0}


# A disk that fills up at 4 KiB: a write beyond it fails with EFBIG (SIGXFSZ
# ignored), as one on a full disk fails with ENOSPC.
DISK_FULL = """
    import resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
"""


@pytest.mark.skipif(os.name != "posix", reason="file size limits are POSIX")
def test_a_cache_entry_that_cannot_be_written_costs_time_only(tmp_path):
    """Numba let the error writing an entry escape from the call that had just
    compiled the code (OSError: File too large): the call now runs, with one
    warning, and a later process compiles and caches the kernel."""
    env = _cache_env(tmp_path / "cache")
    full = _run(DISK_FULL + EPOCH_KEY, env, tmp_path)
    assert (full["key"], full["misses"]) == (_expected_epoch_key(7, 3), 1)
    (warning,) = full["warnings"]
    assert "could not write" in warning and full["cache_path"] in warning
    assert _run(EPOCH_KEY, env, tmp_path)["misses"] == 1
    assert (_run(EPOCH_KEY, env, tmp_path)["hits"], _run(EPOCH_KEY, env, tmp_path)["warnings"]) == (1, [])


# Root writes to read-only files and directories: it runs without the
# capabilities that let it (setpriv is util-linux's), as any other user would.
_AS_ANY_USER = (("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner") if os.name == "posix"
                and os.geteuid() == 0 else ())


def _can_run_as_any_user():
    if os.name != "posix":
        return False
    if not _AS_ANY_USER:
        return True
    try:
        return subprocess.run([*_AS_ANY_USER, "true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(not _can_run_as_any_user(), reason="needs POSIX permissions, and setpriv to drop root's")
def test_a_warm_read_only_cache_is_loaded_where_nothing_can_be_written(tmp_path):
    """A cache filled at an image's build and run read-only, with no writable
    home: Numba passed over the directory it cannot write to, and every
    process compiled everything."""
    cache_dir = tmp_path / "cache"
    env = dict(_nowhere_to_cache(tmp_path), NUMBA_CACHE_DIR=str(cache_dir))
    assert _run(EPOCH_KEY, env, tmp_path)["misses"] == 1
    paths = [cache_dir, *cache_dir.rglob("*")]
    try:
        for path in paths:
            path.chmod(path.stat().st_mode & ~0o222)
        loaded = _run(EPOCH_KEY, env, tmp_path, prefix=_AS_ANY_USER)
        assert (loaded["key"], loaded["hits"], loaded["misses"], loaded["warnings"]) == (
            _expected_epoch_key(7, 3), 1, 0, [])
        assert loaded["cache_path"].startswith(str(cache_dir))
        # Not in the cache: compiled and run, the entry not written.
        assert _run(ACTIVATE_ROWS, env, tmp_path, prefix=_AS_ANY_USER) == {"ok": True, "hits": 0, "misses": 2}
        assert sorted(cache_dir.rglob("*")) == sorted(paths[1:])
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.mark.skipif(not _can_run_as_any_user(), reason="needs POSIX permissions, and setpriv to drop root's")
def test_a_writable_home_caches_what_a_read_only_cache_lacks(tmp_path):
    """The read-only directory comes after Numba's writable ones: with a home
    to write to, a kernel it lacks is cached there for the next process."""
    cache_dir = tmp_path / "cache"
    env = dict(_nowhere_to_cache(tmp_path), NUMBA_CACHE_DIR=str(cache_dir))
    _run(EPOCH_KEY, env, tmp_path)
    paths = [cache_dir, *cache_dir.rglob("*")]
    home = dict(env, XDG_CACHE_HOME=str(tmp_path / "home-cache"))
    try:
        for path in paths:
            path.chmod(path.stat().st_mode & ~0o222)
        runs = [_run(ACTIVATE_ROWS, home, tmp_path, prefix=_AS_ANY_USER) for _ in range(2)]
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)
    assert runs == [{"ok": True, "hits": 0, "misses": 2}, {"ok": True, "hits": 2, "misses": 0}]


def test_the_package_imported_from_a_zip_file_runs_and_caches(tmp_path):
    """_package_stamp listed the package's folder, which inside a zip file is
    none: NotADirectoryError at the first kernel."""
    import zipfile

    archive = tmp_path / "fastbp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in sorted(os.listdir(os.path.join(REPO, "fastbp"))):
            if name.endswith(".py"):
                zf.write(os.path.join(REPO, "fastbp", name), f"fastbp/{name}")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(archive))
    first = _run(EPOCH_KEY + f"    assert _dropout.__file__.startswith({str(archive)!r})\n", env, tmp_path)
    assert (first["key"], first["misses"], first["warnings"]) == (_expected_epoch_key(7, 3), 1, [])
    assert _run(EPOCH_KEY, env, tmp_path)["hits"] == 1


# Two kernels of two modules, and the RuntimeWarnings their calls raised, as JSON.
TWO_KERNELS = """
    import json, warnings
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from fastbp import _activations, _dropout
        key = _dropout.epoch_key(7, 3)
        a = np.array([[-1.0, 2.0]])
        _activations.activate_rows(_activations.RELU, a, 0, 1)
    misses = [sum(f.stats.cache_misses.values()) for f in (_dropout._epoch_key, _activations.activate_rows)]
    print(json.dumps({"ok": int(key) > 0 and a.tolist() == [[0.0, 2.0]], "misses": misses,
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
"""


def test_a_damaged_cache_directory_warns_once_per_process(populated_cache, tmp_path):
    """Every index garbled: one warning, for the first entry, the others
    compiled again and rewritten alike (a fit printed two dozen)."""
    cache_dir = tmp_path / "cache"
    shutil.copytree(populated_cache, cache_dir)
    for index in cache_dir.glob("*/*.nbi"):
        index.write_bytes(_garble(index.read_bytes()))
    result = _run(TWO_KERNELS, _cache_env(cache_dir), tmp_path)
    assert result["ok"] and result["misses"] == [1, 1]
    (warning,) = result["warnings"]
    assert "could not load" in warning and "without a further warning" in warning
    assert _run(TWO_KERNELS, _cache_env(cache_dir), tmp_path) == {"ok": True, "misses": [0, 0], "warnings": []}


# A forward pass in a fresh process, and what it compiled, as JSON.
FORWARD_ONLY = """
    import json, numpy as np
    import fastbp
    from fastbp import _loop
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    intercepts = [np.zeros(4), np.zeros(2)]
    X = rng.normal(size=(5, 3))
    out = fastbp.forward(coefs, intercepts, X, activation="tanh", out_activation="identity")
    expected = np.tanh(X @ coefs[0] + intercepts[0]) @ coefs[1] + intercepts[1]
    print(json.dumps({"close": bool(np.allclose(out, expected, rtol=1e-12)),
                      "compiled": sorted(f"{index} {general}" for (index, general), region in _loop._REGIONS.items()
                                         if region.signatures)}))
"""


def test_a_forward_pass_in_a_fresh_process_compiles_only_the_forward_region(tmp_path):
    """Neither training region: no loss or backward kernels for a model fitted elsewhere."""
    result = _run(FORWARD_ONLY, _cache_env(tmp_path / "cache"), tmp_path)
    assert result == {"close": True, "compiled": ["2 False"]}
    cached = {path.name.split("-")[0] for path in (tmp_path / "cache").rglob("*.nbi")}
    assert "_loop.forward_share_dense" in cached
    assert not cached & {"_kernels.backward_rows", "_losses.output_delta", "_losses.sample_loss",
                         "_loop.gather_rows", "_kernels.forward_rows_sparse"}


# A CSR forward pass, then dense ones, in a fresh process: what they gave,
# compiled and looked up in the disk cache, as JSON.
CSR_THEN_DENSE = """
    import json, numpy as np, scipy.sparse as sp
    from fastbp import _loop
    from fastbp._activations import ACTIVATION_CODES
    from fastbp._params import pack
    rng = np.random.default_rng(0)
    params = pack([rng.normal(size=(6, 4)), rng.normal(size=(4, 3))], [np.zeros(4), np.zeros(3)], np.float64)
    units, X = np.array([6, 4, 3]), rng.normal(size=(9, 6))
    codes = ACTIVATION_CODES["relu"], ACTIVATION_CODES["softmax"]
    sparse = _loop.predict(params, units, sp.csr_matrix(X), *codes, 1)
    probes, load_cached = [], _loop.load_cached
    _loop.load_cached = lambda *args: probes.append(args) or load_cached(*args)
    dense = [_loop.predict(params, units, X, *codes, 1) for _ in range(2)]
    print(json.dumps({"same": all(np.array_equal(sparse, d) for d in dense), "probes": len(probes),
                      "compiled": {name: len(getattr(_loop, name).signatures) for name in (
                          "run_epoch", "run_epoch_dense", "forward_share", "forward_share_dense",
                          "forward_backward_share", "forward_backward_share_dense")}}))
"""


def test_dense_rows_after_csr_rows_take_the_general_versions_at_hand_and_read_no_cache_index(tmp_path):
    """A dense forward pass runs the same in the general versions: after a CSR
    one it compiles neither the dense epoch nor a dense region, and no later
    call looks a region up in the disk cache (each look is a file read, 10x a
    one-row predict)."""
    result = _run(CSR_THEN_DENSE, _cache_env(tmp_path / "cache"), tmp_path)
    assert result == {"same": True, "probes": 0, "compiled": {
        "run_epoch": 1, "run_epoch_dense": 0, "forward_share": 1, "forward_share_dense": 0,
        "forward_backward_share": 0, "forward_backward_share_dense": 0}}


# A fit and predict in a fresh process ("fit"), or a predict by the model it
# pickled in another with that cache ("load"): what each compiled, as JSON.
FIT_THEN_PREDICT = """
    import json, pickle, warnings, numpy as np
    from fastbp import MLPClassifier, _loop
    warnings.simplefilter("ignore")
    X = np.random.default_rng(0).normal(size=(60, 5))
    if MODE == "fit":
        model = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, np.arange(60) % 3)
        pickle.dump(model, open("model.pkl", "wb"))
    else:
        model = pickle.load(open("model.pkl", "rb"))
    proba = model.predict_proba(X)
    print(json.dumps({"compiled": {name: sum(region._cache_misses.values()) for name, region in (
                          ("training", _loop.forward_backward_share_dense), ("forward", _loop.forward_share_dense))},
                      "proba": proba.tolist()}))
"""


def test_a_predict_takes_the_training_region_a_fit_compiled_or_cached(tmp_path):
    """A fitted process predicts through the region 1 it trained with, and a
    predict with the fit's cache loads it: neither compiles the forward-only
    region, and the bits are the same."""
    env = _cache_env(tmp_path / "cache")
    fitted = _run(FIT_THEN_PREDICT.replace("MODE", '"fit"'), env, tmp_path)
    loaded = _run(FIT_THEN_PREDICT.replace("MODE", '"load"'), env, tmp_path)
    assert fitted["compiled"] == {"training": 1, "forward": 0}
    assert loaded["compiled"] == {"training": 0, "forward": 0}
    assert loaded["proba"] == fitted["proba"]


# What a fit, a predict and a Jacobian load after fastbp.warmup, as JSON.
AFTER_WARMUP = """
    import json, warnings, numpy as np, scipy.sparse as sp
    import fastbp
    from fastbp import MLPClassifier
    from fastbp._cache import compiled_signatures
    warnings.simplefilter("ignore")
    fastbp.warmup("float32")
    before = compiled_signatures()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.arange(40) % 3
    for data in (X, sp.csr_matrix(X)):
        for dropout in (0.0, 0.3):
            model = MLPClassifier((5,), dropout=dropout, max_iter=2, random_state=0).fit(data, y)
            model.predict_proba(X), model.predict_proba(sp.csr_matrix(X))
    for solver in ("adam", "lbfgs"):
        MLPClassifier((5,), solver=solver, record_gradient_norms=True, max_iter=2, random_state=0).fit(X, y)
    fastbp.jacobian(model, X[:2])
    print(json.dumps(sorted(set(compiled_signatures().items()) - set(before.items()))))
"""


def test_warmup_compiles_or_loads_what_dense_csr_and_dropout_fits_use(tmp_path):
    """A dense fit without dropout compiles only its own regions; warmup
    prepares the general ones too, so nothing is left to compile after it."""
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or tmp_path / "cache"
    assert _run(AFTER_WARMUP, _cache_env(cache_dir), tmp_path) == []


@pytest.mark.parametrize("dtypes", [None, 5, ("float64", None), b"float64"])
def test_warmup_names_a_dtypes_argument_it_cannot_read(dtypes):
    """None would read as float64 to NumPy, an int as not iterable to Python,
    bytes as type numbers ("Cannot interpret '102' as a data type")."""
    import fastbp

    with pytest.raises(TypeError, match=r"dtypes should be a dtype, its name, or a tuple of them; got "):
        fastbp.warmup(dtypes)


def test_warmup_takes_dtypes_from_any_iterable():
    import fastbp

    assert sorted(fastbp.warmup(name for name in ["float32", "float64"])) == ["float32", "float64"]


# A cold first fit in a fresh process: its weights, and whether each entry
# point was compiled there or loaded from the cache, as JSON.
COLD_FIT = """
    import json, numpy as np
    from sklearn.datasets import load_digits
    from fastbp import MLPClassifier, _loop
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier((16,), max_iter=3, random_state=0).fit(X[:300] / 16, y[:300])
    compiled = {name: sum(getattr(_loop, name)._cache_misses.values())
                for name in ("forward_backward_share_dense", "gradient_task_dense", "run_epoch_dense")}
    print(json.dumps({"weights": [w.tolist() for w in model.coefs_ + model.intercepts_], "compiled": compiled}))
"""


def test_a_cold_first_fit_takes_region_2_and_the_epoch_from_a_helper_with_the_same_weights(tmp_path):
    """The helper's code is the code this process would compile: the weights
    match a fit here bit for bit."""
    from sklearn.datasets import load_digits

    from fastbp import MLPClassifier

    env = dict(_cache_env(tmp_path / "cache"), FASTBP_COMPILE_HELPERS="1")
    result = _run(COLD_FIT, env, tmp_path)
    assert result["compiled"] == {"forward_backward_share_dense": 1, "gradient_task_dense": 0, "run_epoch_dense": 0}
    # Neither process typed or compiled the general versions or the CSR, dropout
    # and norm kernels: each compiled function caches an entry of its own.
    cached = {path.name.split("-")[0] for path in (tmp_path / "cache").rglob("*.nbi")}
    assert "_loop.forward_backward_share_dense" in cached
    assert not cached & {"_loop.run_epoch", "_loop.forward_backward_share", "_loop.gradient_task",
                         "_kernels.forward_rows_sparse", "_kernels.coef_grad_rows_sparse", "_kernels.batch_csr_to_csc",
                         "_dropout.drop_rows", "_dropout.undropped_rows", "_loop.add_layer_norms"}
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier((16,), max_iter=3, random_state=0).fit(X[:300] / 16, y[:300])
    assert result["weights"] == [w.tolist() for w in model.coefs_ + model.intercepts_]


# A fit with dropout in a fresh process, then predict on dense rows, as JSON.
DROPOUT_THEN_PREDICT = """
    import json, warnings, numpy as np
    from sklearn.datasets import load_digits
    from fastbp import MLPClassifier, _loop
    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier((16,), dropout=0.2, early_stopping=True, max_iter=3, random_state=0).fit(X[:300] / 16,
                                                                                                  y[:300])
    general = model.predict_proba(X / 16)
    dense_versions = len(_loop.forward_backward_share_dense.overloads) + len(_loop.run_epoch_dense.overloads)
    _loop.region_address(np.float64, 0, False)
    dense = model.predict_proba(X / 16)
    print(json.dumps({"dense versions": dense_versions, "same": bool(np.array_equal(general, dense)),
                      "dense now": len(_loop.run_epoch_dense.overloads)}))
"""


def test_a_model_fitted_with_dropout_predicts_through_the_general_versions_it_compiled(tmp_path):
    """Its validation rows and a predict take the general region 1 and epoch
    rather than compile the dense ones too, and get the bits the dense ones
    give once those are there."""
    result = _run(DROPOUT_THEN_PREDICT, _cache_env(tmp_path / "cache"), tmp_path)
    assert result == {"dense versions": 0, "same": True, "dense now": 1}


def _copy_job(tmp_path, name):
    """A job that leaves a file behind: proof a helper ran it, with its arguments."""
    source = tmp_path / "source"
    source.write_text("done")
    return ("shutil", "copyfile", (str(source), str(tmp_path / name)))


def _wait_for(path):
    import time

    for _ in range(600):
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"no helper made {path}")


def _made(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in ("source", "cache"))


def test_helpers_run_their_jobs_in_order_and_the_body_meanwhile(tmp_path, monkeypatch):
    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "2")
    body = []
    jobs = [_copy_job(tmp_path, "a"), _copy_job(tmp_path, "b"), ("os", "remove", (str(tmp_path / "a"),))]
    with compiling_elsewhere(jobs, str(tmp_path)):
        body.append(True)
    # Two helpers: jobs 0 and 2 (copy a, then remove it) in one, job 1 in the other.
    assert body == [True]
    assert _made(tmp_path) == ["b"]


@pytest.mark.parametrize("optimize, dont_write_bytecode", [(0, False), (2, True)])
def test_a_helper_runs_with_this_processs_optimization_and_bytecode_flags(tmp_path, monkeypatch, optimize,
                                                                          dont_write_bytecode):
    """-OO strips the docstrings, and so changes the code objects Numba's cache
    key hashes: a helper without it cached entries the fit never found. -I
    alone would drop -B (PYTHONDONTWRITEBYTECODE) too."""
    import types

    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    monkeypatch.setattr(sys, "flags", types.SimpleNamespace(optimize=optimize))
    monkeypatch.setattr(sys, "dont_write_bytecode", dont_write_bytecode)
    record = ("import sys; open(%r, 'w').write(repr((sys.flags.optimize, sys.dont_write_bytecode)))"
              % str(tmp_path / "flags"))
    with compiling_elsewhere([("builtins", "exec", (record,))], str(tmp_path)):
        pass
    assert (tmp_path / "flags").read_text() == repr((optimize, dont_write_bytecode))


@pytest.mark.parametrize("executable", ["/nonexistent/python3", "/usr/bin/uwsgi"])
def test_without_a_python_to_start_the_body_runs_alone(tmp_path, monkeypatch, executable):
    from fastbp._cache import compiling_elsewhere, helper_processes

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    monkeypatch.setattr(sys, "executable", executable)
    assert helper_processes(1) == (1 if executable.endswith("python3") else 0)
    with compiling_elsewhere([_copy_job(tmp_path, "copy")], str(tmp_path)):
        pass
    assert _made(tmp_path) == []


def test_a_helper_that_crashes_leaves_the_rest_of_its_work_to_this_process(tmp_path, monkeypatch):
    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([_copy_job(tmp_path, "started"), ("os", "_exit", (3,)), _copy_job(tmp_path, "after")],
                             str(tmp_path)):
        pass
    assert _made(tmp_path) == ["started"]


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_helper_past_the_timeout_or_interrupted_is_stopped(tmp_path, monkeypatch, interrupt):
    """Stopped in its second job: the file its third would copy never appears."""
    import time

    from fastbp import _cache

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    monkeypatch.setattr(_cache, "HELPER_TIMEOUT", 60.0 if interrupt else 0.2)
    jobs = [_copy_job(tmp_path, "started"), ("time", "sleep", (1.5,)), _copy_job(tmp_path, "after")]
    with pytest.raises(KeyboardInterrupt) if interrupt else contextlib.nullcontext():
        with _cache.compiling_elsewhere(jobs, str(tmp_path)):
            _wait_for(tmp_path / "started")
            if interrupt:
                raise KeyboardInterrupt
    time.sleep(2.0)
    assert _made(tmp_path) == ["started"]


@pytest.mark.skipif(not hasattr(os, "setsid"), reason="process sessions are POSIX")
def test_a_helper_runs_in_a_session_of_its_own(tmp_path, monkeypatch):
    """So that a Ctrl-C at the terminal reaches the fit, not the helper: setsid
    fails (EPERM) in a process that already leads its own session, and the
    helper stops before its last job."""
    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([_copy_job(tmp_path, "started"), ("os", "setsid", ()), _copy_job(tmp_path, "after")],
                             str(tmp_path)):
        pass
    assert _made(tmp_path) == ["started"]


def test_a_second_cold_fit_meanwhile_starts_no_helpers_of_its_own(tmp_path, monkeypatch):
    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([_copy_job(tmp_path, "first"), ("time", "sleep", (0.5,))], str(tmp_path)):
        _wait_for(tmp_path / "first")
        with compiling_elsewhere([_copy_job(tmp_path, "second")], str(tmp_path)):
            pass
    with compiling_elsewhere([_copy_job(tmp_path, "third")], str(tmp_path)):
        pass
    assert _made(tmp_path) == ["first", "third"]


def test_a_fit_killed_outright_leaves_a_marker_the_next_fit_takes_over(tmp_path, monkeypatch):
    """Its helpers are gone with it: the next cold fit starts its own at once
    rather than after HELPER_TIMEOUT."""
    from fastbp._cache import compiling_elsewhere

    if os.name != "posix":
        pytest.skip("a marker's owner is checked on POSIX only")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "fastbp-compile-helpers.running").write_text(dead.stdout.strip())
    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([_copy_job(tmp_path, "copy")], str(tmp_path)):
        pass
    assert _made(tmp_path) == ["copy"]
    (tmp_path / "fastbp-compile-helpers.running").write_text(str(os.getpid()))
    with compiling_elsewhere([_copy_job(tmp_path, "second")], str(tmp_path)):
        pass
    assert _made(tmp_path) == ["copy", "fastbp-compile-helpers.running"]


def test_no_file_of_the_current_directory_stands_in_for_a_standard_module(tmp_path, monkeypatch):
    """A Jupyter kernel puts '' first on sys.path; a notebook folder's token.py
    then ran in the helper when Numba imported the standard token module."""
    from fastbp._cache import compiling_elsewhere

    (tmp_path / "token.py").write_text(f"open({str(tmp_path / 'shadowed')!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [""] + sys.path)
    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([("importlib", "import_module", ("tokenize",)), _copy_job(tmp_path, "after")],
                             str(tmp_path)):
        pass
    assert _made(tmp_path) == ["after", "token.py"]


def test_a_helper_whose_numba_settings_differ_compiles_nothing(tmp_path, monkeypatch):
    """Bounds checks, say, are not in the cache's key: a helper compiling with
    them would leave this process loading bounds-checked code."""
    from numba.core import config

    from fastbp._cache import compiling_elsewhere

    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    monkeypatch.setattr(config, "BOUNDSCHECK", 0 if config.BOUNDSCHECK else 1)
    with compiling_elsewhere([_copy_job(tmp_path, "copy")], str(tmp_path)):
        pass
    monkeypatch.undo()
    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    with compiling_elsewhere([_copy_job(tmp_path, "same")], str(tmp_path)):
        pass
    assert _made(tmp_path) == ["same"]


def test_helper_count_follows_the_cores_unless_set(monkeypatch):
    from fastbp._cache import helper_processes

    monkeypatch.delenv("FASTBP_COMPILE_HELPERS", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert [helper_processes(n) for n in (0, 1, 2, 5)] == [min(n, cores - 1) for n in (0, 1, 2, 5)]
    # A pool worker leaves the cores to its siblings, unless told otherwise.
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    assert [helper_processes(n) for n in (0, 1, 2)] == [0, 0, 0]
    monkeypatch.setenv("FASTBP_COMPILE_HELPERS", "1")
    assert helper_processes(2) == 1
    monkeypatch.undo()
    for setting, expected in (("0", [0, 0, 0]), ("1", [0, 1, 1]), ("3", [0, 1, 2]), ("many", None)):
        monkeypatch.setenv("FASTBP_COMPILE_HELPERS", setting)
        expected = expected or [min(n, cores - 1) for n in (0, 1, 2)]
        assert [helper_processes(n) for n in (0, 1, 2)] == expected


@pytest.mark.parametrize("v2, v1, cores", [("max 100000", None, None), ("150000 100000", None, 1),
                                           ("400000 100000", None, 4), (None, ("-1", "100000"), None),
                                           (None, ("100000", "100000"), 1), ("garbled", None, None)])
def test_a_containers_cpu_quota_caps_the_helpers(tmp_path, monkeypatch, v2, v1, cores):
    """A container limited to 1.5 CPUs on a large host sees every core in its affinity."""
    from fastbp import _cache

    files = [tmp_path / name for name in ("cpu.max", "quota", "period")]
    for path, text in zip(files, [v2, *(v1 or (None, None))]):
        if text is not None:
            path.write_text(text + "\n")
    monkeypatch.setattr(_cache, "_CPU_QUOTA_FILES", ((str(files[0]), None), (str(files[1]), str(files[2]))))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("FASTBP_COMPILE_HELPERS", raising=False)
    assert _cache._usable_cores() == (8 if cores is None else cores)
