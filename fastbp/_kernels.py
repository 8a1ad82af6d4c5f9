"""The loop kernels: backprop's four equations as explicit loops over a block
of rows. ``_loop`` runs them inside its two parallel regions per minibatch.

Layout: activations and deltas are (n_samples, n_units) row-major arrays and
coefs[l] is (fan_in, fan_out), w_kj from input k to neuron j. Every hot loop
ends in a loop over j along a contiguous row ("axpy" shape), which LLVM
vectorizes without reordering any sum: each element is summed in the same
order whatever the thread count or the block it falls in.

Indices: n sample, j neuron of this layer, k neuron of the layer below.

A constant passed to a compiled function goes as np.int64(0) or np.bool_(True),
never as a bare 0 or True here and in ``_loop``: Numba types a bare constant
as a literal and compiles the callee once for each literal value it is given.
"""

import numpy as np
from numba import types
from numba.core import config
from numba.extending import intrinsic

from ._activations import activate_rows, multiply_derivative_rows
from ._cache import njit
from ._config import DISJOINT_JIT, JIT, REDUCTION_JIT

# Rows and terms per register block: 4 × 4 scalars of A stay in registers
# while four rows of B stream past them.
BLOCK = 4

# A layer with fewer outputs than this (the 10 classes of an output layer)
# leaves the row-update loop over j too short for LLVM's vector body, which
# then runs scalar at a third of the rate: its forward pass takes dot products
# along k instead, and its gradient sums are taken transposed, along k.
NARROW = 32

# Bytes of B that accumulate_product_rows applies to every row before going
# on: about a quarter of a core's L2 cache on the parts measured (1-2 MiB).
TERM_BYTES = 256 << 10


@intrinsic
def _wide_vectors(typingctx):
    """Let LLVM vectorize the calling kernel's loops 512 bits wide on a CPU
    with AVX-512: for Intel's parts it prefers 256 bits unless a function
    asks otherwise (AMD's Zen 4 and 5 get 512 either way), which on one core
    of an AVX-512 Xeon held the 4 × 4 row update to 78-95 GFLOP/s in float32
    against 101-121 with 512 (50-56 against 50-68 in float64). Only row-update
    loops ask: they reorder no sum, so each element gets the same fused
    multiply-adds in a vector of either width or in the scalar remainder, and
    the result does not change. The dot products (REDUCTION_JIT) keep the
    default width, which picks their summation order."""

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set admits only LLVM's keyword attributes by
        # name; this string attribute is written into the IR as it stands.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


if config.DISABLE_JIT:
    def _wide_vectors():  # noqa: F811 - a compiler hint, nothing to do in pure Python (NUMBA_DISABLE_JIT=1)
        pass


def _product_rows_kernel(name, a_transposed):
    """The row-update kernel `name` for one layout of A: a_transposed is a
    constant of the kernel made, so that its branch is gone from the compiled
    loop. Taken at run time, it cost the loop 4-6% on 100-wide float32 layers
    (83-86 against 88-90 GFLOP/s on one core), and region 1, which only reads
    A by rows, compiled the transposed loads too."""

    def kernel(A, B, C, r0, r1):
        """C[r, :] += Σ_t A[r, t] B[t, :] for r0 <= r < r1, or Σ_t A[t, r] B[t, :]
        for the transposed kernel: the one loop nest behind the forward pass
        (t = k), the δ recursion (t = j) and the gradient sums (t = n).

        Blocks of 4 rows × 4 terms keep 16 scalars of A in registers; each
        C[r, j] is still summed over t in increasing order, one fused
        multiply-add at a time, so a row gives the same result inside a block
        or outside one. The terms are taken a span at a time (TERM_BYTES of B)
        for all rows, so that a B larger than the cache (a 16384-input layer's
        weights) is read from memory once per call, not once per block of
        rows; the order of each sum is unchanged. C must not overlap A or B:
        the kernel is compiled on that promise (DISJOINT_JIT), which every
        caller keeps by writing one layer's rows (or one gradient's) while
        reading another's.
        """
        _wide_vectors()
        n_terms = A.shape[0] if a_transposed else A.shape[1]
        n_cols = B.shape[1]
        span = max(BLOCK, TERM_BYTES // max(1, n_cols * B.itemsize) // BLOCK * BLOCK)
        for t0 in range(0, n_terms, span):
            t1 = min(t0 + span, n_terms)
            r = r0
            while r + BLOCK <= r1:
                c0, c1, c2, c3 = C[r], C[r + 1], C[r + 2], C[r + 3]
                t = t0
                while t + BLOCK <= t1:
                    if a_transposed:
                        a00, a01, a02, a03 = A[t, r], A[t + 1, r], A[t + 2, r], A[t + 3, r]
                        a10, a11, a12, a13 = A[t, r + 1], A[t + 1, r + 1], A[t + 2, r + 1], A[t + 3, r + 1]
                        a20, a21, a22, a23 = A[t, r + 2], A[t + 1, r + 2], A[t + 2, r + 2], A[t + 3, r + 2]
                        a30, a31, a32, a33 = A[t, r + 3], A[t + 1, r + 3], A[t + 2, r + 3], A[t + 3, r + 3]
                    else:
                        a00, a01, a02, a03 = A[r, t], A[r, t + 1], A[r, t + 2], A[r, t + 3]
                        a10, a11, a12, a13 = A[r + 1, t], A[r + 1, t + 1], A[r + 1, t + 2], A[r + 1, t + 3]
                        a20, a21, a22, a23 = A[r + 2, t], A[r + 2, t + 1], A[r + 2, t + 2], A[r + 2, t + 3]
                        a30, a31, a32, a33 = A[r + 3, t], A[r + 3, t + 1], A[r + 3, t + 2], A[r + 3, t + 3]
                    b0, b1, b2, b3 = B[t], B[t + 1], B[t + 2], B[t + 3]
                    for j in range(n_cols):
                        c0[j] = (((c0[j] + a00 * b0[j]) + a01 * b1[j]) + a02 * b2[j]) + a03 * b3[j]
                        c1[j] = (((c1[j] + a10 * b0[j]) + a11 * b1[j]) + a12 * b2[j]) + a13 * b3[j]
                        c2[j] = (((c2[j] + a20 * b0[j]) + a21 * b1[j]) + a22 * b2[j]) + a23 * b3[j]
                        c3[j] = (((c3[j] + a30 * b0[j]) + a31 * b1[j]) + a32 * b2[j]) + a33 * b3[j]
                    t += BLOCK
                # Leftover terms (fewer than 4) only in the last span: a span is a multiple of 4.
                _accumulate_rows(A, B, C, r, r + BLOCK, t, t1, np.bool_(a_transposed))
                r += BLOCK
            _accumulate_rows(A, B, C, r, r1, t0, t1, np.bool_(a_transposed))

    return njit(name=name, **DISJOINT_JIT)(kernel)


accumulate_product_rows = _product_rows_kernel("accumulate_product_rows", False)
accumulate_transposed_product_rows = _product_rows_kernel("accumulate_transposed_product_rows", True)


@njit(**DISJOINT_JIT)
def _accumulate_rows(A, B, C, r0, r1, t0, t1, a_transposed):
    """C[r, :] += Σ_t A[r, t] B[t, :] for t0 <= t < t1, one row at a time: the
    rows left over by the blocks of 4 (all of a predict on 1-3 rows) and the
    terms left over in a block. Four terms per pass over C[r], as in a
    block: a row through a 16384-input layer then loads and stores its C[r]
    4096 times, not 16384 (predict on a 16384-100-10 float32 model, in turns:
    1 row 201-275 → 179-189 µs, 3 rows 512-588 → 355-383 µs). Only float64
    on one such row, bound by memory bandwidth, came out about 10% slower
    (289-319 → 319-353 µs for this loop; see README, Predict). Each element
    is still summed over t in order, as in a block.
    """
    _wide_vectors()
    for r in range(r0, r1):
        c = C[r]
        t = t0
        while t + BLOCK <= t1:
            if a_transposed:
                a0, a1, a2, a3 = A[t, r], A[t + 1, r], A[t + 2, r], A[t + 3, r]
            else:
                a0, a1, a2, a3 = A[r, t], A[r, t + 1], A[r, t + 2], A[r, t + 3]
            b0, b1, b2, b3 = B[t], B[t + 1], B[t + 2], B[t + 3]
            for j in range(B.shape[1]):
                c[j] = (((c[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j]
            t += BLOCK
        for t in range(t, t1):
            a = A[t, r] if a_transposed else A[r, t]
            b = B[t]
            for j in range(B.shape[1]):
                c[j] += a * b[j]


@njit(**REDUCTION_JIT)
def dot_product_rows(A, B_t, C, r0, r1):
    """C[r, j] += Σ_t A[r, t] B_t[j, t] for r0 <= r < r1: each element a dot
    product of two contiguous rows, for 4 rows of A and 2 rows of B_t per
    pass, 8 sums in flight over loads shared by 2 or 4 of them (one row of
    B_t per pass ran 1.7× slower in float32 on a 200×100 · 100×10 product,
    its time going to each sum's horizontal reduction and loop remainder).

    A short last block repeats its last row of A, or of B_t, so that every
    element is summed by the same code, inside a block or not.
    """
    zero = C.dtype.type(0)
    last = r1 - 1
    last_j = B_t.shape[0] - 1
    for r in range(r0, r1, BLOCK):
        a0, a1, a2, a3 = A[r], A[min(r + 1, last)], A[min(r + 2, last)], A[min(r + 3, last)]
        for j in range(0, last_j + 1, 2):
            b, c = B_t[j], B_t[min(j + 1, last_j)]
            s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero
            for t in range(b.shape[0]):
                s0 += a0[t] * b[t]
                s1 += a1[t] * b[t]
                s2 += a2[t] * b[t]
                s3 += a3[t] * b[t]
                t0 += a0[t] * c[t]
                t1 += a1[t] * c[t]
                t2 += a2[t] * c[t]
                t3 += a3[t] * c[t]
            _add_block_column(C, r, j, last, s0, s1, s2, s3)
            if j + 1 <= last_j:
                _add_block_column(C, r, j + 1, last, t0, t1, t2, t3)


@njit(**JIT)
def _add_block_column(C, r, j, last, s0, s1, s2, s3):
    """C[r + i, j] += s_i for the rows of the block up to row `last`."""
    C[r, j] += s0
    if r + 1 <= last:
        C[r + 1, j] += s1
    if r + 2 <= last:
        C[r + 2, j] += s2
    if r + 3 <= last:
        C[r + 3, j] += s3


@njit(**JIT)
def copy_row(src, dst):
    """dst[:] = src as a plain loop, which LLVM vectorizes: Numba's slice
    assignment goes through a generic broadcasting copy, four times slower."""
    for j in range(src.shape[0]):
        dst[j] = src[j]


@njit(**JIT)
def zero_rows(C, r0, r1):
    """C[r, :] = 0 for r0 <= r < r1, as plain loops (see copy_row)."""
    zero = C.dtype.type(0)
    for r in range(r0, r1):
        c = C[r]
        for j in range(c.shape[0]):
            c[j] = zero


@njit(**JIT)
def forward_rows(activations_in, coefs, coefs_t, intercepts, act_code, activations_out, n0, n1):
    """z_j = Σ_k w_kj a_k + b_j, then a_j = σ(z_j), for samples n0..n1-1; a
    narrow layer passes its wᵀ as coefs_t (else an empty array) for dot products."""
    for n in range(n0, n1):
        copy_row(intercepts, activations_out[n])
    if coefs_t.shape[0] > 0:
        dot_product_rows(activations_in, coefs_t, activations_out, n0, n1)
    else:
        accumulate_product_rows(activations_in, coefs, activations_out, n0, n1)
    activate_rows(act_code, activations_out, n0, n1)


@njit(**DISJOINT_JIT)
def forward_rows_sparse(data, indices, indptr, rows, coefs, intercepts, act_code, activations_out, n0, n1):
    """z_j = Σ_k w_kj x_k + b_j over the stored nonzeros x_k of CSR row rows[n]
    (row n itself when rows is empty), for samples n0..n1-1."""
    _wide_vectors()
    for n in range(n0, n1):
        z = activations_out[n]
        copy_row(intercepts, z)
        row = rows[n] if rows.shape[0] > 0 else n
        for p in range(indptr[row], indptr[row + 1]):
            x = data[p]
            w = coefs[indices[p]]
            for j in range(z.shape[0]):
                z[j] += x * w[j]
    activate_rows(act_code, activations_out, n0, n1)


@njit(**JIT)
def flag_nonfinite_rows(x, flags, n0, n1):
    """flags[n] = 1 where row n of x holds a NaN or an infinity, else 0, for
    n0 <= n < n1: x - x is 0 for every finite x and NaN otherwise, and an OR
    over a row's comparisons, unlike a sum, runs in vector lanes without
    reordering anything. A forward pass takes it on each pass's input rows
    just before the first layer reads them, in place of a pass of its own
    over the whole input: taken after, reading the rows from the cache, it
    left the layer's loops to wait on memory (100-100-10 on 50000 rows, one
    thread, in turns: float64 672-680 → 604-644 ns a row, float32 366-372 →
    345-356)."""
    for n in range(n0, n1):
        row = x[n]
        bad = False
        for k in range(row.shape[0]):
            bad |= row[k] - row[k] != 0
        flags[n] = bad


@njit(**JIT)
def backward_rows(delta, coefs_t, activations_prev, act_code, delta_prev, n0, n1):
    """δ^{l-1}_k = (Σ_j w_kj δ^l_j) σ'(z^{l-1}_k), with coefs_t[j, k] = w_kj (BP2)."""
    zero_rows(delta_prev, n0, n1)
    accumulate_product_rows(delta, coefs_t, delta_prev, n0, n1)
    multiply_derivative_rows(act_code, activations_prev, delta_prev, n0, n1)


@njit(**JIT)
def coef_grad_rows(activations_prev, delta, coefs, alpha, scale, coef_grads, k0, k1):
    """∂C/∂w_kj = (Σ_n a_nk δ_nj + α w_kj) / Σ_n s_n for rows k0..k1-1 (BP4)."""
    zero_rows(coef_grads, k0, k1)
    accumulate_transposed_product_rows(activations_prev, delta, coef_grads, k0, k1)
    _add_penalty_and_scale(coefs, alpha, scale, coef_grads, k0, k1)


@njit(**JIT)
def coef_grad_rows_narrow(activations_prev, delta, coefs, alpha, scale, coef_grads_t, coef_grads):
    """∂C/∂w_kj of a narrow layer, all rows (BP4): (∂C/∂w)ᵀ_jk = Σ_n δ_nj a_nk
    as row updates along k, transposed. Each sum runs over n in the same order
    as in coef_grad_rows, so the result is the same to the last bit."""
    first = np.int64(0)
    zero_rows(coef_grads_t, first, coef_grads_t.shape[0])
    accumulate_transposed_product_rows(delta, activations_prev, coef_grads_t, first, coef_grads_t.shape[0])
    transpose_rows(coef_grads_t, coef_grads, first, coef_grads_t.shape[0])
    _add_penalty_and_scale(coefs, alpha, scale, coef_grads, first, coefs.shape[0])


@njit(**DISJOINT_JIT)
def coef_grad_rows_sparse(col_data, col_rows, col_ptr, delta, coefs, alpha, scale, coef_grads, k0, k1):
    """∂C/∂w_kj = (Σ_n x_nk δ_nj + α w_kj) / Σ_n s_n over the nonzeros of columns
    k0..k1-1 of a sparse X, given as CSC (BP4)."""
    _wide_vectors()
    zero_rows(coef_grads, k0, k1)
    for k in range(k0, k1):
        g = coef_grads[k]
        for p in range(col_ptr[k], col_ptr[k + 1]):
            x = col_data[p]
            d = delta[col_rows[p]]
            for j in range(g.shape[0]):
                g[j] += x * d[j]
    _add_penalty_and_scale(coefs, alpha, scale, coef_grads, k0, k1)


@njit(**JIT)
def _add_penalty_and_scale(coefs, alpha, scale, coef_grads, k0, k1):
    """The L2 term's gradient α w_kj, and the division by Σ_n s_n."""
    alpha_ = coefs.dtype.type(alpha)
    scale_ = coefs.dtype.type(scale)
    for k in range(k0, k1):
        g = coef_grads[k]
        w = coefs[k]
        for j in range(g.shape[0]):
            g[j] = (g[j] + alpha_ * w[j]) * scale_


@njit(**JIT)
def intercept_grads_of(delta, scale, intercept_grads):
    """∂C/∂b_j = Σ_n δ_nj / Σ_n s_n (BP3)."""
    intercept_grads[:] = 0
    for n in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            intercept_grads[j] += delta[n, j]
    scale_ = delta.dtype.type(scale)
    for j in range(delta.shape[1]):
        intercept_grads[j] *= scale_


@njit(**JIT)
def squared_norm_rows(coefs, k0, k1, columns):
    """Σ_k Σ_j w_kj² over rows k0..k1-1, in float64.

    Summed down each column first (columns[j] += w_kj², a vectorizable row
    update), then across: a fixed order, without the one-add-at-a-time latency
    of a single running sum.
    """
    fan_out = coefs.shape[1]
    columns[:fan_out] = 0.0
    for k in range(k0, k1):
        w = coefs[k]
        for j in range(fan_out):
            columns[j] += float(w[j]) * float(w[j])
    total = 0.0
    for j in range(fan_out):
        total += columns[j]
    return total


@njit(**JIT)
def transpose_rows(src, dst, k0, k1):
    """dst[j, k] = src[k, j] for rows k0..k1-1 of src."""
    src_rows = src[k0:k1]
    dst_cols = dst[:, k0:k1]
    for j in range(src.shape[1]):
        for k in range(src_rows.shape[0]):
            dst_cols[j, k] = src_rows[k, j]


@njit(**JIT)
def batch_csr_to_csc(data, indices, indptr, rows, n_batch, n_cols, col_data, col_rows, col_ptr):
    """The batch's rows of a CSR matrix (rows[n], or n when rows is empty),
    transposed to CSC with batch-local row numbers, increasing within each
    column (a counting sort over the column indices)."""
    col_ptr[:] = 0
    for n in range(n_batch):
        row = rows[n] if rows.shape[0] > 0 else n
        for p in range(indptr[row], indptr[row + 1]):
            col_ptr[indices[p] + 1] += 1
    for k in range(n_cols):
        col_ptr[k + 1] += col_ptr[k]
    # col_ptr[k] serves as column k's write cursor, then is shifted back to its start.
    for n in range(n_batch):
        row = rows[n] if rows.shape[0] > 0 else n
        for p in range(indptr[row], indptr[row + 1]):
            k = indices[p]
            col_data[col_ptr[k]] = data[p]
            col_rows[col_ptr[k]] = n
            col_ptr[k] += 1
    for k in range(n_cols, 0, -1):
        col_ptr[k] = col_ptr[k - 1]
    col_ptr[0] = 0
