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

FASTMATH = {"contract"}

# Serial kernels: elementwise work and small reductions.
JIT = dict(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")

# Dot products of two contiguous rows, for layers too narrow to fill the
# vector lanes in the row-update shape: reassociation lets LLVM sum each one
# in vector lanes. The order it picks depends on the row length only, the
# same for every row, block and thread count.
REDUCTION_JIT = dict(JIT, fastmath=FASTMATH | {"reassoc"})

# Kernels that split work over threads with prange. Every prange loop gives
# each output element to exactly one thread, so the result is bitwise the
# same for any number of threads.
PARALLEL_JIT = dict(JIT, parallel=True)

FLOAT_DTYPES = (np.float64, np.float32)
