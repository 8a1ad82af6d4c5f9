"""Numba's on-disk cache for fastbp's kernels: whether it can live anywhere,
and recovery from an entry that cannot be loaded.

Numba's own cache raises at decoration time (so at ``import fastbp``) when it
finds no writable directory, and lets any error from a damaged entry escape
into every later call, in every later process. Here the first case compiles
in memory instead, and the second compiles the function again and overwrites
the entry.
"""

import functools
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

import numba
from numba.core import config, sigutils
from numba.core.caching import (CompileResultCacheImpl, FunctionCache, InTreeCacheLocator,
                                 UserProvidedCacheLocator)
from numba.core.compiler import Compiler
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher


def _probe():
    """A function of this package for Numba to look for a cache directory for."""


class _WarmReadOnly:
    """A locator that also takes a directory it cannot write to, if it holds
    cache entries, where no directory can be written: a cache filled when an
    image was built, then run on a read-only file system or as another user
    with no writable home. Numba's own locators pass over it, and every
    process compiled everything again, 15-25 s a fit; the entries it lacks
    (or holds for another CPU) compile in each process, which nothing could
    cache anyway (see SelfHealingCache.save_overload)."""

    def ensure_cache_path(self):
        if not any(name.endswith(".nbi") for name in os.listdir(self.get_cache_path())):
            raise OSError("a read-only cache directory without entries")


class _WarmUserProvidedLocator(_WarmReadOnly, UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR, read-only and warm."""


class _WarmInTreeLocator(_WarmReadOnly, InTreeCacheLocator):
    """The package's __pycache__, read-only and warm."""


class _CacheImpl(CompileResultCacheImpl):
    # Numba's order, then the warm read-only directories: a writable one (a user's home)
    # caches what a read-only one lacks, or holds for another CPU, for the next process.
    _locator_classes = [*CompileResultCacheImpl._locator_classes, _WarmUserProvidedLocator, _WarmInTreeLocator]


def disk_cache_available():
    """Whether Numba can cache fastbp's kernels on disk; warn once if not.

    Numba picks the directory per source file (``NUMBA_CACHE_DIR``, else the
    package's ``__pycache__``, else a user cache directory) and checks it by
    writing to it; failing that, one of the first two that holds entries is
    read from (see _WarmReadOnly). Every kernel module sits in this file's
    directory, so one probe answers for all of them.

    Returns
    -------
    bool
        False, with a RuntimeWarning, when no directory is writable or warm.
    """
    try:
        SelfHealingCache(_probe)
    except RuntimeError as exc:
        given = f" (NUMBA_CACHE_DIR={config.CACHE_DIR!r} is not one)" if config.CACHE_DIR else ""
        warnings.warn(
            f"fastbp cannot cache its compiled kernels on disk ({exc}): they are compiled "
            f"again in every process. Set NUMBA_CACHE_DIR to a writable directory to cache them{given}.",
            RuntimeWarning, stacklevel=2,
        )
        return False
    return True


@functools.lru_cache(maxsize=None)
def _package_stamp():
    """(name, mtime, size) of every module of this package; of the archive
    itself for a package imported from a zip file, which holds them all."""
    folder = os.path.dirname(os.path.abspath(__file__))
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        archive = folder
        while archive and not os.path.isfile(archive):
            parent = os.path.dirname(archive)
            archive = parent if parent != archive else ""
        try:
            st = os.stat(archive)
        except OSError:
            return ()
        return ((os.path.basename(archive), st.st_mtime, st.st_size),)
    stamp = []
    for name in names:
        # An editor's lock file (.#_mlp.py, a dangling link) or a module removed
        # meanwhile is no module of the package: it must not fail the first fit.
        if name.endswith(".py") and not name.startswith("."):
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            stamp.append((name, st.st_mtime, st.st_size))
    return tuple(stamp)


# The kinds of cache trouble this process has warned of (see _warn_once).
_warned = set()


def _warn_once(kind, message):
    """A RuntimeWarning for the first cache entry with a kind of trouble in
    this process: a whole damaged or unwritable cache directory otherwise gave
    one warning per kernel, two dozen in a fit."""
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(f"{message} Any other entry with this problem in this process is handled alike, without a "
                      "further warning.", RuntimeWarning, stacklevel=3)


class SelfHealingCache(FunctionCache):
    """Numba's per-function disk cache, taking an entry it cannot load as a
    miss and one it cannot write as a loss of time only.

    A truncated, empty or garbled index or data file makes Numba's loader raise
    (EOFError, UnpicklingError, an LLVM bitcode error, ...); a data file that
    holds another signature's code (two processes numbering new entries at
    once) loads, and fails at the call ("can't unbox array"). Either way the
    function's index is emptied, with a warning, and the dispatcher compiles
    the function and writes a fresh entry, so the next process loads it again.
    Numba lets an error writing an entry (a full disk, a shared cache
    directory whose files another user owns) escape from the call that has
    just compiled the code: here the code runs, uncached, with a warning.
    """

    _impl_class = _CacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)
        # An entry holds the code of every kernel the function calls, from
        # other modules too: stale when any module of the package changes,
        # not only the function's own file (Numba's own rule).
        self._cache_file._source_stamp = (self._cache_file._source_stamp, _package_stamp())

    def load_overload(self, sig, target_context):
        try:
            cres = super().load_overload(sig, target_context)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            # The dispatcher keys its overloads by these same argument types,
            # so a sound entry always matches.
            args, _ = sigutils.normalize_signature(sig)
            if cres is None or tuple(cres.signature.args) == tuple(args):
                return cres
            problem = f"it holds the code for {cres.signature.args}, not {args}"
        _warn_once("load", f"fastbp could not load {self._py_func.__qualname__} from Numba's cache in "
                           f"{self.cache_path} ({problem}); it is compiled again and its cache entry rewritten.")
        # An empty index drops every entry of the function, so the rewrite
        # takes a fresh data file rather than the one another signature's
        # entry may still point to.
        try:
            self.flush()
        except OSError:
            # Not rewritable either: the save after the compile says so.
            pass
        return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError as exc:
            _warn_once("save", f"fastbp could not write {self._py_func.__qualname__} to Numba's cache in "
                               f"{self.cache_path} ({type(exc).__name__}: {exc}); the code compiled in this process "
                               "runs, and a later process compiles it again.")


class CompiledOnlyDispatcher(CPUDispatcher):
    """A dispatcher whose code has no CPython wrapper, for the functions only
    compiled code calls in a fit or a predict (the kernels and the helpers
    between them).

    Numba builds a wrapper that unboxes Python arguments for every function
    it compiles, callees included, and optimizes and emits it with the
    function, for code no fit or predict runs: leaving it out saved a cold
    float64 first fit 1.8 s on average, in each of 11 rounds in turns
    (float32 moved less than the noise). A Python call of such a function
    would jump to a wrapper that does not exist, so Python calls go to a twin
    compiled with one, made on first use and never cached: the on-disk index
    does not tell entries with and without a wrapper apart. Only tests and
    direct users of the kernels make twins; ``twins`` lists them.
    """

    twins = {}

    def python_twin(self):
        """The twin Python calls go to: this function, with a CPython wrapper."""
        name = f"{self.py_func.__module__}.{self.py_func.__qualname__}"
        twin = CompiledOnlyDispatcher.twins.get(name)
        if twin is None:
            twin = CompiledOnlyDispatcher.twins[name] = CPUDispatcher(
                self.py_func, self.locals, dict(self.targetoptions, no_cpython_wrapper=False),
                self._compiler.pipeline_class)
        return twin

    def __call__(self, *args, **kwargs):
        return self.python_twin()(*args, **kwargs)


def njit(name=None, **options):
    """``numba.njit(**options)``, with :class:`SelfHealingCache` as the
    on-disk cache when ``options["cache"]`` is true, and a
    :class:`CompiledOnlyDispatcher` when ``options["no_cpython_wrapper"]`` is.
    `name` renames a function that a factory makes once per version: the disk
    cache, compile events and Python twins go by a function's name."""
    cache = options.pop("cache", False)

    def decorate(func):
        if name is not None:
            func.__name__ = func.__qualname__ = name
        if options.get("no_cpython_wrapper") and not config.DISABLE_JIT:
            # What numba.njit does, with the dispatcher class swapped.
            targetoptions = {key: value for key, value in options.items() if key != "pipeline_class"}
            dispatcher = CompiledOnlyDispatcher(func, targetoptions=dict(targetoptions, nopython=True, boundscheck=None),
                                                pipeline_class=options.get("pipeline_class", Compiler))
        else:
            dispatcher = numba.njit(**options)(func)
        if cache:
            # What Dispatcher.enable_caching does, with the cache class swapped.
            dispatcher._cache = SelfHealingCache(func)
        return dispatcher

    return decorate


def load_cached(dispatcher, args):
    """Whether `dispatcher` has code for the argument types `args`, compiled in
    this process or loaded now from the disk cache (as its first call would);
    False when it would have to compile."""
    args = tuple(args)
    # What Dispatcher.compile does before compiling, under the same lock.
    with global_compiler_lock:
        if args in dispatcher.overloads:
            return True
        if not isinstance(dispatcher._cache, SelfHealingCache):
            return False
        cres = dispatcher._cache.load_overload(args, dispatcher.targetctx)
        if cres is None:
            return False
        dispatcher._cache_hits[args] += 1
        dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        dispatcher.add_overload(cres)
        return True


# Seconds this process waits for its helpers once it has compiled its own
# share, before it stops them and compiles what they had not cached itself.
HELPER_TIMEOUT = 300

# The Numba settings that shape compiled code but not the cache's key: a helper
# whose own differ (the caller changed numba.config, or os.environ after Numba
# read it) compiles nothing, rather than cache code this process would load.
_CODE_SETTINGS = ("BOUNDSCHECK", "OPT", "DEBUGINFO_DEFAULT", "LOOP_VECTORIZE", "SLP_VECTORIZE", "ENABLE_AVX",
                  "CPU_NAME", "CPU_FEATURES", "DISABLE_INTEL_SVML", "CACHE_DIR")

# A helper runs `function(*args)` of `module` for each of its jobs, in order.
# It starts isolated (-I: no current directory or PYTHON* variables on its
# path) and, before it unpickles the jobs, appends this process's module
# search path to its own standard library's, so that it imports the same
# files and compiles them into the same cache, while no file of the user's
# can stand in for a standard module that Numba imports later (a notebook
# folder's token.py did, through the '' a Jupyter kernel puts first).
_HELPER = """
import importlib, pickle, sys, sysconfig
path, settings, jobs = pickle.load(sys.stdin.buffer)
stdlib = tuple(sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib"))
own = [entry for entry in sys.path if entry.startswith(stdlib) or entry.endswith(".zip")]
sys.path[:] = own + [entry for entry in path if entry not in own]
from numba.core import config
if settings == {name: repr(getattr(config, name, None)) for name in settings}:
    for module, function, args in pickle.loads(jobs):
        getattr(importlib.import_module(module), function)(*args)
"""


# A container's CPU quota, which affinity does not show: cgroup v2's cpu.max
# ("quota period" or "max period"), and v1's quota (-1: none) and period files.
_CPU_QUOTA_FILES = (("/sys/fs/cgroup/cpu.max", None),
                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _usable_cores():
    """The cores this process may run on: its affinity, capped by a container's
    CPU quota (whole cores, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    for quota_file, period_file in _CPU_QUOTA_FILES:
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file is not None:
                with open(period_file) as f:
                    fields += f.read().split()
            quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
        if quota > 0 and period > 0:
            cores = min(cores, max(1, quota // period))
    return cores


def helper_processes(n_jobs):
    """How many helper processes may compile beside this one.

    One per job, at most one per usable core beyond this process's, and none
    in a worker of a process pool (joblib's, multiprocessing's), whose
    siblings are compiling the same code on the other cores.
    FASTBP_COMPILE_HELPERS, when set to a count, replaces that rule (0: none).

    Parameters
    ----------
    n_jobs : int
        The jobs to share out.

    Returns
    -------
    int
        0 where no Python can be started: a frozen application, or one that
        embeds Python (its executable would start itself again).
    """
    if getattr(sys, "frozen", False) or not os.path.basename(sys.executable or "").lower().startswith("python"):
        return 0
    try:
        limit = int(os.environ["FASTBP_COMPILE_HELPERS"])
    except (KeyError, ValueError):
        if multiprocessing.parent_process() is not None:
            return 0
        limit = _usable_cores() - 1
    return max(0, min(n_jobs, limit))


def _claimed_by_another(marker):
    """Whether `marker` stands for helpers that may still run: younger than
    HELPER_TIMEOUT, and on POSIX written by a process still alive (a fit
    killed outright never removes its marker)."""
    try:
        if time.time() - os.stat(marker).st_mtime >= HELPER_TIMEOUT:
            return False
        with open(marker) as f:
            owner = int(f.read() or 0)
    except (OSError, ValueError):
        return True
    if os.name != "posix" or owner <= 0:
        return True
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _claim(marker):
    """Create `marker` (holding this process's id), the sign that its helpers
    are running; False when another process's are (see _claimed_by_another),
    so that cold fits started at once do not each add helpers to the load."""
    for _ in range(2):
        try:
            descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _claimed_by_another(marker):
                return False
            try:
                os.remove(marker)
            except OSError:
                pass
            continue
        except OSError:
            return False
        with os.fdopen(descriptor, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _helper_flags():
    """A helper's interpreter flags: isolated (-I, see _HELPER), with this
    process's -O level and bytecode writing, which -I would take from neither
    flags nor environment. Under -OO the docstrings, and with them the code
    objects Numba's cache key hashes, differ: a helper without it cached
    entries this process never found."""
    flags = ["-I"]
    if sys.flags.optimize:
        flags.append("-" + "O" * sys.flags.optimize)
    if sys.dont_write_bytecode:
        flags.append("-B")
    return flags


@contextmanager
def compiling_elsewhere(jobs, cache_path):
    """Run `jobs` in helper processes while the body compiles something else,
    and wait for them at exit; the body's process then loads their code from
    the cache in well under a second.

    Numba compiles one function at a time in a process (its compiler lock),
    so a cold first fit was one core's work: 15-16 s in float64 on the 2-core
    host of bench/, where a helper compiling the epoch and region 2 while
    this process compiles region 1 cut it to 8-10 s. A job a helper fails
    at (no Python to start, a crash, a kill, over HELPER_TIMEOUT) costs
    nothing but time: its function compiles here on first call, as it would
    have without helpers. A helper writes each cache entry whole (Numba
    writes a new file and renames it), and an entry this process and a helper
    both compile holds the same code, so either copy serves.

    Parameters
    ----------
    jobs : list of (str, str, tuple)
        (module, function, args) calls that compile entry points into the
        disk cache; args must pickle.
    cache_path : str or None
        The cache directory the jobs write to, where a marker file keeps a
        second process's cold fit from starting helpers of its own meanwhile;
        None (nowhere to cache) only with no jobs.
    """
    n_helpers = helper_processes(len(jobs))
    marker = os.path.join(cache_path, "fastbp-compile-helpers.running") if n_helpers else None
    if n_helpers == 0 or not _claim(marker):
        yield
        return
    # This package's own directory first (the current directory, '', is left
    # out), so that the helper compiles these very files.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = [package_root] + [os.path.abspath(entry) for entry in sys.path if entry]
    settings = {name: repr(getattr(config, name, None)) for name in _CODE_SETTINGS}
    orders = [pickle.dumps((path, settings, pickle.dumps(jobs[i::n_helpers]))) for i in range(n_helpers)]
    env = dict(os.environ)
    if config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = config.CACHE_DIR
    # Its own session (process group): a Ctrl-C at the terminal reaches the fit,
    # which holds it back to the end of the epoch, and not the helper.
    options = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
               if os.name == "nt" else {"start_new_session": True})
    helpers = []
    try:
        for order in orders:
            try:
                helper = subprocess.Popen([sys.executable, *_helper_flags(), "-c", _HELPER], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **options)
                helpers.append(helper)
                with helper.stdin:
                    helper.stdin.write(order)
            except OSError:
                break
        yield
        deadline = time.monotonic() + HELPER_TIMEOUT
        for helper in helpers:
            try:
                helper.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
                helper.wait()
        try:
            os.remove(marker)
        except OSError:
            pass


def compiled_signatures():
    """{qualified name: signatures compiled or loaded in this process} for every
    compiled function of the package's loaded modules, for the tests that no
    input creates a new specialization (bench.startup counts the cache's files
    instead: a cold fit's helpers compile part of the code)."""
    counts = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(__package__ + ".") and module is not None:
            for attr, value in vars(module).items():
                if isinstance(value, CPUDispatcher) and value.__module__ == name and value.signatures:
                    counts[f"{name.rsplit('.', 1)[1]}.{attr}"] = len(value.signatures)
    return counts
