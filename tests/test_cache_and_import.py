"""Numba's on-disk cache at its edges: an install with nowhere to cache, and
damaged cache files. Each case runs in fresh processes, on one small kernel
(the dropout epoch key, under a second to compile) to keep compiles short."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

from fastbp._dropout import _GOLDEN, _MIX_1, _MIX_2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def _run(code, env, cwd):
    """Run code in a fresh process; cwd is where `python -c` looks first for
    packages, so never the repository when PYTHONPATH names another copy."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_import_with_nowhere_to_cache_compiles_in_memory_and_warns_once(tmp_path):
    """A read-only installed package and an unusable home: Numba's cache=True
    finds no directory and raised at import."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "fastbp"), site / "fastbp", ignore=shutil.ignore_patterns("__pycache__"))
    # Root ignores permission bits, so the directories Numba would create
    # lie below regular files instead: creating them fails for anyone.
    (site / "fastbp" / "__pycache__").write_text("")
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = dict(os.environ, PYTHONPATH=str(site), HOME=str(blocker / "home"),
               XDG_CACHE_HOME=str(blocker / "cache"))
    env.pop("NUMBA_CACHE_DIR", None)
    result = _run(EPOCH_KEY, env, tmp_path)
    assert result["key"] == _expected_epoch_key(7, 3)
    assert len(result["warnings"]) == 1
    assert "NUMBA_CACHE_DIR" in result["warnings"][0]
    assert result["cache_path"] is None
