"""Numba compilation flags and dtype rules, kept in one place.

``contract`` lets LLVM fuse ``c + a * b`` into one FMA instruction, which is
what makes the row-update ("axpy") loops run near the matmul rate; it never
reorders a sum, so results stay independent of the thread count.
Reassociation stays off for the same reason.

One rule follows from contraction: no kernel adds two products (a*b + c*d).
LLVM may fuse either one, and may choose differently in a loop's vector body
and in its scalar remainder, whose split moves with the arrays' addresses:
the last bit would then depend on memory layout (it did, between a process
that compiled the kernels and one that loaded them from the cache).
"""

import numpy as np
from numba.core.compiler import Compiler

from ._cache import disk_cache_available

FASTMATH = {"contract"}

# Serial kernels: elementwise work and small reductions. With nowhere to
# cache, Numba's cache=True would make the import itself fail. No C-callable
# wrapper: only Numba's first-class function types call one, and building it
# for every function cost a cold first fit 0.6-1 s (measured in turns). No
# CPython wrapper either: only compiled code calls these in a fit or predict
# (see _cache.CompiledOnlyDispatcher).
JIT = dict(cache=disk_cache_available(), nogil=True, fastmath=FASTMATH, error_model="numpy", no_cfunc_wrapper=True,
           no_cpython_wrapper=True)

# The compiled functions Python calls: the epoch, the kernels the vectorized
# backend runs between its NumPy products, the dropout epoch key,
# fastbp.jacobian's sweeps, and the layer views and norms the estimators read
# (_backprop, L-BFGS's gradient norms); tests/test_specializations.py checks
# that no public path calls any other.
ENTRY_JIT = dict(JIT, no_cpython_wrapper=False)

# Dot products of two contiguous rows, for layers too narrow to fill the
# vector lanes in the row-update shape: reassociation lets LLVM sum each one
# in vector lanes. The order it picks depends on the row length only, the
# same for every row, block and thread count.
REDUCTION_JIT = dict(JIT, fastmath=FASTMATH | {"reassoc"})


class NoAliasCompiler(Compiler):
    """Numba's compiler, promising LLVM that no two array arguments of the
    function overlap in the memory it touches (C's ``restrict``).

    Without it, LLVM guards each vectorized loop with run-time checks that
    the rows written and the rows read lie apart: in the 4 × 4 row update, 32
    address comparisons at each entry to a loop of only 6 to 13 vector steps
    on a 100-wide layer (measured 83 → 122 GFLOP/s float32 at 200×64×100 on
    one Zen 5 core, 62 → 67 float64). The option is the compiler pipeline
    that ``numba.njit(pipeline_class=...)`` takes; the flag is Numba's own,
    which it sets for the bodies of prange loops it finds free of aliases.
    """

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags = flags.copy()
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


# Serial kernels whose array arguments never overlap: each caller passes
# disjoint rows (outputs apart from inputs), which the promise above needs.
DISJOINT_JIT = dict(JIT, pipeline_class=NoAliasCompiler)

# Kernels that split work over threads with prange. Every prange loop gives
# each output element to exactly one thread, so the result is bitwise the
# same for any number of threads.
PARALLEL_JIT = dict(ENTRY_JIT, parallel=True)

FLOAT_DTYPES = (np.float64, np.float32)
