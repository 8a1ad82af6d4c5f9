"""The loop kernels: backprop's four equations as explicit loops.

Layout: activations and deltas are (n_samples, n_units) row-major arrays and
coefs[l] is (fan_in, fan_out), w_kj from input k to neuron j. Every hot loop
below ends in a loop over j along a contiguous row ("axpy" shape), which LLVM
vectorizes without reordering any sum, so each element is summed in the same
order whatever the thread count. prange splits samples (forward pass, δ
recursion) or weight rows (gradient sums), so no two threads write one element.

Indices: n sample, j neuron of this layer, k neuron of the layer below.
"""

import numpy as np
from numba import njit, prange

from ._activations import activate_rows, multiply_derivative_rows
from ._config import JIT, PARALLEL_JIT
from ._losses import output_delta, sample_loss

# Rows and terms per register block: 4 × 4 scalars of A stay in registers
# while one row of B streams past them.
BLOCK = 4


@njit(**JIT)
def accumulate_product_rows(A, B, C, r0, r1):
    """C[r, :] += Σ_k A[r, k] B[k, :] for r0 <= r < r1 (r1 - r0 <= BLOCK).

    The shared inner loop nest of the forward pass, the δ recursion and the
    gradient sums. Each C[r, j] is summed over k in increasing order, whether
    its row sits in a full block or not, so the result does not depend on how
    rows are grouped.
    """
    n_terms = A.shape[1]
    n_cols = B.shape[1]
    k = 0
    if r1 - r0 == BLOCK:
        while k + BLOCK <= n_terms:
            a00, a01, a02, a03 = A[r0, k], A[r0, k + 1], A[r0, k + 2], A[r0, k + 3]
            a10, a11, a12, a13 = A[r0 + 1, k], A[r0 + 1, k + 1], A[r0 + 1, k + 2], A[r0 + 1, k + 3]
            a20, a21, a22, a23 = A[r0 + 2, k], A[r0 + 2, k + 1], A[r0 + 2, k + 2], A[r0 + 2, k + 3]
            a30, a31, a32, a33 = A[r0 + 3, k], A[r0 + 3, k + 1], A[r0 + 3, k + 2], A[r0 + 3, k + 3]
            b0 = B[k]
            b1 = B[k + 1]
            b2 = B[k + 2]
            b3 = B[k + 3]
            c0 = C[r0]
            c1 = C[r0 + 1]
            c2 = C[r0 + 2]
            c3 = C[r0 + 3]
            for j in range(n_cols):
                c0[j] = (((c0[j] + a00 * b0[j]) + a01 * b1[j]) + a02 * b2[j]) + a03 * b3[j]
                c1[j] = (((c1[j] + a10 * b0[j]) + a11 * b1[j]) + a12 * b2[j]) + a13 * b3[j]
                c2[j] = (((c2[j] + a20 * b0[j]) + a21 * b1[j]) + a22 * b2[j]) + a23 * b3[j]
                c3[j] = (((c3[j] + a30 * b0[j]) + a31 * b1[j]) + a32 * b2[j]) + a33 * b3[j]
            k += BLOCK
    for r in range(r0, r1):
        c = C[r]
        for kk in range(k, n_terms):
            a = A[r, kk]
            b = B[kk]
            for j in range(n_cols):
                c[j] += a * b[j]


@njit(**PARALLEL_JIT)
def forward_layer(activations_in, coefs, intercepts, act_code, activations_out):
    """z_j = Σ_k w_kj a_k + b_j, then a_j = σ(z_j), for every sample."""
    n_samples = activations_in.shape[0]
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for block in prange(n_blocks):
        n0 = block * BLOCK
        n1 = min(n0 + BLOCK, n_samples)
        for n in range(n0, n1):
            activations_out[n, :] = intercepts
        accumulate_product_rows(activations_in, coefs, activations_out, n0, n1)
        activate_rows(act_code, activations_out, n0, n1)


@njit(**PARALLEL_JIT)
def backward_layer(delta, coefs_t, activations_prev, act_code, delta_prev):
    """δ^{l-1}_k = (Σ_j w_kj δ^l_j) σ'(z^{l-1}_k), with coefs_t[j, k] = w_kj (BP2)."""
    n_samples = delta.shape[0]
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    zero = delta.dtype.type(0)
    for block in prange(n_blocks):
        n0 = block * BLOCK
        n1 = min(n0 + BLOCK, n_samples)
        for n in range(n0, n1):
            delta_prev[n, :] = zero
        accumulate_product_rows(delta, coefs_t, delta_prev, n0, n1)
        multiply_derivative_rows(act_code, activations_prev, delta_prev, n0, n1)


@njit(**PARALLEL_JIT)
def coef_grads_layer(activations_t, delta, coefs, alpha, weight_sum, coef_grads):
    """∂C/∂w_kj = (Σ_n a_nk δ_nj + α w_kj) / Σ_n s_n, with activations_t[k, n] = a_nk (BP4)."""
    fan_in = activations_t.shape[0]
    n_blocks = (fan_in + BLOCK - 1) // BLOCK
    zero = delta.dtype.type(0)
    scale = delta.dtype.type(1.0 / weight_sum)
    alpha_ = delta.dtype.type(alpha)
    for block in prange(n_blocks):
        k0 = block * BLOCK
        k1 = min(k0 + BLOCK, fan_in)
        for k in range(k0, k1):
            coef_grads[k, :] = zero
        accumulate_product_rows(activations_t, delta, coef_grads, k0, k1)
        for k in range(k0, k1):
            for j in range(coef_grads.shape[1]):
                coef_grads[k, j] = (coef_grads[k, j] + alpha_ * coefs[k, j]) * scale


@njit(**JIT)
def intercept_grads_layer(delta, weight_sum, intercept_grads):
    """∂C/∂b_j = Σ_n δ_nj / Σ_n s_n (BP3)."""
    intercept_grads[:] = 0
    for n in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            intercept_grads[j] += delta[n, j]
    scale = delta.dtype.type(1.0 / weight_sum)
    for j in range(delta.shape[1]):
        intercept_grads[j] *= scale


@njit(**PARALLEL_JIT)
def transpose(src, dst):
    """dst[k, n] = src[n, k], a tile at a time so both sides stay in cache."""
    n_rows, n_cols = src.shape
    tile = 32
    n_tiles = (n_cols + tile - 1) // tile
    for t in prange(n_tiles):
        k0 = t * tile
        k1 = min(k0 + tile, n_cols)
        for n0 in range(0, n_rows, tile):
            n1 = min(n0 + tile, n_rows)
            for k in range(k0, k1):
                for n in range(n0, n1):
                    dst[k, n] = src[n, k]


@njit(**PARALLEL_JIT)
def output_layer_delta(loss_code, out_code, activations, Y, sample_weight, eps, delta, losses):
    """δ^L (BP1) and each sample's weighted loss s_n ℓ_n."""
    n_samples = activations.shape[0]
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for block in prange(n_blocks):
        n0 = block * BLOCK
        n1 = min(n0 + BLOCK, n_samples)
        for n in range(n0, n1):
            losses[n] = sample_weight[n] * sample_loss(loss_code, out_code, activations, Y, eps, n)
        output_delta(loss_code, out_code, activations, Y, sample_weight, delta, n0, n1)


@njit(**JIT)
def squared_norm(x):
    """Σ x², in float64 and in index order."""
    total = 0.0
    for i in range(x.shape[0]):
        total += float(x[i]) * float(x[i])
    return total


@njit(**PARALLEL_JIT)
def forward_layer_sparse(data, indices, indptr, coefs, intercepts, act_code, activations_out):
    """z_j = Σ_k w_kj x_k + b_j over the stored nonzeros x_k of each CSR row."""
    n_samples = indptr.shape[0] - 1
    for n in prange(n_samples):
        z = activations_out[n]
        z[:] = intercepts
        for p in range(indptr[n], indptr[n + 1]):
            x = data[p]
            w = coefs[indices[p]]
            for j in range(z.shape[0]):
                z[j] += x * w[j]
        activate_rows(act_code, activations_out, n, n + 1)


@njit(**PARALLEL_JIT)
def coef_grads_layer_sparse(col_data, col_rows, col_ptr, delta, coefs, alpha, weight_sum, coef_grads):
    """∂C/∂w_kj = (Σ_n x_nk δ_nj + α w_kj) / Σ_n s_n over the nonzeros of column k (BP4).

    X comes transposed (CSC: column k holds rows col_rows[col_ptr[k]:col_ptr[k+1]],
    in increasing order), so each thread owns whole rows k of the gradient.
    """
    fan_in = coefs.shape[0]
    zero = delta.dtype.type(0)
    scale = delta.dtype.type(1.0 / weight_sum)
    alpha_ = delta.dtype.type(alpha)
    for k in prange(fan_in):
        g = coef_grads[k]
        g[:] = zero
        for p in range(col_ptr[k], col_ptr[k + 1]):
            x = col_data[p]
            d = delta[col_rows[p]]
            for j in range(g.shape[0]):
                g[j] += x * d[j]
        w = coefs[k]
        for j in range(g.shape[0]):
            g[j] = (g[j] + alpha_ * w[j]) * scale


@njit(**JIT)
def csr_to_csc(data, indices, indptr, n_cols, col_data, col_rows, col_ptr):
    """The transpose of a CSR matrix as CSC arrays, rows kept in increasing order
    within each column (a counting sort over column indices)."""
    n_rows = indptr.shape[0] - 1
    col_ptr[:] = 0
    for p in range(indptr[n_rows]):
        col_ptr[indices[p] + 1] += 1
    for k in range(n_cols):
        col_ptr[k + 1] += col_ptr[k]
    # col_ptr[k] serves as column k's write cursor, then is shifted back to its start.
    for n in range(n_rows):
        for p in range(indptr[n], indptr[n + 1]):
            k = indices[p]
            col_data[col_ptr[k]] = data[p]
            col_rows[col_ptr[k]] = n
            col_ptr[k] += 1
    for k in range(n_cols, 0, -1):
        col_ptr[k] = col_ptr[k - 1]
    col_ptr[0] = 0
