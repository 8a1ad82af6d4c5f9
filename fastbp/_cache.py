"""Numba's on-disk cache for fastbp's kernels: whether it can live anywhere,
and recovery from an entry that cannot be loaded.

Numba's own cache raises at decoration time (so at ``import fastbp``) when it
finds no writable directory, and lets any error from a damaged entry escape
into every later call, in every later process. Here the first case compiles
in memory instead, and the second compiles the function again and overwrites
the entry.
"""

import functools
import os
import warnings

import numba
from numba.core import config, sigutils
from numba.core.caching import FunctionCache
from numba.core.compiler import Compiler
from numba.core.registry import CPUDispatcher


def _probe():
    """A function of this package for Numba to look for a cache directory for."""


def disk_cache_available():
    """Whether Numba can cache fastbp's kernels on disk; warn once if not.

    Numba picks the directory per source file (``NUMBA_CACHE_DIR``, else the
    package's ``__pycache__``, else a user cache directory) and checks it by
    writing to it. Every kernel module sits in this file's directory, so one
    probe answers for all of them.

    Returns
    -------
    bool
        False, with a RuntimeWarning, when no directory is writable.
    """
    try:
        FunctionCache(_probe)
    except RuntimeError as exc:
        warnings.warn(
            f"fastbp cannot cache its compiled kernels on disk ({exc}): they are compiled "
            "again in every process. Set NUMBA_CACHE_DIR to a writable directory to cache them.",
            RuntimeWarning, stacklevel=2,
        )
        return False
    return True


@functools.lru_cache(maxsize=None)
def _package_stamp():
    """(name, mtime, size) of every module of this package."""
    folder = os.path.dirname(os.path.abspath(__file__))
    stamp = []
    for name in sorted(os.listdir(folder)):
        # An editor's lock file (.#_mlp.py, a dangling link) or a module removed
        # meanwhile is no module of the package: it must not fail the first fit.
        if name.endswith(".py") and not name.startswith("."):
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            stamp.append((name, st.st_mtime, st.st_size))
    return tuple(stamp)


class SelfHealingCache(FunctionCache):
    """Numba's per-function disk cache, taking an entry it cannot load as a miss.

    A truncated, empty or garbled index or data file makes Numba's loader raise
    (EOFError, UnpicklingError, an LLVM bitcode error, ...); a data file that
    holds another signature's code (two processes numbering new entries at
    once) loads, and fails at the call ("can't unbox array"). Either way the
    function's index is emptied, with a warning, and the dispatcher compiles
    the function and writes a fresh entry, so the next process loads it again.
    """

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
        warnings.warn(
            f"fastbp could not load {self._py_func.__qualname__} from Numba's cache in "
            f"{self.cache_path} ({problem}); it is compiled again and its cache entry rewritten.",
            RuntimeWarning, stacklevel=2,
        )
        # An empty index drops every entry of the function, so the rewrite
        # takes a fresh data file rather than the one another signature's
        # entry may still point to.
        self.flush()
        return None


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


def njit(**options):
    """``numba.njit(**options)``, with :class:`SelfHealingCache` as the
    on-disk cache when ``options["cache"]`` is true, and a
    :class:`CompiledOnlyDispatcher` when ``options["no_cpython_wrapper"]`` is."""
    cache = options.pop("cache", False)

    def decorate(func):
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


def compiled_signatures():
    """{qualified name: signatures compiled or loaded in this process} for every
    compiled function of the package's loaded modules: what a first fit costs,
    for the bench and for tests that no input creates a new specialization."""
    import sys

    from numba.core.registry import CPUDispatcher

    counts = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(__package__ + ".") and module is not None:
            for attr, value in vars(module).items():
                if isinstance(value, CPUDispatcher) and value.__module__ == name and value.signatures:
                    counts[f"{name.rsplit('.', 1)[1]}.{attr}"] = len(value.signatures)
    return counts
