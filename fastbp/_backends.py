"""The engines behind the ``backend`` parameter, in one table: its keys are
the one list of backend names.

Every backend module provides the same names, which the estimators and
the functional API call and nothing else:

- ``input_arrays(X, dtype)``: the input as the backend takes it;
- ``Workspace(units, capacity, dtype, *, gather, max_nnz, backward, dropout)``:
  what its calls need for up to `capacity` rows, allocated once;
- ``forward_pass(params, units, inputs, act_code, out_code, work)``: the output;
- ``predict(params, units, X, act_code, out_code, n_threads)``: the output on X as
  the estimators take it (dense or sparse), in a new array, on the threads it chooses;
  the loop backend's two raise ``_loop.NonFiniteInputError`` on a dense input
  holding a NaN or an infinity, which the estimators then take no pass to check;
- ``backprop(params, units, inputs, Y, sample_weight, codes, alpha, eps, grads, work, dropout)``:
  loss and gradients over all rows, returned as (data loss, penalty);
- ``train_epoch(params, units, inputs, Y, sample_weight, order, batch_size, codes, alpha, eps, data_scale,
  grads, optimizer, work, gradient_norms, dropout)``: one epoch of minibatch steps;
- ``add_gradient_norms(grads, units, work, norms)``: each layer's ‖∂C/∂w‖ added to norms.

``params`` is the flat buffer of ``_params``; ``codes`` is (activation,
output activation, loss) as the integer codes of ``_activations`` and ``_losses``.
"""

from . import _loop, _vectorized

BACKENDS = {"loop": _loop, "vectorized": _vectorized}
