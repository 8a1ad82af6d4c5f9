"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) for
fastbp's estimators.

A fit (or a partial_fit call) is the root task; each epoch, or each L-BFGS
iteration, is a sub-task whose hooks can get the model as it stands at that
point. Sub-tasks are opened only for an estimator with callbacks, so without
any an epoch stays one compiled call and nothing is copied.
"""

import sklearn

from ._params import unpack

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9
    SUPPORTED = False

    class CallbackSupportMixin:
        """Stands in for scikit-learn's mixin where it has none: fits run as
        always, and no callback can be set."""

        def set_callbacks(self, *callbacks):
            raise ImportError(
                f"set_callbacks needs scikit-learn >= 1.9, whose sklearn.callback module provides the callback "
                f"API; scikit-learn {sklearn.__version__} is installed."
            )
else:
    SUPPORTED = True

# What scikit-learn's callback machinery sets on an estimator: the callbacks,
# the task tree of the fit in progress and a meta-estimator's.
CALLBACK_STATE = ("_skl_callbacks", "_skl_callbacks_to_teardown", "_callback_fit_ctx", "_parent_callback_ctx")


def shared_state(estimator):
    """A ``copy.deepcopy`` memo that keeps the estimator's callback state by
    reference: it belongs to the fit in progress (its teardown runs on these
    very objects) and to a meta-estimator's task tree, not to the model that a
    failed fit restores."""
    # A copy taken at once: scikit-learn's fit wrapper of another thread's call deletes these meanwhile.
    state = vars(estimator).copy()
    return {id(state[name]): state[name] for name in CALLBACK_STATE if name in state}


def epoch_model(params, units):
    """The reconstruction attributes of the model held in the flat buffer
    ``params``: coefs_ and intercepts_ as views of a copy of it, which the next
    epoch does not overwrite. Everything else predict needs was set before the
    first epoch; predict packs the weights afresh at each call."""
    coefs, intercepts = unpack(params.copy(), units)
    return {"coefs_": coefs, "intercepts_": intercepts}


class FitTask:
    """The root task of one fit or partial_fit call: its hooks get the data the
    user passed (the original labels, which the scorers compare predictions
    with, not the binarized targets). Inert without ``sklearn.callback``."""

    def __init__(self, estimator, X, y, sample_weight, max_subtasks):
        self.estimator = estimator
        self.data = {"X": X, "y": y, "metadata": None if sample_weight is None else {"sample_weight": sample_weight}}
        # Initialised with or without callbacks, as scikit-learn's estimators
        # do: a meta-estimator's task tree is joined here either way.
        self.context = estimator._init_callback_context(max_subtasks=max_subtasks) if SUPPORTED else None
        if self.context is not None:
            self.context.call_on_fit_task_begin(estimator=estimator, **self.data)

    def end(self):
        if self.context is not None:
            # The estimator itself is the model at the end of the fit.
            self.context.call_on_fit_task_end(estimator=self.estimator, reconstruction_attributes={}, **self.data)

    def subtasks(self, task_name, units):
        """The sub-tasks named task_name, or None for an estimator with no
        callbacks (checked once per fit, so that an epoch then costs nothing)."""
        return _SubTasks(self, task_name, units) if hasattr(self.estimator, "_skl_callbacks") else None


class _SubTasks:
    """Epochs or L-BFGS iterations, one at a time. The hooks get the model as
    a callable, evaluated only for a callback that asks for a fitted estimator."""

    def __init__(self, fit_task, task_name, units):
        self._fit_task = fit_task
        self._task_name = task_name
        self._units = units
        self._current = None
        self._accepted = None
        self.stop_requested = False

    def _hook_args(self, params):
        return {"estimator": self._fit_task.estimator, **self._fit_task.data,
                "reconstruction_attributes": lambda: epoch_model(params, self._units)}

    def begin(self, params):
        """Begins the next sub-task, the model being in ``params``."""
        self._current = self._fit_task.context.subcontext(task_name=self._task_name)
        self._current.call_on_fit_task_begin(**self._hook_args(params))

    def end(self, params):
        """Ends the current sub-task, its model in ``params``; True when a
        callback asks the fit to stop there."""
        context, self._current = self._current, None
        self.stop_requested = context.call_on_fit_task_end(**self._hook_args(params))
        return self.stop_requested

    def step(self, params):
        """At the end of an L-BFGS iteration, its accepted point in params:
        ends it; True on a stop request. The next one begins at the
        optimizer's next loss evaluation (see resume)."""
        # scipy moves on in this very array.
        self._accepted = params.copy()
        return self.end(self._accepted)

    def resume(self):
        """Before an L-BFGS loss evaluation: begins an iteration, from the
        last accepted point, unless one is open. scipy does not say whether
        an iteration follows the last one; opening it only when it evaluates
        the loss means none is opened after the last."""
        if self._current is None:
            self.begin(self._accepted)

    def close(self, params):
        """Ends the iteration scipy left open, if any (it stopped inside a
        line search, or found its start point already optimal), with the
        model it returns, params. Returns whether a callback asked the fit to
        stop."""
        if self._current is not None:
            self.end(params)
        return self.stop_requested
