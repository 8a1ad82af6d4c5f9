"""The loop backend, end to end: its workspace, its two parallel regions per
minibatch and the compiled epoch that runs them, all in this module so that
the code Numba compiles and caches together changes together.

Region 1 (``forward_backward_share``) splits the samples into blocks of 4,
and the blocks into one contiguous share per thread: each thread takes the
rows of its share through every layer's forward pass, the output delta (BP1)
and the δ recursion (BP2) down to the first hidden layer, one layer at a time,
without waiting for any other thread. Region 2 (``gradient_task``) splits the
weight rows of every layer, and each bias vector, into a list of tasks, and
the list into one contiguous share of equal work per thread: each thread sums
the gradients of its rows (BP3, BP4) and, during training, updates those
parameters at once and refreshes their column of wᵀ for the next minibatch's
δ recursion. Two barriers per minibatch instead of one per layer and kernel
is what lets a small minibatch use several threads.

Each output element is written by one thread, summed in a fixed order, so the
results are bitwise the same for any number of threads.

One compiled entry point, ``run_epoch`` (in two versions, see below), serves
training (minibatches of rows gathered in the epoch's order), a full-batch
loss and gradient (L-BFGS, ``fastbp.loss_and_gradients``; an empty order) and
the forward pass alone (predict; no targets). Numba links every callee's code
into each caller, and LLVM optimizes and emits the linked code again at each
level, so each level of orchestration cost a cold first fit about as much as
all the kernels below it. Hence the depth is kept to one level above the row
kernels of ``_kernels``: the two regions take the kernels in, and run_epoch
calls the regions through their addresses (_call_at, with the argument lists
region_signatures writes down), so neither it nor the functions Numba
outlines from its prange loops compile the regions' code again.

The input comes dense (X) or as CSR arrays (data, indices, indptr; X is then
an empty (0, 0) array): a sparse X only changes the first layer's forward pass
and gradient sums, which loop over the stored nonzeros. The epoch and each
region are made twice from one source (_epoch, _region_1, _region_2): a
general version, and one for dense input without dropout or gradient norms
that leaves the CSR, dropout and norm code out, so that the common fit neither
types nor compiles it (general_call picks).
"""

import os
import threading
from collections import OrderedDict, namedtuple
from contextlib import contextmanager

import numba
import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba import config, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import compiling_elsewhere, load_cached, njit
from ._config import ENTRY_JIT, JIT, PARALLEL_JIT
from ._dropout import drop_rows, hidden_unit_offset, undropped_rows
from ._kernels import (
    BLOCK,
    NARROW,
    backward_rows,
    batch_csr_to_csc,
    coef_grad_rows,
    coef_grad_rows_narrow,
    coef_grad_rows_sparse,
    copy_row,
    flag_nonfinite_rows,
    forward_rows,
    forward_rows_sparse,
    intercept_grads_of,
    squared_norm_rows,
    transpose_rows,
)
from ._losses import output_delta, sample_loss
from ._optimizers import no_step, step_rate, update_slice
from ._params import coef_start, coef_view, intercept_start, intercept_view, n_params
from ._threads import forward_threads, kernel_threads, parallel_launches

# Region 1 takes this many rows through a layer before moving to the next
# one: enough to amortize each kernel's entry, few enough that a share of a
# large forward pass (predict) keeps its activations in cache.
PASS_ROWS = 64

# Bytes per cache line on x86-64 and most ARM cores: prefetch_rows asks for one
# element per line.
_CACHE_LINE = 64

# Region 2's tasks aim at this many multiply-adds per sample each, so that
# equal shares of the task list are equal shares of the work.
_TASK_WORK = 1024

# The arguments of run_epoch that come in groups, each a namedtuple whose
# fields the compiled code reads by name: the contract is these lists, and
# ``check_call`` checks every field's type before a call.
Inputs = namedtuple("Inputs", "X data indices indptr")
Terms = namedtuple("Terms", "act_code out_code loss_code alpha eps data_scale dropout dropout_key")
Buffers = namedtuple("Buffers", "x_batch y_batch sw_batch activations deltas losses undropped coefs_t "
                                "coef_grads_t col_data index_scratch tasks task_penalty penalty_columns")

_NO_ROWS = np.empty(0, dtype=np.int64)


def input_arrays(X, dtype):
    """Inputs(X, data, indices, indptr) as the kernels take an input: a dense X
    as a writeable C-contiguous array with empty CSR arrays, a sparse X as CSR
    arrays with an empty (0, 0) X."""
    no_index = np.empty(0, dtype=np.int64)
    if sp.issparse(X):
        if X.format != "csr":
            # Before scipy's conversion reads them; a CSR's are checked below, as the kernels take them.
            check_sparse_structure(X)
        X = as_csr(X, dtype)
        indices, indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
        _check_compressed(indices, indptr, X.data.shape[0], X.shape[0], X.shape[1], "csr")
        if not X.has_sorted_indices:
            # Sorted, each row is summed in the order of the dense input's columns.
            X = X.sorted_indices()
            indices = X.indices.astype(np.int64)
        return Inputs(np.empty((0, 0), dtype=dtype), np.require(X.data, dtype, ["C_CONTIGUOUS", "WRITEABLE"]),
                      indices, indptr)
    if X.dtype != dtype:
        # A value beyond dtype's range becomes an infinity, which the forward
        # pass flags for its caller to name as scikit-learn does (see
        # _validation.check_cast_input): NumPy's overflow warning would come first.
        with np.errstate(over="ignore"):
            X = X.astype(dtype, order="C")
    X = np.require(X, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])
    return Inputs(X, np.empty(0, dtype=dtype), no_index, no_index)


def _check_compressed(indices, indptr, n_data, n_major, n_minor, fmt):
    """Raise ValueError unless a compressed matrix's arrays (CSR: rows major,
    columns minor; CSC the other way; BSR by blocks) index only inside
    themselves and the matrix. What scipy's check_format(full_check=True)
    checks of them, in a few vectorized passes (that method costs more than
    predicting a few rows)."""
    nnz = int(indptr[-1]) if indptr.shape[0] else 0
    if indptr.shape[0] != n_major + 1 or indptr[0] != 0 or nnz > min(indices.shape[0], n_data):
        raise ValueError(f"Malformed {fmt.upper()} input: index pointer array of length {indptr.shape[0]} starting "
                         f"at {indptr[:1].tolist()} and ending at {nnz}, for {n_major} "
                         f"{_MAJOR_AXIS[fmt]}, {indices.shape[0]} indices and {n_data} values.")
    if (indptr[1:] < indptr[:-1]).any():
        raise ValueError(f"Malformed {fmt.upper()} input: index pointer array is not non-decreasing.")
    if nnz and (indices[:nnz].min() < 0 or indices[:nnz].max() >= n_minor):
        raise ValueError(f"Malformed {fmt.upper()} input: {_MINOR_AXIS[fmt]} indices out of range [0, {n_minor}).")


_MAJOR_AXIS = {"csr": "rows", "csc": "columns", "bsr": "block rows"}
_MINOR_AXIS = {"csr": "column", "csc": "row", "bsr": "block column"}


def check_sparse_structure(X):
    """Raise ValueError unless the index arrays of a CSR, CSC, BSR or COO
    matrix X point inside it: the kernels, and scipy's own conversions,
    slices and products, index with them unchecked in compiled code, where an
    index out of range (set by hand, or read from a damaged file) is an
    out-of-bounds access, not an error (a segfault in the trials, or a
    corrupted heap). The other formats hold Python containers or dense
    arrays."""
    fmt = X.format
    if fmt in ("csr", "csc", "bsr"):
        n_major, n_minor = X.shape if fmt != "csc" else X.shape[::-1]
        if fmt == "bsr":
            rows, cols = X.blocksize
            n_major, n_minor = n_major // rows, n_minor // cols
        _check_compressed(X.indices, X.indptr, X.data.shape[0], n_major, n_minor, fmt)
    elif fmt == "coo":
        n_rows, n_cols = X.shape
        row, col = X.row, X.col
        if not row.shape == col.shape == X.data.shape:
            raise ValueError(f"Malformed COO input: {row.shape[0]} row indices, {col.shape[0]} column indices and "
                             f"{X.data.shape[0]} values.")
        if row.shape[0] and (row.min() < 0 or row.max() >= n_rows or col.min() < 0 or col.max() >= n_cols):
            raise ValueError(f"Malformed COO input: indices out of range for shape {X.shape}.")


def as_csr(X, dtype):
    """A sparse X as CSR of dtype: X itself where it is one. A CSR's unsigned
    index arrays are checked (check_sparse_structure) and made int64 first:
    scipy's CSR constructor warns on them ("non-integer dtype") and keeps
    them, where scikit-learn's MLP takes them without a word."""
    if X.format == "csr" and "u" in (X.indices.dtype.kind, X.indptr.dtype.kind):
        check_sparse_structure(X)
        X = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)), shape=X.shape)
    return X if X.format == "csr" and X.dtype == dtype else sp.csr_matrix(X, dtype=dtype)


def n_samples_of(inputs):
    return inputs.indptr.shape[0] - 1 if inputs.indptr.shape[0] > 0 else inputs.X.shape[0]


@njit(**JIT)
def is_narrow(units, layer):
    """Whether layer `layer` (weights W^layer) takes the narrow kernels; layer 0
    never does, as no wᵀ is kept for it."""
    return layer > 0 and units[layer + 1] < NARROW


@njit(**JIT)
def coef_t_view(coefs_t, units, layer):
    """coefs[layer]ᵀ, (fan_out, fan_in), in the workspace buffer holding the
    transposes of layers 1..L-1 one after another (the δ recursion never needs
    layer 0's); an empty array for layer 0."""
    fan_in, fan_out = units[layer], units[layer + 1]
    if layer == 0:
        return coefs_t[:0].reshape((0, 0))
    start = coef_start(units, layer) - units[0] * units[1]
    return coefs_t[start : start + fan_in * fan_out].reshape((fan_out, fan_in))


@njit(**ENTRY_JIT)
def layer_rows(buffer, units, layer, n_rows):
    """Rows 0..n_rows-1 of layer `layer` (>= 1) in a per-layer workspace buffer
    (activations, deltas), which holds for each layer l >= 1 room for
    `capacity` rows of units[l] values, capacity = len(buffer) / Σ_{l>=1} units[l]."""
    width_total = 0
    for i in range(1, units.shape[0]):
        width_total += units[i]
    capacity = buffer.shape[0] // width_total
    start = 0
    for i in range(1, layer):
        start += capacity * units[i]
    return buffer[start : start + n_rows * units[layer]].reshape((n_rows, units[layer]))


def gradient_task_table(units):
    """Rows (layer, k0, k1, before, work) of region 2's tasks; k0 = -1 is the
    layer's bias vector. A narrow layer's gradient is summed transposed, all its
    rows in one task. `work` counts a task's multiply-adds per sample, `before`
    those of the tasks ahead of it in the list."""
    tasks = []
    for layer in range(len(units) - 1):
        fan_in, fan_out = int(units[layer]), int(units[layer + 1])
        narrow = layer > 0 and fan_out < NARROW
        rows = fan_in if narrow else max(BLOCK, BLOCK * round(_TASK_WORK / fan_out / BLOCK))
        tasks += [(layer, k0, min(k0 + rows, fan_in)) for k0 in range(0, fan_in, rows)]
        tasks.append((layer, -1, -1))
    work = [max(k1 - k0, 1) * int(units[layer + 1]) for layer, k0, k1 in tasks]
    before = np.cumsum([0] + work[:-1])
    return np.asarray([task + (b, w) for task, b, w in zip(tasks, before, work)], dtype=np.int64)


@njit(**JIT)
def task_share(tasks, i, n_shares):
    """The share (0..n_shares-1) of region 2's work that task i belongs to: the
    one the middle of its work falls in, so that shares are contiguous runs of
    tasks with close to equal work."""
    last = tasks.shape[0] - 1
    total = tasks[last, 3] + tasks[last, 4]
    return n_shares * (2 * tasks[i, 3] + tasks[i, 4]) // (2 * total)


class Workspace:
    """Every buffer a network of `units` needs for minibatches of up to
    `capacity` rows, allocated once, outside every loop. `gather` asks for
    buffers to copy minibatch rows into; `max_nnz` is None for a dense
    input and, for a sparse one, the most stored values a batch holds (0 too:
    the column pointers of a batch's transpose are sized by the features);
    backward=False sizes it for forward passes only; dropout asks for the
    pre-dropout activations of the hidden layers."""

    def __init__(self, units, capacity, dtype, *, gather=False, max_nnz=None, backward=True, dropout=False):
        units = np.asarray(units, dtype=np.int64)
        width = int(units[1:].sum())
        # A forward pass alone (predict, validation) needs no deltas, and wᵀ only for narrow layers.
        backward_width = width if backward else 0
        rows = capacity if gather else 0
        sparse = max_nnz is not None
        # Region 2, its tasks and their scratch, only where gradients are taken.
        tasks = gradient_task_table(units) if backward else np.empty((0, 5), dtype=np.int64)
        self.buffers = Buffers(
            x_batch=np.empty((0 if sparse else rows, units[0]), dtype=dtype),
            y_batch=np.empty((rows, units[-1]), dtype=dtype),
            sw_batch=np.empty(rows, dtype=dtype),
            activations=np.empty(capacity * width, dtype=dtype),
            deltas=np.empty(capacity * backward_width, dtype=dtype),
            losses=np.empty(capacity, dtype=np.float64),
            # Laid out as the activations (see layer_rows): each layer's rows apart, so that
            # threads writing their rows of one layer never touch another's rows of the next.
            undropped=np.empty(capacity * width if dropout else 0, dtype=dtype),
            coefs_t=np.empty(int((units[1:-1] * units[2:]).sum()), dtype=dtype),
            coef_grads_t=np.empty(int((units[1:-1] * units[2:]).sum()) if backward else 0, dtype=dtype),
            col_data=np.empty(max_nnz if sparse else 0, dtype=dtype),
            # A batch's transpose: its stored values' rows, then fan_in + 1 column pointers.
            index_scratch=np.empty(max_nnz + units[0] + 1 if sparse else 0, dtype=np.int64),
            tasks=tasks,
            task_penalty=np.empty(len(tasks), dtype=np.float64),
            # A row per share of region 2 (run_epoch runs no more shares than rows):
            # a task uses its share's row only while it runs. A row per task would
            # take n_0 / r rows.
            penalty_columns=np.empty((min(len(tasks), config.NUMBA_NUM_THREADS), int(units[1:].max())),
                                     dtype=np.float64),
        )
        self.capacity = capacity
        _check_arrays(self.buffers._asdict(), np.dtype(dtype))

    def __getattr__(self, name):
        # The buffers by name: work.activations, work.penalty_columns, ...
        try:
            return getattr(self.__dict__["buffers"], name)
        except (KeyError, AttributeError):
            raise AttributeError(name) from None


@njit(**JIT)
def gather_rows(X, rows, Y, sample_weight, x_batch, y_batch, sw_batch, sparse, n0, n1):
    """Copy the minibatch's rows n0..n1-1 (rows[n] of the input) into the batch
    buffers; the targets and weights only when Y is given."""
    for n in range(n0, n1):
        if not sparse:
            copy_row(X[rows[n]], x_batch[n])
        if Y.shape[0] > 0:
            copy_row(Y[rows[n]], y_batch[n])
            sw_batch[n] = sample_weight[rows[n]]


@intrinsic
def _prefetch(typingctx, array, i, j):
    """Ask the caches for the line holding array[i, j], without waiting for it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array_struct = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array_struct, args[1:])
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]), "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data (1)
        builder.call(prefetch, [pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, i, j), codegen


if config.DISABLE_JIT:
    def _prefetch(array, i, j):  # noqa: F811 - a cache hint, nothing to do in pure Python (NUMBA_DISABLE_JIT=1)
        pass


@njit(**JIT)
def prefetch_rows(X, rows, Y, sparse):
    """Start loading the rows `rows` of the input that the next minibatch will
    gather: random rows of a large X are cache and TLB misses, which then
    overlap this minibatch's work instead of stalling the next one's gather."""
    x_step = max(1, _CACHE_LINE // X.itemsize)
    for n in range(rows.shape[0]):
        if not sparse:
            for k in range(0, X.shape[1], x_step):
                _prefetch(X, rows[n], k)
        if Y.shape[0] > 0:
            _prefetch(Y, rows[n], 0)


def _region_1(name, general, training=True):
    """Region 1 as the compiled function `name`. The general one also takes
    CSR input and dropout; the other, dense input without dropout, leaves
    those branches out at Numba's level (it prunes a branch on a closure's
    constant before typing), so that a dense fit neither types nor compiles
    their kernels (see general_call). Without training, it is a forward pass
    alone (no targets, rows or dropout), which leaves out the loss, the
    backward kernels and the gather (see _forward_region)."""

    def forward_backward_share(params, coefs_t, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight,
                               n_batch, act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                               x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, share, n_shares):
        """Region 1's work for one thread: share `share` of `n_shares` of the
        minibatch's blocks of 4 rows, all gathered first (rows[n] of the input;
        none when rows is empty) so that the loads of many rows are in flight at
        once, then taken PASS_ROWS at a time through the forward pass and, given
        targets Y, s_n ℓ_n, BP1 and BP2. The share's part of next_rows, the next
        minibatch's rows, is prefetched meanwhile. With dropout > 0 the hidden
        units are thinned, row n being the sample at position0 + n of the epoch.

        Parameters
        ----------
        params, coefs_t : 1-D arrays
            The flat parameters, and the wᵀ of layers 1..L-1 (see coef_t_view).
        units : int64 array
            Layer widths, inputs first.
        X, data, indices, indptr : arrays
            The whole input, dense or CSR (see Inputs); read only.
        rows, next_rows : int64 arrays
            This minibatch's rows of the input (empty: rows 0..n_batch-1, used in
            place), and the next minibatch's.
        Y, sample_weight : arrays
            Targets (n_samples, n_outputs) and weights of the whole input; Y with
            no rows asks for the forward pass alone.
        n_batch : int
            Rows in the minibatch.
        act_code, out_code, loss_code, eps : int, int, int, float
            Hidden and output activation codes, loss code, probability clip.
        dropout, dropout_key, position0 : float, uint64, int
            Dropout rate, the epoch's mask key, the batch's first position.
        x_batch, y_batch, sw_batch, activations, deltas, losses, undropped : arrays
            The workspace buffers this region writes (see Workspace).
        share, n_shares : int
            Which contiguous share of the blocks this call takes.
        """
        n_blocks = (n_batch + BLOCK - 1) // BLOCK
        n0 = share * n_blocks // n_shares * BLOCK
        n1 = min((share + 1) * n_blocks // n_shares * BLOCK, n_batch)
        gather = rows.shape[0] > 0
        sparse = indptr.shape[0] > 0
        if training and gather:
            gather_rows(X, rows, Y, sample_weight, x_batch, y_batch, sw_batch, sparse, n0, n1)
            n_next = next_rows.shape[0]
            prefetch_rows(X, next_rows[share * n_next // n_shares : (share + 1) * n_next // n_shares], Y, sparse)
        x = x_batch if gather else X
        y = y_batch if gather and Y.shape[0] > 0 else Y
        sw = sw_batch if gather and Y.shape[0] > 0 else sample_weight
        n_layers = units.shape[0] - 1
        first = np.int64(0)
        # A forward pass alone (rows in place, no dropout) keeps no hidden
        # rows for a backward pass: every pass writes them to the share's
        # first PASS_ROWS rows, which stay in the cache, rather than to rows
        # of their own across a buffer larger than it (3.3 MB for a chunk of
        # 100-100-10 in float64), written out and read back. The output
        # layer's rows go where forward_pass reads them.
        alone = Y.shape[0] == 0 and not gather and dropout == 0.0
        for m0 in range(n0, n1, PASS_ROWS):
            m1 = min(m0 + PASS_ROWS, n1)
            # Rows r0..r1-1 of the hidden layers hold the pass's rows m0..m1-1; the
            # input and the output layer are read and written through views shifted
            # by m0 - r0, so that every kernel takes one row range.
            r0 = n0 if alone else m0
            r1 = r0 + (m1 - m0)
            shift = m0 - r0
            a_out = layer_rows(activations, units, first + 1, n_batch)
            if n_layers == 1:
                a_out = a_out[shift:]
            code = out_code if n_layers == 1 else act_code
            if general and sparse:
                forward_rows_sparse(data, indices, indptr[shift:], rows, coef_view(params, units, first),
                                    intercept_view(params, units, first), code, a_out, r0, r1)
            else:
                if Y.shape[0] == 0:
                    # A forward pass alone checks the pass's rows (see forward_pass) before the
                    # first layer reads them: the check reads each row front to back, as the
                    # hardware prefetcher streams it best, and leaves them in the cache for the
                    # layer where a pass's rows fit (64 rows of 100 float64 inputs: 51 KB).
                    flag_nonfinite_rows(x, losses, m0, m1)
                forward_rows(x[shift:], coef_view(params, units, first), coef_t_view(coefs_t, units, first),
                             intercept_view(params, units, first), code, a_out, r0, r1)
            for layer in range(1, n_layers):
                if training and general and dropout > 0.0:
                    drop_rows(a_out, m0, m1, dropout_key, position0, hidden_unit_offset(units, layer), dropout)
                a_in = a_out
                a_out = layer_rows(activations, units, layer + 1, n_batch)
                if layer == n_layers - 1:
                    a_out = a_out[shift:]
                code = out_code if layer == n_layers - 1 else act_code
                # A narrow layer takes dot products with its wᵀ; any other, row updates with w.
                coefs_t_layer = (coef_t_view(coefs_t, units, layer) if is_narrow(units, layer)
                                 else coefs_t[:0].reshape((0, 0)))
                forward_rows(a_in, coef_view(params, units, layer), coefs_t_layer, intercept_view(params, units, layer),
                             code, a_out, r0, r1)
            if not training or Y.shape[0] == 0:
                continue

            for n in range(m0, m1):
                losses[n] = sw[n] * sample_loss(loss_code, out_code, a_out, y, eps, n)
            delta = layer_rows(deltas, units, n_layers, n_batch)
            output_delta(loss_code, out_code, a_out, y, sw, delta, m0, m1)
            for layer in range(n_layers - 1, 0, -1):
                delta_prev = layer_rows(deltas, units, layer, n_batch)
                activations_prev = layer_rows(activations, units, layer, n_batch)
                if general and dropout > 0.0:
                    unit0 = hidden_unit_offset(units, layer)
                    undropped_prev = layer_rows(undropped, units, layer, n_batch)
                    undropped_rows(activations_prev, undropped_prev, m0, m1, dropout_key, position0, unit0, dropout)
                    backward_rows(delta, coef_t_view(coefs_t, units, layer), undropped_prev, act_code, delta_prev,
                                  m0, m1)
                    drop_rows(delta_prev, m0, m1, dropout_key, position0, unit0, dropout)
                else:
                    backward_rows(delta, coef_t_view(coefs_t, units, layer), activations_prev, act_code, delta_prev,
                                  m0, m1)
                delta = delta_prev

    return njit(name=name, **JIT)(forward_backward_share)


forward_backward_share = _region_1("forward_backward_share", True)
forward_backward_share_dense = _region_1("forward_backward_share_dense", False)
forward_share = _region_1("forward_share", True, training=False)
forward_share_dense = _region_1("forward_share_dense", False, training=False)


def _region_2(name, general):
    """Region 2 as the compiled function `name`: the general one also takes a
    CSR minibatch's transpose, which the other leaves out (see _region_1)."""

    def gradient_task(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, x, n_batch,
                      activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum,
                      opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, share, n_shares):
        """Region 2's work for one thread: the tasks of share `share` of `n_shares`
        (contiguous runs of close to equal work), each BP3 or BP4 for its rows,
        their ‖w‖² (before any update), and given optimizer state (first not
        empty), the step and wᵀ refresh of those rows.

        Parameters
        ----------
        params, grads, coefs_t, coef_grads_t : 1-D arrays
            Flat parameters and gradients, wᵀ and its gradient scratch.
        units, tasks : int64 arrays
            Layer widths; the task table (see gradient_task_table).
        task_penalty, penalty_columns : float64 arrays
            Each task's ‖w‖², and each share's column sums scratch.
        x : 2-D array
            The minibatch's input rows (dense); ignored when col_ptr is not empty.
        n_batch : int
            Rows in the minibatch.
        activations, deltas : 1-D arrays
            Region 1's results (see layer_rows).
        col_data, col_rows, col_ptr : arrays
            A sparse minibatch transposed to CSC; empty for a dense one.
        alpha, weight_sum : float
            L2 strength and Σ_n s_n.
        opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon
            The optimizer's step (see _optimizers.update_slice); empty state: none.
        share, n_shares : int
            Which share of the task list this call takes.
        """
        scale = 1.0 / weight_sum
        for i in range(tasks.shape[0]):
            if task_share(tasks, i, n_shares) != share:
                continue
            layer, k0, k1 = tasks[i, 0], tasks[i, 1], tasks[i, 2]
            fan_out = units[layer + 1]
            delta = layer_rows(deltas, units, layer + 1, n_batch)
            if k0 < 0:
                task_penalty[i] = 0.0
                intercept_grads_of(delta, scale, intercept_view(grads, units, layer))
                lo = intercept_start(units, layer)
                hi = lo + fan_out
            else:
                coefs = coef_view(params, units, layer)
                task_penalty[i] = squared_norm_rows(coefs, k0, k1, penalty_columns[share])
                coef_grads = coef_view(grads, units, layer)
                if is_narrow(units, layer):
                    coef_grad_rows_narrow(layer_rows(activations, units, layer, n_batch), delta, coefs, alpha, scale,
                                          coef_t_view(coef_grads_t, units, layer), coef_grads)
                elif general and layer == 0 and col_ptr.shape[0] > 0:
                    coef_grad_rows_sparse(col_data, col_rows, col_ptr, delta, coefs, alpha, scale, coef_grads, k0, k1)
                elif layer == 0:
                    coef_grad_rows(x, delta, coefs, alpha, scale, coef_grads, k0, k1)
                else:
                    coef_grad_rows(layer_rows(activations, units, layer, n_batch), delta, coefs, alpha, scale,
                                   coef_grads, k0, k1)
                lo = coef_start(units, layer) + k0 * fan_out
                hi = coef_start(units, layer) + k1 * fan_out
            if first.shape[0] > 0:
                update_slice(opt_code, params, grads, first, second, lo, hi, step_size, momentum, nesterov,
                             beta_1, beta_2, epsilon)
                if k0 >= 0 and layer > 0:
                    transpose_rows(coef_view(params, units, layer), coef_t_view(coefs_t, units, layer), k0, k1)

    return njit(name=name, **JIT)(gradient_task)


gradient_task = _region_2("gradient_task", True)
gradient_task_dense = _region_2("gradient_task_dense", False)


@njit(**ENTRY_JIT)
def add_layer_norms(grads, units, scratch, norms):
    """norms[l] += ‖∂C/∂w^l‖ (Frobenius, the L2 term included) for every layer."""
    for layer in range(units.shape[0] - 1):
        norms[layer] += np.sqrt(squared_norm_rows(coef_view(grads, units, layer), np.int64(0), units[layer], scratch))


def _epoch(name, general):
    """run_epoch as the compiled function `name`: the general one also takes
    CSR input and records gradient norms, which the other leaves out at
    Numba's level (see _region_1). general_call tells which a call needs."""

    def run_epoch(params, units, inputs, Y, sample_weight, order, batch_size, terms, grads, work, step, threads,
                  gradient_norms, region_1, region_2):
        """Every minibatch of an epoch: region 1, the batch's loss, region 2 (the
        gradients and, given optimizer state, the update), on Numba's `threads`
        threads (serially when 1, outside Numba's thread pool).

        Parameters
        ----------
        params : 1-D array
            The flat parameters (see _params), updated in place by a step.
        units : int64 array
            Layer widths, inputs first.
        inputs : Inputs
            The input, dense or CSR.
        Y, sample_weight : arrays
            Targets (n_samples, n_outputs), C-contiguous, and sample weights;
            Y with no rows asks for the forward pass alone (predict): the output
            activations are then the last layer's rows in work.activations.
        order : int64 array
            The epoch's rows, in minibatch order, gathered into the workspace; an
            empty order takes all rows in place as one batch.
        batch_size : int
            Rows per minibatch; at least the rows of the input when order is empty.
        terms : Terms
            Activation and loss codes, α, the probability clip eps, the data term's
            scale and dropout's rate and key.
        grads : 1-D array
            Receives the last minibatch's gradients, in params' layout.
        work : Buffers
            The workspace (see Workspace), sized for batch_size rows.
        step : Step
            The optimizer (see _optimizers.Optimizer.step); no_step(dtype) for none.
        threads : int
            Threads for both regions.
        gradient_norms : float64 array
            Receives each layer's ‖∂C/∂w‖ averaged over the minibatches; empty: none.
        region_1, region_2 : int
            The addresses of this version's regions (_REGIONS[index, general])
            compiled for region_signatures(dtype) (see region_address);
            region_2 is 0 for a forward pass alone, which never calls it.

        Returns
        -------
        total : float
            Σ over minibatches of (data_scale × data loss + penalty) × rows;
            for a forward pass alone of dense input, the number of rows
            holding a NaN or an infinity.
        t : int
            The optimizer's step count after the epoch.
        data_loss, penalty : float
            The last minibatch's Σ s_n ℓ_n / Σ s_n and ½ α Σ‖w‖² / Σ s_n.
        """
        # Plain arrays from here on: no bundle of arrays enters a prange body.
        x_batch, y_batch, sw_batch = work.x_batch, work.y_batch, work.sw_batch
        activations, deltas, losses, undropped = work.activations, work.deltas, work.losses, work.undropped
        coefs_t, coef_grads_t, col_data, index_scratch = work.coefs_t, work.coef_grads_t, work.col_data, work.index_scratch
        tasks, task_penalty, penalty_columns = work.tasks, work.task_penalty, work.penalty_columns
        data, indices, indptr = inputs.data, inputs.indices, inputs.indptr
        act_code, out_code, loss_code = terms.act_code, terms.out_code, terms.loss_code
        eps, alpha, dropout, dropout_key = terms.eps, terms.alpha, terms.dropout, terms.dropout_key
        opt_code, first, second, t = step.code, step.first, step.second, step.t
        momentum, nesterov, epsilon, beta_1, beta_2 = step.momentum, step.nesterov, step.epsilon, step.beta_1, step.beta_2

        for layer in range(1, units.shape[0] - 1):
            coefs_t_layer = coef_t_view(coefs_t, units, layer)
            for k in range(units[layer]):
                transpose_rows(coef_view(params, units, layer), coefs_t_layer, k, k + 1)
        gather = order.shape[0] > 0
        sparse = indptr.shape[0] > 0
        n_samples = order.shape[0] if gather else (indptr.shape[0] - 1 if sparse else inputs.X.shape[0])
        fan_in = units[0]
        total = data_loss = penalty = 0.0
        n_batches = 0
        for start in range(0, n_samples, batch_size):
            stop = min(start + batch_size, n_samples)
            n_batch = stop - start
            n_batches += 1
            rows = order[start:stop]
            next_rows = order[stop : stop + batch_size]
            sw = sw_batch if gather else sample_weight
            x = x_batch[:n_batch] if gather else inputs.X
            col_rows = col_ptr = index_scratch[:0]
            weight_sum = data_sum = step_size = 0.0
            # Both regions run from one prange loop, a phase each (region 2 only
            # given targets): Numba outlines every prange loop into a function of
            # its own with two wrappers, about 1 s of a cold first fit apiece.
            # Each region's arguments are one tuple of arrays and scalars (Numba
            # cannot pass a tuple holding a namedtuple into that function).
            args_1 = (params, coefs_t, units, inputs.X, data, indices, indptr, rows, next_rows, Y, sample_weight,
                      n_batch, act_code, out_code, loss_code, eps, dropout, dropout_key, start, x_batch, y_batch,
                      sw_batch, activations, deltas, losses, undropped)
            for phase in range(2 if Y.shape[0] > 0 else 1):
                if phase == 0:
                    n_shares = min(threads, (n_batch + BLOCK - 1) // BLOCK)
                else:
                    for n in range(n_batch):
                        weight_sum += sw[n]
                        data_sum += losses[n]
                    if general and sparse:
                        nnz = 0
                        for n in range(n_batch):
                            row = rows[n] if gather else n
                            nnz += indptr[row + 1] - indptr[row]
                        col_rows = index_scratch[:nnz]
                        col_ptr = index_scratch[nnz : nnz + fan_in + 1]
                        batch_csr_to_csc(data, indices, indptr, rows, n_batch, fan_in, col_data, col_rows, col_ptr)
                    if first.shape[0] > 0:
                        t += 1
                        step_size = step_rate(opt_code, step.learning_rate, beta_1, beta_2, t)
                    # At most a share per scratch row: sized by NUMBA_NUM_THREADS when the
                    # workspace was made, which can differ from the pool's thread count.
                    n_shares = min(threads, tasks.shape[0], penalty_columns.shape[0])
                # Built in both phases, so that it is defined wherever the prange body sees it.
                args_2 = (params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, x, n_batch,
                          activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum, opt_code, first, second,
                          step_size, momentum, nesterov, beta_1, beta_2, epsilon)
                # The share number as int64 in both branches: prange's index is unsigned,
                # and each integer type would compile the region's function again.
                if n_shares == 1:
                    if phase == 0:
                        _call_at(region_1, args_1, np.int64(0), n_shares)
                    else:
                        _call_at(region_2, args_2, np.int64(0), n_shares)
                else:
                    for share in prange(n_shares):
                        if phase == 0:
                            _call_at(region_1, args_1, np.int64(share), n_shares)
                        else:
                            _call_at(region_2, args_2, np.int64(share), n_shares)
            if Y.shape[0] == 0:
                # Region 1 flagged each dense row holding a NaN or an infinity.
                if not (general and sparse):
                    for n in range(n_batch):
                        total += losses[n]
                continue

            penalty_sum = 0.0
            for i in range(task_penalty.shape[0]):
                penalty_sum += task_penalty[i]
            data_loss = data_sum / weight_sum
            penalty = 0.5 * alpha * penalty_sum / weight_sum
            total += (terms.data_scale * data_loss + penalty) * n_batch
            if general and gradient_norms.shape[0] > 0:
                add_layer_norms(grads, units, penalty_columns[0], gradient_norms)
        for layer in range(gradient_norms.shape[0]):
            gradient_norms[layer] /= n_batches
        return total, t, data_loss, penalty

    return njit(name=name, **PARALLEL_JIT)(run_epoch)


run_epoch = _epoch("run_epoch", True)
run_epoch_dense = _epoch("run_epoch_dense", False)
_EPOCHS = {True: run_epoch, False: run_epoch_dense}


def general_call(inputs, terms_, gradient_norms):
    """Whether a run_epoch call with these arguments needs the general epoch
    and regions: CSR input, dropout or gradient norms to record."""
    return inputs.indptr.shape[0] > 0 or terms_.dropout > 0.0 or gradient_norms.shape[0] > 0


def terms(codes, alpha=0.0, eps=0.0, data_scale=1.0, dropout=(0.0, 0)):
    """The Terms of a call, each field cast to the one type the compiled code takes."""
    act_code, out_code, loss_code = codes
    rate, key = dropout
    return Terms(int(act_code), int(out_code), int(loss_code), float(alpha), float(eps), float(data_scale),
                 float(rate), np.uint64(key))


def _check_array(name, array, dtype, ndim):
    if type(array) is np.ndarray and array.dtype == dtype and array.ndim == ndim:
        flags = array.flags
        if flags.c_contiguous and flags.writeable and flags.aligned:
            return
    found = (f"{type(array).__name__} of {array.dtype} and shape {array.shape}, C-contiguous: "
             f"{array.flags.c_contiguous}, writeable: {array.flags.writeable}, aligned: {array.flags.aligned}"
             if isinstance(array, np.ndarray) else type(array).__name__)
    raise TypeError(f"{name} must be a writeable, aligned, C-contiguous {ndim}-d {np.dtype(dtype).name} "
                    f"numpy.ndarray (not a subclass); got a {found}.")


def _check_arrays(arrays, dtype):
    kinds = {"f": dtype, "i": np.int64, "d": np.float64}
    for name, array in arrays.items():
        kind, ndim = _ARRAY_KINDS[name]
        _check_array(name, array, kinds[kind], ndim)


# The type of every array argument of run_epoch, by name: "f" the parameters'
# float dtype, "i" int64, "d" float64, and the number of dimensions.
_ARRAY_KINDS = {
    "params": ("f", 1), "units": ("i", 1), "Y": ("f", 2), "sample_weight": ("f", 1), "order": ("i", 1),
    "grads": ("f", 1), "gradient_norms": ("d", 1),
    "X": ("f", 2), "data": ("f", 1), "indices": ("i", 1), "indptr": ("i", 1),
    "x_batch": ("f", 2), "y_batch": ("f", 2), "sw_batch": ("f", 1), "activations": ("f", 1), "deltas": ("f", 1),
    "losses": ("d", 1), "undropped": ("f", 1), "coefs_t": ("f", 1), "coef_grads_t": ("f", 1), "col_data": ("f", 1),
    "index_scratch": ("i", 1), "tasks": ("i", 2), "task_penalty": ("d", 1), "penalty_columns": ("d", 2),
    "first": ("f", 1), "second": ("f", 1),
}
_INT = (int, np.int64)
_BOOL = (bool, np.bool_)


def _check_sizes(condition, message):
    """Raise, with message() formatted only then, unless condition holds."""
    if not condition:
        raise ValueError(f"run_epoch called with inconsistent sizes: {message()}.")


def _check_network(params, units, inputs):
    """The parameters, widths and input of a call, checked against each other;
    returns (widths as a list, input rows, whether the input is sparse)."""
    dtype = params.dtype
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"params must be float64 or float32, got {dtype}.")
    int64 = np.dtype(np.int64)
    for name, array, kind, ndim in (
        ("params", params, dtype, 1), ("units", units, int64, 1), ("X", inputs.X, dtype, 2),
        ("data", inputs.data, dtype, 1), ("indices", inputs.indices, int64, 1), ("indptr", inputs.indptr, int64, 1),
    ):
        _check_array(name, array, kind, ndim)
    widths = units.tolist()
    _check_sizes(len(widths) >= 2 and min(widths) >= 1, lambda: f"layer widths {widths}")
    _check_sizes(params.shape[0] == n_params(widths),
                 lambda: f"{params.shape[0]} parameters for widths {widths}")
    sparse = inputs.indptr.shape[0] > 0
    n_rows = inputs.indptr.shape[0] - 1 if sparse else inputs.X.shape[0]
    _check_sizes(sparse or inputs.X.shape[1] == widths[0],
                 lambda: f"X has {inputs.X.shape[1]} columns, not {widths[0]}")
    return widths, n_rows, sparse


def check_call(params, units, inputs, Y, sample_weight, order, batch_size, terms_, grads, work, step, threads,
               gradient_norms):
    """Check every argument of run_epoch, before it runs unchecked loops over them.

    Types: each against the one signature compiled per float dtype; any other
    (a read-only or strided array, an integer dtype, a Python int for a float)
    would make Numba compile the whole epoch again, and an array of another
    dtype mixed in would be read as garbage. The workspace's buffers were
    checked when it was made (Workspace), and a Buffers is immutable. Sizes:
    those the kernels index with; a wrong one would be an out-of-bounds access.
    Raises TypeError or ValueError naming the argument.
    """
    dtype = params.dtype
    if not isinstance(work, Buffers):
        raise TypeError(f"work must be a Buffers, got {type(work).__name__}.")
    float_, int64, float64 = dtype, np.dtype(np.int64), np.dtype(np.float64)
    for name, array, kind, ndim in (
        ("Y", Y, float_, 2),
        ("sample_weight", sample_weight, float_, 1), ("order", order, int64, 1), ("grads", grads, float_, 1),
        ("gradient_norms", gradient_norms, float64, 1), ("first", step.first, float_, 1), ("second", step.second, float_, 1),
        ("activations", work.activations, float_, 1),
    ):
        _check_array(name, array, kind, ndim)
    for name, value, kinds in (
        ("batch_size", batch_size, _INT), ("threads", threads, _INT), ("code", step.code, _INT), ("t", step.t, _INT),
        ("learning_rate", step.learning_rate, float), ("momentum", step.momentum, float),
        ("nesterov", step.nesterov, _BOOL), ("beta_1", step.beta_1, float), ("beta_2", step.beta_2, float),
        ("epsilon", step.epsilon, float), ("act_code", terms_.act_code, _INT), ("out_code", terms_.out_code, _INT),
        ("loss_code", terms_.loss_code, _INT), ("alpha", terms_.alpha, float), ("eps", terms_.eps, float),
        ("data_scale", terms_.data_scale, float), ("dropout", terms_.dropout, float),
        ("dropout_key", terms_.dropout_key, np.uint64),
    ):
        # bool is an int to Python, not to Numba.
        if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not _BOOL):
            name_of = kinds.__name__ if isinstance(kinds, type) else kinds[0].__name__
            raise TypeError(f"{name} must be of type {name_of}, got {type(value).__name__}.")

    widths, n_rows, sparse = _check_network(params, units, inputs)
    targets = Y.shape[0] > 0
    _check_sizes(not targets or (Y.shape == (n_rows, widths[-1]) and sample_weight.shape == (n_rows,)
                                 and grads.shape == params.shape), lambda: "targets, weights or gradients")
    gather = order.shape[0] > 0
    _check_sizes(not gather or (order.min() >= 0 and order.max() < n_rows),
                 lambda: "order holds a row out of range")
    batch_rows = min(batch_size, order.shape[0]) if gather else n_rows
    _check_sizes(batch_size >= 1 and (gather or batch_size >= n_rows), lambda: f"batch_size {batch_size}")
    width = sum(widths[1:])
    capacity = work.activations.shape[0] // width
    _check_sizes(capacity >= batch_rows and work.losses.shape[0] >= batch_rows
                 and (not targets or work.deltas.shape[0] >= capacity * width),
                 lambda: f"a workspace for {capacity} rows, given batches of {batch_rows}")
    _check_sizes(not gather or work.y_batch.shape[0] >= batch_rows, lambda: "a workspace without gather buffers")
    if sparse and targets:
        # A batch's transpose takes its stored values and fan_in + 1 column pointers.
        counts = np.diff(inputs.indptr)
        most = int(np.sort(counts)[-batch_rows:].sum()) if gather else int(inputs.indptr[-1])
        _check_sizes(work.col_data.shape[0] >= most and work.index_scratch.shape[0] >= most + widths[0] + 1,
                     lambda: f"a workspace for fewer than the {most} stored values of a batch")
    _check_sizes(not targets or (work.tasks.shape[0] > 0 and work.penalty_columns.shape[0] > 0
                                 and work.penalty_columns.shape[1] >= max(widths[1:])),
                 lambda: "a workspace without region 2's tasks or scratch")
    _check_sizes(terms_.dropout == 0.0 or work.undropped.shape[0] >= capacity * width,
                 lambda: "a workspace without dropout buffers")
    _check_sizes(step.first.shape[0] in (0, params.shape[0]) and step.second.shape == step.first.shape,
                 lambda: "optimizer state")
    _check_sizes(gradient_norms.shape[0] in (0, len(widths) - 1), lambda: "gradient norms")


def _run(params, units, inputs, Y, sample_weight, order, batch_size, terms_, grads, work, step, gradient_norms,
         threads=None):
    """run_epoch on `threads` threads (None: kernel_threads()), its arguments checked first."""
    threads = kernel_threads() if threads is None else threads
    check_call(params, units, inputs, Y, sample_weight, order, batch_size, terms_, grads, work, step, threads,
               gradient_norms)
    return _launch(threads, (params, units, inputs, Y, sample_weight, order, batch_size, terms_, grads, work, step,
                             threads, gradient_norms))


def region_signatures(dtype):
    """The signatures run_epoch calls its regions by, for params of `dtype`,
    by index (see _REGIONS): the argument contract of region 1 (both
    versions of forward_backward_share, and forward_share) and of region 2
    (of gradient_task)."""
    float_ = numba.from_dtype(np.dtype(dtype))
    f1, f2 = types.Array(float_, 1, "C"), types.Array(float_, 2, "C")
    i1, i2 = types.Array(types.int64, 1, "C"), types.Array(types.int64, 2, "C")
    d1, d2 = types.Array(types.float64, 1, "C"), types.Array(types.float64, 2, "C")
    i, f = types.int64, types.float64
    region_1 = types.none(f1, f1, i1, f2, f1, i1, i1, i1, i1, f2, f1, i, i, i, i, f, f, types.uint64, i,
                          f2, f2, f1, f1, f1, d1, f1, i, i)
    region_2 = types.none(f1, f1, f1, f1, i1, i2, d1, d2, f2, i, f1, f1, f1, i1, i1, f, f,
                          i, f1, f1, f, f, types.boolean, f, f, f, i, i)
    # The forward-only region 1 takes region 1's arguments.
    return region_1, region_2, region_1


@intrinsic
def _call_at(typingctx, address, args, share, n_shares):
    """Call the compiled region at `address` with the tuple `args` followed by
    share and n_shares, in Numba's calling convention, passing on any
    exception it raises.

    A call through an address keeps the region's code out of run_epoch's own
    module and that of its prange loop: Numba would link it into each, and
    LLVM optimize and emit it again at every level, over 40% of a cold first
    fit's compile time. Only one of region_signatures' argument lists types;
    it is then the exact argument list the region was compiled for.
    """
    arg_types = tuple(getattr(args, "types", ())) + (share, n_shares)
    if not isinstance(address, types.Integer) or not isinstance(arg_types[0], types.Array):
        return None
    if arg_types not in tuple(sig.args for sig in region_signatures(arg_types[0].dtype.name)):
        raise numba.core.errors.TypingError(f"no region takes the arguments {arg_types}")

    def codegen(context, builder, signature, llargs):
        function_type = context.call_conv.get_function_type(types.none, arg_types)
        function = builder.inttoptr(llargs[0], function_type.as_pointer())
        values = [builder.extract_value(llargs[1], i) for i in range(len(arg_types) - 2)] + list(llargs[2:])
        status, _ = context.call_conv.call_function(builder, function, types.none, arg_types, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(address, args, share, n_shares), codegen


if config.DISABLE_JIT:
    def _call_at(function, args, share, n_shares):  # noqa: F811 - the region itself in pure Python (NUMBA_DISABLE_JIT=1)
        function(*args, share, n_shares)


_region_addresses = {}

# The regions by (index, general): see _region_1 and general_call. Index 2
# is region 1 for a forward pass alone.
_REGIONS = {(0, True): forward_backward_share, (0, False): forward_backward_share_dense,
            (1, True): gradient_task, (1, False): gradient_task_dense,
            (2, True): forward_share, (2, False): forward_share_dense}


def region_address(dtype, index, general):
    """The address of region `index` (0: region 1, 1: region 2), the general
    one or the one for dense input without dropout (see _region_1),
    compiled for its region_signatures entry for params of `dtype`, or
    loaded from the cache, on first use; in pure Python, the function itself."""
    region = _REGIONS[index, general]
    if config.DISABLE_JIT:
        return region
    key = (np.dtype(dtype), index, general)
    address = _region_addresses.get(key)
    if address is None:
        signature = region_signatures(dtype)[index]
        region.compile(signature.args)
        compiled = region.overloads[signature.args]
        address = _region_addresses[key] = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    return address


def compile_epoch(signature, general):
    """Compile run_epoch, the general one or not (see _epoch), for the
    argument types `signature` (a helper process's job, see
    _resolve_entry_points)."""
    _EPOCHS[general].compile(signature)


_resolve_lock = threading.Lock()


def _resolve_entry_points(call, training, region):
    """Compile or load region 1 for run_epoch(*call), the one at `region`
    ((index, general), see _REGIONS; the epoch is of the same version). When
    it is not in the disk cache, the cache is cold: helper processes then
    compile the epoch and, when training, region 2 meanwhile (see
    _cache.compiling_elsewhere), and this process loads them from the cache
    on first use. The epoch goes first: by the time a helper gets to region
    2, this process has cached the row kernels the two regions share, which
    the helper then loads instead of compiling them again (a cold float64
    fit took 8.7-9.3 s with region 2 first, 7.8-8.9 s with it last, three
    rounds each)."""
    dtype, general = call[0].dtype, region[1]
    with _resolve_lock:
        if (dtype, *region) in _region_addresses:
            return
        jobs = []
        # Helpers hand their code over through the disk cache: none without one.
        if JIT["cache"] and not load_cached(_REGIONS[region], region_signatures(dtype)[0].args):
            epoch = _EPOCHS[general]
            signature = tuple(epoch.typeof_pyval(value) for value in call) + (types.int64, types.int64)
            jobs.append((__name__, "compile_epoch", (signature, general)))
            if training:
                jobs.append((__name__, "region_address", (dtype.str, 1, general)))
        with compiling_elsewhere(jobs, _REGIONS[region]._cache.cache_path):
            region_address(dtype, *region)


def _forward_region(dtype, general):
    """The region 1 ((index, general), see _REGIONS) that a forward pass alone
    runs, and with it the epoch (its general flag): a version of region 1
    that this process has compiled, or else finds in the disk cache, and
    otherwise the forward-only one, which compiles no loss, backward or
    gather kernels: the first predict of a model fitted elsewhere, in a
    fresh install, then takes about a third less time (see README, Compile
    time). A dense pass (general False) runs the same in the general
    versions, so it takes one when only that one is at hand: a model fitted
    with dropout, gradient norms or CSR input predicts dense rows (and
    scores its early-stopping validation rows) without compiling the dense
    versions too, and a process that predicted CSR rows predicts dense ones
    without compiling the dense epoch. Looked up in this process first, so
    that a predict after the first reads no cache index."""
    key = np.dtype(dtype)
    usable = ((2, True), (0, True)) if general else ((2, False), (0, False), (2, True), (0, True))
    for region in usable:
        if (key, *region) in _region_addresses:
            return region
    if JIT["cache"] and not config.DISABLE_JIT:
        signature = region_signatures(dtype)[0].args
        for region in usable:
            if load_cached(_REGIONS[region], signature):
                return region
    return 2, general


def _launch(threads, call):
    """run_epoch(*call) on `threads` threads, the count call holds: serially,
    launching no parallel region, when 1."""
    params, Y = call[0], call[3]
    training = Y.shape[0] > 0
    general = general_call(call[2], call[7], call[12])
    # A forward pass alone (Y with no rows) never reaches region 2: a predict
    # in a fresh install compiles only what it runs. The forward-only region
    # takes no gathered rows (order) or dropout: such a call runs region 1.
    if training or call[5].shape[0] > 0 or call[7].dropout > 0.0:
        region = (0, general)
    else:
        region = _forward_region(params.dtype, general)
        general = region[1]
    if (params.dtype, *region) not in _region_addresses and not config.DISABLE_JIT:
        _resolve_entry_points(call, training, region)
    region_2 = region_address(params.dtype, 1, general) if training else 0
    call = call + (region_address(params.dtype, *region), region_2)
    epoch = _EPOCHS[general]
    if threads == 1:
        return epoch(*call)
    with parallel_launches():
        return epoch(*call)


def train_epoch(params, units, inputs, Y, sample_weight, order, batch_size, codes, alpha, eps, data_scale,
                grads, optimizer, work, gradient_norms, dropout):
    """One epoch over the rows `order`, in minibatches of batch_size; the
    optimizer's state is updated in place. Returns Σ_batches (batch loss ×
    batch length), the batch loss being data_scale × data term + penalty."""
    total, optimizer.t, _, _ = _run(params, units, inputs, Y, sample_weight, order, batch_size,
                                    terms(codes, alpha, eps, data_scale, dropout), grads, work.buffers,
                                    optimizer.step(), gradient_norms)
    return total


_NO_NORMS = np.empty(0, dtype=np.float64)

# The empty arrays of a forward-only call, made once per (dtype, outputs):
# nothing ever writes to them.
_forward_constants = {}


def _forward_only(dtype, n_outputs):
    """(Y, sample_weight, grads, step) of a call with no targets: run_epoch
    then takes the forward pass alone."""
    key = (np.dtype(dtype).char, n_outputs)
    constants = _forward_constants.get(key)
    if constants is None:
        empty = np.empty(0, dtype=dtype)
        constants = (np.empty((0, n_outputs), dtype=dtype), empty, empty, no_step(dtype))
        # Checked once here as check_call would: forward_pass then checks only what varies.
        check_call(np.zeros(2 * n_outputs, dtype=dtype), np.array([1, n_outputs]),
                   Inputs(np.empty((1, 1), dtype=dtype), empty, _NO_ROWS, _NO_ROWS), *constants[:2], _NO_ROWS, 1,
                   terms((0, 0, 0)), constants[2], Workspace([1, n_outputs], 1, dtype, backward=False).buffers,
                   constants[3], 1, _NO_NORMS)
        _forward_constants[key] = constants
    return constants


class NonFiniteInputError(ValueError):
    """A forward pass met a NaN or an infinity in its dense input."""


def forward_pass(params, units, inputs, act_code, out_code, work, threads=None):
    """The output activations of all rows of inputs (work sized for them), a
    view into the workspace. Raises NonFiniteInputError when a row of a dense
    input holds a NaN or an infinity: the pass checks each row as it reads
    it, so that a predict need not check its input in a pass of its own.

    Checks what check_call would of the arguments that vary between calls
    (the parameters, widths, input and the workspace's size): the rest are
    forward-only constants checked when made, and the workspace's buffers
    were checked by Workspace. A predict on a few rows is mostly this call.
    """
    widths, n, _ = _check_network(params, units, inputs)
    width = sum(widths[1:])
    buffers = work.buffers
    _check_sizes(buffers.activations.shape[0] >= n * width and buffers.activations.shape[0] % width == 0
                 and buffers.losses.shape[0] >= n, lambda: f"a workspace of another network or for fewer than {n} rows")
    Y, sample_weight, grads, step = _forward_only(params.dtype, widths[-1])
    threads = kernel_threads() if threads is None else threads
    nonfinite_rows, _, _, _ = _launch(threads, (params, units, inputs, Y, sample_weight, _NO_ROWS, max(n, 1),
                                                terms((act_code, out_code, 0)), grads, buffers, step, threads,
                                                _NO_NORMS))
    if nonfinite_rows:
        raise NonFiniteInputError(f"Input contains NaN or infinity ({int(nonfinite_rows)} of {n} rows).")
    # The output layer's rows come last in the activations (see layer_rows).
    capacity = buffers.activations.shape[0] // width
    start = capacity * (width - widths[-1])
    return buffers.activations[start : start + n * widths[-1]].reshape(n, widths[-1])


# Rows per compiled call at predict time: bounds the workspace, not the speed.
PREDICT_CHUNK = 4096

# Forward workspaces kept between predicts, by (widths, dtype, rows): at most
# this many kinds, each at most _SPARE_BYTES (a larger one is allocated per
# call, which its pass takes far longer than), one per thread that predicts
# (up to _SPARES_PER_KIND).
_SPARE_KINDS = 16
_SPARES_PER_KIND = 8
_SPARE_BYTES = 4 << 20
_spares = OrderedDict()
_spares_lock = threading.Lock()


def _new_locks_after_fork():
    """In a child forked while another thread compiled or predicted: that thread is gone, its lock held for good."""
    global _resolve_lock, _spares_lock
    _resolve_lock, _spares_lock = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


@contextmanager
def _forward_workspace(units, rows, dtype):
    """A forward-only workspace for `rows` rows, taken from the spares (its
    capacity the next power of two, so that calls of nearby sizes share one)
    and put back after the pass: a thread has it to itself meanwhile."""
    capacity = min(PREDICT_CHUNK, 1 << max(3, int(rows - 1).bit_length()))
    # The widths by their bytes: a tuple of Python ints cost a predict on one row 1-2 µs.
    key = (np.asarray(units, dtype=np.int64).tobytes(), np.dtype(dtype).char, capacity)
    with _spares_lock:
        spare = _spares.get(key)
        work = spare.pop() if spare else None
    fresh = work is None
    if fresh:
        work = Workspace(units, capacity, dtype, backward=False)
    yield work
    # A spare was small enough when it was made.
    if not fresh or sum(a.nbytes for a in work.buffers) <= _SPARE_BYTES:
        with _spares_lock:
            spare = _spares.setdefault(key, [])
            if len(spare) < _SPARES_PER_KIND:
                spare.append(work)
            _spares.move_to_end(key)
            while len(_spares) > _SPARE_KINDS:
                _spares.popitem(last=False)


def predict(params, units, X, act_code, out_code, n_threads):
    """The network's output on X (dense or scipy sparse, n_features columns),
    a new (n_samples, n_outputs) array of params' dtype, on n_threads threads
    (None: see _threads.forward_threads)."""
    dtype = params.dtype
    n_samples = X.shape[0]
    output = np.empty((n_samples, int(units[-1])), dtype=dtype)
    if sp.issparse(X) and (X.format != "csr" or n_samples > PREDICT_CHUNK):
        # Before scipy converts or slices it (a single CSR chunk is checked as the kernels take it).
        check_sparse_structure(X)
    if sp.issparse(X):
        # Converted once: each chunk is a row slice of it, and scipy slices no
        # matrix of a byte order other than the machine's.
        X = as_csr(X, dtype)
    with forward_threads(n_threads, units, dtype, sp.issparse(X), n_samples, min(n_samples, PREDICT_CHUNK),
                         BLOCK) as threads:
        for start in range(0, n_samples, PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, n_samples)
            # A single chunk is X itself: slicing a sparse matrix copies it.
            part = X if stop - start == n_samples else X[start:stop]
            with _forward_workspace(units, stop - start, dtype) as work:
                output[start:stop] = forward_pass(params, units, input_arrays(part, dtype), act_code, out_code, work,
                                                  threads)
    return output


def backprop(params, units, inputs, Y, sample_weight, codes, alpha, eps, grads, work, dropout=(0.0, 0)):
    """Loss and gradients over all rows of inputs; writes grads (params' layout).
    dropout = (p, key) thins the hidden units, the rows being positions 0, 1, …
    of the epoch whose key it is (work made with dropout=True).
    Returns (data loss, penalty)."""
    _, _, data_loss, penalty = _run(params, units, inputs, Y, sample_weight, _NO_ROWS, max(n_samples_of(inputs), 1),
                                    terms(codes, alpha, eps, 1.0, dropout), grads, work.buffers,
                                    no_step(params.dtype), _NO_NORMS)
    return data_loss, penalty


def add_gradient_norms(grads, units, work, norms):
    """norms[l] += ‖∂C/∂w^l‖ (Frobenius, the L2 term included) for every layer."""
    add_layer_norms(grads, units, work.penalty_columns[0], norms)
