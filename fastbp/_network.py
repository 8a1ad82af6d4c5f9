"""The whole network on flat buffers, in two parallel regions per minibatch.

Region 1 (``forward_backward``) splits the samples into blocks of 4, and
the blocks into one contiguous share per thread: each thread takes the rows
of its share through every layer's forward pass, the output delta (BP1) and
the δ recursion (BP2) down to the first hidden layer, one layer at a time,
without waiting for any other thread. Region 2 (``gradient_tasks``) splits
the weight rows of every layer, and each bias vector, into a list of tasks,
and the list into one contiguous share of equal work per thread: each
thread sums the gradients of its rows (BP3, BP4) and, during training,
updates those parameters at once and refreshes their column of wᵀ for the
next minibatch's δ recursion. Two barriers per minibatch instead of one per
layer and kernel is what lets a small minibatch use several threads.

Each output element is written by one thread, summed in a fixed order, so the
results are bitwise the same for any number of threads.

The input comes dense (X) or as CSR arrays (data, indices, indptr; X is
then an empty (0, 0) array): a sparse X only changes the first layer's
forward pass and gradient sums, which loop over the stored nonzeros.
A minibatch is the rows `rows` of the input, gathered by each thread for
its share in region 1; an empty `rows` means all rows in order, with no copy.
"""

import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import njit
from ._config import JIT, PARALLEL_JIT
from ._dropout import NO_DROPOUT, drop_rows, hidden_unit_offset, undropped_rows
from ._kernels import (
    BLOCK,
    NARROW,
    backward_rows,
    batch_csr_to_csc,
    coef_grad_rows,
    coef_grad_rows_narrow,
    coef_grad_rows_sparse,
    copy_row,
    forward_rows,
    forward_rows_sparse,
    intercept_grads_of,
    squared_norm_rows,
    transpose_rows,
)
from ._losses import output_delta, sample_loss
from ._optimizers import step_rate, update_slice
from ._threads import kernel_threads, parallel_launches
from ._params import coef_start, coef_t_view, coef_view, intercept_start, intercept_view, layer_rows

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


def input_arrays(X, dtype):
    """(X, data, indices, indptr) as the kernels take an input: a dense X as a
    writeable C-contiguous array with empty CSR arrays, a sparse X as CSR arrays
    with an empty (0, 0) X."""
    no_index = np.empty(0, dtype=np.int64)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
        # The kernels index with these arrays unchecked: a column index out of
        # range or a decreasing indptr would be an out-of-bounds access.
        X.check_format(full_check=True)
        X.sort_indices()
        return (np.empty((0, 0), dtype=dtype), np.ascontiguousarray(X.data),
                X.indices.astype(np.int64), X.indptr.astype(np.int64))
    X = np.require(X, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])
    return X, np.empty(0, dtype=dtype), no_index, no_index


@njit(**JIT)
def is_narrow(units, layer):
    """Whether layer `layer` (weights W^layer) takes the narrow kernels; layer 0
    never does, as no wᵀ is kept for it."""
    return layer > 0 and units[layer + 1] < NARROW


@njit(**JIT)
def narrow_t_view(coefs_t, units, layer):
    """wᵀ of a narrow layer, for its forward dot products; empty for any other."""
    if is_narrow(units, layer):
        return coef_t_view(coefs_t, units, layer)
    return coefs_t[:0].reshape((0, 0))


def gradient_task_table(units):
    """Rows (layer, k0, k1, before, work) of region 2's tasks; k0 = -1 is the
    layer's bias vector. A narrow layer's gradient is summed transposed, all its
    rows in one task. `work` counts a task's multiply-adds per sample, `before`
    those of the tasks ahead of it in the list."""
    tasks = []
    for layer in range(len(units) - 1):
        fan_in, fan_out = int(units[layer]), int(units[layer + 1])
        rows = fan_in if is_narrow(units, layer) else max(BLOCK, BLOCK * round(_TASK_WORK / fan_out / BLOCK))
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
    pre-dropout activations of one hidden layer."""

    def __init__(self, units, capacity, dtype, *, gather=False, max_nnz=None, backward=True, dropout=False):
        units = np.asarray(units, dtype=np.int64)
        width = int(units[1:].sum())
        # A forward pass alone (predict, validation) needs no deltas, and wᵀ only for narrow layers.
        backward_width = width if backward else 0
        rows = capacity if gather else 0
        sparse = max_nnz is not None
        self.x_batch = np.empty((0 if sparse else rows, units[0]), dtype=dtype)
        self.y_batch = np.empty((rows, units[-1]), dtype=dtype)
        self.sw_batch = np.empty(rows, dtype=dtype)
        self.activations = np.empty(capacity * width, dtype=dtype)
        self.deltas = np.empty(capacity * backward_width, dtype=dtype)
        self.losses = np.empty(capacity, dtype=np.float64)
        self.undropped = np.empty((capacity if dropout else 0, int(units[1:-1].max(initial=0))), dtype=dtype)
        self.coefs_t = np.empty(int((units[1:-1] * units[2:]).sum()), dtype=dtype)
        self.coef_grads_t = np.empty(self.coefs_t.shape[0] if backward else 0, dtype=dtype)
        self.col_data = np.empty(max_nnz if sparse else 0, dtype=dtype)
        # A batch's transpose: its stored values' rows, then fan_in + 1 column pointers.
        self.index_scratch = np.empty(max_nnz + units[0] + 1 if sparse else 0, dtype=np.int64)
        self.tasks = gradient_task_table(units)
        self.task_penalty = np.empty(len(self.tasks), dtype=np.float64)
        self.penalty_columns = np.empty((len(self.tasks), int(units[1:].max())), dtype=np.float64)

    def buffers(self):
        """The workspace arguments of the compiled batch functions, in order."""
        return (self.x_batch, self.y_batch, self.sw_batch, self.activations, self.deltas, self.losses,
                self.undropped, self.coefs_t, self.coef_grads_t, self.col_data, self.index_scratch, self.tasks,
                self.task_penalty, self.penalty_columns)


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


@njit(**JIT)
def forward_backward_rows(params, coefs_t, units, x, data, indices, indptr, rows, y, sw, n_batch,
                          act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                          activations, deltas, losses, undropped, n0, n1):
    """Region 1's work for rows n0..n1-1 of the minibatch held in x (or in the
    CSR arrays, at rows), y and sw, one layer at a time: the forward pass, and
    given targets y, s_n ℓ_n, BP1 and BP2. With dropout > 0, the hidden units
    are thinned, row n being the sample at position0 + n of the epoch."""
    n_layers = units.shape[0] - 1
    a_out = layer_rows(activations, units, 1, n_batch)
    code = out_code if n_layers == 1 else act_code
    if indptr.shape[0] > 0:
        forward_rows_sparse(data, indices, indptr, rows, coef_view(params, units, 0),
                            intercept_view(params, units, 0), code, a_out, n0, n1)
    else:
        forward_rows(x, coef_view(params, units, 0), narrow_t_view(coefs_t, units, 0), intercept_view(params, units, 0),
                     code, a_out, n0, n1)
    for layer in range(1, n_layers):
        if dropout > 0.0:
            drop_rows(a_out, n0, n1, dropout_key, position0, hidden_unit_offset(units, layer), dropout)
        a_in = a_out
        a_out = layer_rows(activations, units, layer + 1, n_batch)
        code = out_code if layer == n_layers - 1 else act_code
        forward_rows(a_in, coef_view(params, units, layer), narrow_t_view(coefs_t, units, layer),
                     intercept_view(params, units, layer), code, a_out, n0, n1)
    if y.shape[0] == 0:
        return

    for n in range(n0, n1):
        losses[n] = sw[n] * sample_loss(loss_code, out_code, a_out, y, eps, n)
    delta = layer_rows(deltas, units, n_layers, n_batch)
    output_delta(loss_code, out_code, a_out, y, sw, delta, n0, n1)
    for layer in range(n_layers - 1, 0, -1):
        delta_prev = layer_rows(deltas, units, layer, n_batch)
        activations_prev = layer_rows(activations, units, layer, n_batch)
        if dropout > 0.0:
            unit0 = hidden_unit_offset(units, layer)
            undropped_prev = undropped[:n_batch, : units[layer]]
            undropped_rows(activations_prev, undropped_prev, n0, n1, dropout_key, position0, unit0, dropout)
            backward_rows(delta, coef_t_view(coefs_t, units, layer), undropped_prev, act_code, delta_prev, n0, n1)
            drop_rows(delta_prev, n0, n1, dropout_key, position0, unit0, dropout)
        else:
            backward_rows(delta, coef_t_view(coefs_t, units, layer), activations_prev, act_code, delta_prev, n0, n1)
        delta = delta_prev


@njit(**JIT)
def forward_backward_chunk(params, coefs_t, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight,
                           n_batch, act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                           x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, block0, block1):
    """One thread's share of region 1, the rows of blocks block0..block1-1:
    all gathered first, so that the loads of many rows are in flight at once,
    then taken through the network together, one layer after another.
    The rows next_rows, of the next minibatch, are prefetched meanwhile."""
    n0 = block0 * BLOCK
    n1 = min(block1 * BLOCK, n_batch)
    gather = rows.shape[0] > 0
    sparse = indptr.shape[0] > 0
    if gather:
        gather_rows(X, rows, Y, sample_weight, x_batch, y_batch, sw_batch, sparse, n0, n1)
        prefetch_rows(X, next_rows, Y, sparse)
    x = x_batch if gather else X
    y = y_batch if gather and Y.shape[0] > 0 else Y
    sw = sw_batch if gather and Y.shape[0] > 0 else sample_weight
    for m0 in range(n0, n1, PASS_ROWS):
        forward_backward_rows(params, coefs_t, units, x, data, indices, indptr, rows, y, sw, n_batch,
                              act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                              activations, deltas, losses, undropped, m0, min(m0 + PASS_ROWS, n1))


@njit(**PARALLEL_JIT)
def forward_backward(params, coefs_t, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight, n_batch,
                     act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                     x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, threads):
    """Region 1: the blocks of samples in one contiguous share per thread, on
    Numba's `threads` threads (serially when 1). Each block's result is the
    same whatever share it falls in. Each thread prefetches about the share of
    next_rows (the next minibatch's rows) that it will gather next."""
    n_blocks = (n_batch + BLOCK - 1) // BLOCK
    if threads == 1:
        forward_backward_chunk(params, coefs_t, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight,
                               n_batch, act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                               x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, 0, n_blocks)
    else:
        # The count comes in as an argument: numba.get_num_threads() inside would make the function uncacheable.
        n_shares = min(threads, n_blocks)
        n_next = next_rows.shape[0]
        for share in prange(n_shares):
            forward_backward_chunk(params, coefs_t, units, X, data, indices, indptr, rows,
                                   next_rows[share * n_next // n_shares : (share + 1) * n_next // n_shares],
                                   Y, sample_weight, n_batch, act_code, out_code, loss_code, eps, dropout,
                                   dropout_key, position0, x_batch, y_batch, sw_batch, activations, deltas, losses,
                                   undropped, share * n_blocks // n_shares, (share + 1) * n_blocks // n_shares)


@njit(**JIT)
def gradient_task(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, X, n_batch,
                  activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum,
                  opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, i):
    """Region 2's task i: BP3 or BP4 for its rows, their ‖w‖² (before any update),
    and given optimizer state, the step and wᵀ refresh of those rows."""
    scale = 1.0 / weight_sum
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
        task_penalty[i] = squared_norm_rows(coefs, k0, k1, penalty_columns[i])
        coef_grads = coef_view(grads, units, layer)
        if is_narrow(units, layer):
            coef_grad_rows_narrow(layer_rows(activations, units, layer, n_batch), delta, coefs, alpha, scale,
                                  coef_t_view(coef_grads_t, units, layer), coef_grads)
        elif layer == 0 and col_ptr.shape[0] > 0:
            coef_grad_rows_sparse(col_data, col_rows, col_ptr, delta, coefs, alpha, scale, coef_grads, k0, k1)
        elif layer == 0:
            coef_grad_rows(X, delta, coefs, alpha, scale, coef_grads, k0, k1)
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


@njit(**PARALLEL_JIT)
def gradient_tasks(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, X, n_batch,
                   activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum,
                   opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, threads):
    """Region 2: every task, on Numba's `threads` threads (serially when 1),
    each thread taking one contiguous share of the list, equal in work."""
    if threads == 1:
        for i in range(tasks.shape[0]):
            gradient_task(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, X, n_batch,
                          activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum,
                          opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, i)
    else:
        n_shares = min(threads, tasks.shape[0])
        for share in prange(n_shares):
            for i in range(tasks.shape[0]):
                if task_share(tasks, i, n_shares) == share:
                    gradient_task(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns,
                                  X, n_batch, activations, deltas, col_data, col_rows, col_ptr, alpha, weight_sum,
                                  opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, i)


@njit(**JIT)
def add_gradient_norms(grads, units, scratch, norms):
    """norms[l] += ‖∂C/∂w^l‖ (Frobenius, the L2 term included) for every layer."""
    for layer in range(units.shape[0] - 1):
        norms[layer] += np.sqrt(squared_norm_rows(coef_view(grads, units, layer), 0, units[layer], scratch))


@njit(**JIT)
def build_coefs_t(params, units, coefs_t):
    """wᵀ of layers 1..L-1, for the δ recursion."""
    for layer in range(1, units.shape[0] - 1):
        coefs = coef_view(params, units, layer)
        coefs_t_layer = coef_t_view(coefs_t, units, layer)
        for k in range(units[layer]):
            transpose_rows(coefs, coefs_t_layer, k, k + 1)


@njit(**JIT)
def batch_step(params, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight, n_batch,
               act_code, out_code, loss_code, alpha, eps, grads, dropout, dropout_key, position0,
               x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, coefs_t, coef_grads_t, col_data,
               index_scratch,
               tasks, task_penalty, penalty_columns,
               opt_code, first, second, t, learning_rate, momentum, nesterov, beta_1, beta_2, epsilon, threads):
    """Loss and gradients of one minibatch (rows of the input; next_rows, those
    of the next minibatch, are prefetched), and given optimizer
    state (first non-empty), the optimizer step number t. coefs_t must hold the current wᵀ.
    dropout > 0 thins the hidden units (the batch starting at position0 of the epoch).
    Returns (Σ s_n ℓ_n / Σ s_n, ½ α Σ‖w‖² / Σ s_n), the loss before the step."""
    forward_backward(params, coefs_t, units, X, data, indices, indptr, rows, next_rows, Y, sample_weight, n_batch,
                     act_code, out_code, loss_code, eps, dropout, dropout_key, position0,
                     x_batch, y_batch, sw_batch, activations, deltas, losses, undropped, threads)
    sw = sw_batch if rows.shape[0] > 0 else sample_weight
    weight_sum = 0.0
    data_loss = 0.0
    for n in range(n_batch):
        weight_sum += sw[n]
        data_loss += losses[n]

    fan_in = units[0]
    if indptr.shape[0] > 0:
        nnz = 0
        for n in range(n_batch):
            row = rows[n] if rows.shape[0] > 0 else n
            nnz += indptr[row + 1] - indptr[row]
        col_rows = index_scratch[:nnz]
        col_ptr = index_scratch[nnz : nnz + fan_in + 1]
        batch_csr_to_csc(data, indices, indptr, rows, n_batch, fan_in, col_data, col_rows, col_ptr)
    else:
        col_rows = index_scratch[:0]
        col_ptr = index_scratch[:0]
    x = x_batch[:n_batch] if rows.shape[0] > 0 else X
    step_size = step_rate(opt_code, learning_rate, beta_1, beta_2, t) if first.shape[0] > 0 else 0.0
    gradient_tasks(params, grads, coefs_t, coef_grads_t, units, tasks, task_penalty, penalty_columns, x, n_batch,
                   activations, deltas,
                   col_data, col_rows, col_ptr, alpha, weight_sum,
                   opt_code, first, second, step_size, momentum, nesterov, beta_1, beta_2, epsilon, threads)
    penalty = 0.0
    for i in range(task_penalty.shape[0]):
        penalty += task_penalty[i]
    return data_loss / weight_sum, 0.5 * alpha * penalty / weight_sum


_NO_ROWS = np.empty(0, dtype=np.int64)


def n_samples_of(inputs):
    X, _, _, indptr = inputs
    return indptr.shape[0] - 1 if indptr.shape[0] > 0 else X.shape[0]


def forward_pass(params, units, inputs, act_code, out_code, work):
    """The output activations of all rows of inputs (work sized for them)."""
    n = n_samples_of(inputs)
    no_targets = np.empty((0, units[-1]), dtype=params.dtype)
    no_weights = np.empty(0, dtype=params.dtype)
    build_coefs_t(params, units, work.coefs_t)
    with parallel_launches():
        forward_backward(params, work.coefs_t, units, *inputs, _NO_ROWS, _NO_ROWS, no_targets, no_weights, n,
                         act_code, out_code, 0, 0.0, 0.0, np.uint64(0), 0, work.x_batch, work.y_batch,
                         work.sw_batch, work.activations, work.deltas, work.losses, work.undropped, kernel_threads())
    return layer_rows(work.activations, units, units.shape[0] - 1, n)


def backprop(params, units, inputs, Y, sample_weight, codes, alpha, eps, grads, work, dropout=NO_DROPOUT):
    """Loss and gradients over all rows of inputs; writes grads (params' layout).
    dropout = (p, key) thins the hidden units, the rows being positions 0, 1, …
    of the epoch whose key it is (work made with dropout=True).
    Returns (data loss, penalty)."""
    build_coefs_t(params, units, work.coefs_t)
    no_state = np.empty(0, dtype=params.dtype)
    with parallel_launches():
        return batch_step(params, units, *inputs, _NO_ROWS, _NO_ROWS, Y, sample_weight, n_samples_of(inputs), *codes,
                          alpha, eps, grads, *dropout, 0, *work.buffers(),
                          0, no_state, no_state, 0, 0.0, 0.0, False, 0.0, 0.0, 0.0, kernel_threads())
