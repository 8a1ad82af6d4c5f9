"""MLPClassifier and MLPRegressor: scikit-learn's API and results, trained by
the compiled epoch (sgd, adam) or by L-BFGS on one compiled loss-and-gradient
call per evaluation."""

import copy
import os
import threading
import warnings
import weakref
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from numba.core import config as numba_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network._multilayer_perceptron import MLPRegressor as _SkMLPRegressor
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron as _SkBase
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import assert_all_finite, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, validate_data

from . import _callbacks
from ._activations import ACTIVATION_CODES
from ._callbacks import CallbackSupportMixin
from ._dropout import epoch_key
from ._backends import BACKENDS
from ._functional import loss_value
from ._loop import NonFiniteInputError, check_sparse_structure, layer_rows
from ._interrupt import deferred_interrupt
from ._labels import binarize, fit_labels, labels_of
from ._losses import LOSS_CODES, SQUARED_ERROR
from ._optimizers import Optimizer
from ._params import n_params, pack, unpack, views_of
from ._threads import ThreadGovernor, thread_limits
from ._validation import (LayerCountError, check_cast_input, check_model_parameters, check_sample_weight,
                          check_targets, check_Y, scale_weights)

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_NO_NORMS = np.empty(0)


class _ByIdentity:
    """A mapping from live objects to values, keyed by identity, that forgets
    an object when it is collected: a WeakKeyDictionary hashes its keys, and a
    subclass of an estimator that defines __eq__ has no hash."""

    def __init__(self):
        self._entries = {}

    def get(self, key):
        entry = self._entries.get(id(key))
        return None if entry is None or entry[0]() is not key else entry[1]

    def __setitem__(self, key, value):
        entries, ident = self._entries, id(key)
        # Called while the object is collected, before its id can be reused.
        self._entries[ident] = (weakref.ref(key, lambda _: entries.pop(ident, None)), value)


_FIT_LOCKS = _ByIdentity()
# Per estimator, the last checked coefs_/intercepts_ objects and their packed form (see _packed_parameters):
# kept outside the estimator, as the fit locks are, so that neither pickle nor clone carries it.
_PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_PREDICT_STATE = _ByIdentity()
_FIT_LOCKS_GUARD = threading.Lock()


def _new_fit_locks_after_fork():
    """In a child forked while another thread fitted (its fit lock held, for
    good: that thread is gone), a fit of the same model hung; it now runs on
    the model as the fork left it, as scikit-learn's does."""
    global _FIT_LOCKS, _FIT_LOCKS_GUARD
    _FIT_LOCKS, _FIT_LOCKS_GUARD = _ByIdentity(), threading.Lock()


os.register_at_fork(after_in_child=_new_fit_locks_after_fork)


def _fit_lock(estimator):
    """The estimator's own lock, kept outside it: it must not travel with
    clone, pickle or the pre-fit snapshot. Re-entrant, for a callback or the
    early-stopping score that uses the model within its own fit."""
    with _FIT_LOCKS_GUARD:
        lock = _FIT_LOCKS.get(estimator)
        if lock is None:
            lock = _FIT_LOCKS[estimator] = threading.RLock()
        return lock


def _snapshot(state, memo):
    """A deep copy of an estimator's __dict__ to restore after a failed fit.
    Lists of floats (loss_curve_, validation_scores_) are copied shallowly:
    they grow with every partial_fit call, and a deep copy of each float made
    a long run of partial_fit calls quadratic. RandomStates are kept by
    reference: every fit draws _random_state afresh from random_state before
    using it, so a restored model never reads the old one, and copying one
    (by pickling) took 0.19 ms, most of the snapshot's cost on a small fit."""
    return {
        name: value if isinstance(value, np.random.RandomState)
        else list(value) if isinstance(value, list) and all(type(v) is float for v in value)
        else copy.deepcopy(value, memo)
        # A copy taken at once: scikit-learn's fit wrapper sets and deletes the callback state of
        # another thread's call outside the fit lock, meanwhile.
        for name, value in state.copy().items()
    }


def _check_class_weight(class_weight, classes, per_class):
    """Reject class weights no fit can train with, naming class_weight:
    compute_class_weight takes a dict's values as given, and the fit would
    end in non-finite weights blamed on the learning rate. per_class holds
    the weight of each of classes."""
    bad = ~np.isfinite(per_class)
    if bad.any():
        if isinstance(class_weight, str):
            # 'balanced' divides by each class's summed sample_weight.
            raise ValueError(
                f"class_weight='balanced' weighs classes {classes[bad].tolist()} by infinity: their samples' "
                "sample_weight sums to zero. Give some of them a non-zero sample_weight, or leave them out of y."
            )
        raise ValueError(
            f"class_weight must be finite; it weighs classes {classes[bad].tolist()} by "
            f"{per_class[bad].tolist()}."
        )
    negative = per_class < 0
    if negative.any():
        raise ValueError(
            f"Negative values in data passed to class_weight: classes {classes[negative].tolist()} weigh "
            f"{per_class[negative].tolist()}. Class weights, as sample weights, must be non-negative."
        )


def _cast_targets(y, dtype):
    """y as a writeable C array of the training dtype, rejecting a y that
    overflows in the cast (a longdouble y to float64, or a float64 y to the
    float32 of sgd or adam on float32 X): validate_data checked y's
    finiteness in y's own dtype."""
    with np.errstate(over="ignore"):
        Y = np.require(y, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])
    if y.dtype.kind == "f" and y.dtype.itemsize > dtype.itemsize and not np.isfinite(Y).all():
        raise ValueError(
            f"Input y contains infinity or a value too large for {dtype!r}: y, of dtype {y.dtype}, holds "
            f"values beyond the range of {dtype}, in which the model trains. Scale y."
        )
    return Y


def _finite_sum(values):
    """Whether the sum of values is finite, as a quick sign that all of them
    are; a sum of finite values that overflows says no, without the warning
    NumPy would give about it (the values then go through validation)."""
    with np.errstate(over="ignore"):
        return np.isfinite(values.sum())


def _numeric_operands(X, dtype):
    """X as predict's products may take it, or the TypeError scikit-learn's
    predict meets in its matrix product, with NumPy's or Python's own words,
    for a validated X that a cast to `dtype` would instead turn into numbers:
    datetime64 and timedelta64 values (their counts of days or seconds), and
    an object array (what validation leaves of a list holding None) holding
    anything but real numbers (None would become NaN). An object array of
    real numbers comes back cast, checked finite as validation checks any
    other X (a float infinity among Fractions would pass unchecked)."""
    if sp.issparse(X):
        return X
    if X.dtype.kind in "mM":
        try:
            np.matmul(X[:1], np.zeros((X.shape[1], 1), dtype=dtype))
        except TypeError as error:
            raise TypeError(f"{error}: X of dtype {X.dtype} is not numeric.") from None
    if X.dtype.kind == "O":
        for value in X.flat:
            if not isinstance(value, Real):
                try:
                    value * 0.0
                except TypeError as error:
                    raise TypeError(f"{error}: X holds {value!r}, not a number.") from None
                raise TypeError(f"X holds {value!r}, not a real number.")
        X = X.astype(dtype)
        assert_all_finite(X, input_name="X")
    return X


_SK_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and "
                  "need to be preprocessed.")


def _check_alpha(alpha, coefs, sample_weight):
    """Reject an alpha whose L2 term overflows the training dtype at the
    starting weights. Adam's second moment squares the penalty's gradient
    α W / Σ s, and L-BFGS's inner products square its norm: past the bound
    checked here, whatever the learning rate, adam's steps turn NaN, L-BFGS
    stops where it began with a NaN loss and sgd's steps diverge
    (scikit-learn's adam and lbfgs leave the weights where they began)."""
    dtype = coefs[0].dtype
    # Python numbers compare exactly: an int alpha too large for float64, and a
    # NumPy float32 alpha (NumPy would cast the bound to float32, with an
    # overflow warning).
    largest = float(np.finfo(dtype).max)
    if (float(alpha) if isinstance(alpha, np.floating) else alpha) <= largest:
        with np.errstate(over="ignore"):
            squares = sum(np.square(c, dtype=np.float64).sum() for c in coefs)
            scale = np.float64(alpha) / np.sum(sample_weight, dtype=np.float64)
            if scale * scale * squares <= largest:
                return
    raise ValueError(
        f"alpha={alpha!r} is too large: the L2 penalty's gradient, alpha * coefs_ / sum(sample_weight), "
        f"overflows {dtype} once squared, as the solvers square it. Use a smaller alpha (or, continuing from "
        f"assigned weights, smaller ones: the largest |coefs_| is {max(float(np.abs(c).max()) for c in coefs):.3g})."
    )


def _check_batch_weights(sample_weight, rows, batch_size):
    """Raise np.average's ZeroDivisionError, as scikit-learn does, for a
    minibatch of the epoch's order whose sample weights sum to zero, before
    the compiled epoch divides by that sum."""
    if sample_weight.all():
        return
    sums = np.add.reduceat(sample_weight[rows], np.arange(0, rows.shape[0], batch_size))
    empty = np.flatnonzero(sums == 0)
    if empty.size:
        start = int(empty[0]) * batch_size
        stop = min(start + batch_size, rows.shape[0])
        raise ZeroDivisionError(
            f"Weights sum to zero, can't be normalized: the minibatch of rows {start} to {stop - 1} of this "
            f"epoch's order (batch_size={batch_size}; rows {rows[start:min(stop, start + 5)].tolist()}"
            f"{'...' if stop - start > 5 else ''} of X) has sample weights (sample_weight, times class_weight if "
            "given) summing to zero. Give weight to some of its rows, or use a larger batch_size."
        )


# The parameters scikit-learn's MLP does not have.
_OWN_PARAMETERS = ("backend", "n_threads", "record_gradient_norms", "dropout", "class_weight")


class _BaseMLP(CallbackSupportMixin, BaseEstimator):
    _parameter_constraints: dict = {
        **_SkBase._parameter_constraints,
        "backend": [StrOptions(set(BACKENDS))],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "record_gradient_norms": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun, backend, n_threads, record_gradient_norms,
                 dropout):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.n_threads = n_threads
        self.record_gradient_norms = record_gradient_norms
        self.dropout = dropout

    # ------------------------------------------------------------------ setup

    def _codes(self):
        return ACTIVATION_CODES[self.activation], ACTIVATION_CODES[self.out_activation_], LOSS_CODES[self.loss]

    def _data_scale(self):
        """scikit-learn reports the squared error averaged over outputs (not the penalty)."""
        return 1.0 / self.n_outputs_ if LOSS_CODES[self.loss] == SQUARED_ERROR else 1.0

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.out_activation_ = self._output_activation()
        # Glorot's uniform bound, drawn in float64 layer by layer (weights, then
        # biases) so the stream matches scikit-learn's.
        factor = 2.0 if self.activation == "logistic" else 6.0
        # Built aside and published whole: a predict in another thread reads both lists.
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
            intercepts.append(self._random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
        self.coefs_, self.intercepts_, self.n_layers_ = coefs, intercepts, len(layer_units)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.gradient_norms_ = None
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _check_own_params(self, names=_OWN_PARAMETERS):
        """What fit says of fastbp's own parameters `names`, set_params having
        taken them unchecked, where scikit-learn's rules check none: its
        partial_fit of a fitted model checks no parameter, and its predict
        reads none of these."""
        constraints = {name: self._parameter_constraints[name] for name in names
                       if name in self._parameter_constraints}
        validate_parameter_constraints(constraints, {name: getattr(self, name) for name in constraints},
                                       caller_name=type(self).__name__)

    def _bind_params(self, units, dtype):
        """Rebuild the flat buffer from coefs_/intercepts_ and make them views of
        it, unless they are its views already: a warm start or partial_fit then
        trains the very arrays of coefs_ in place, as scikit-learn's sgd and
        adam do, and a reference a user took to one follows the training."""
        params = self.__dict__.get("_params")
        if (params is not None and params.dtype == dtype and params.flags.writeable
                and views_of(params, self.coefs_, self.intercepts_)):
            # Views in another sequence (a tuple) are kept in the lists a fit leaves.
            if type(self.coefs_) is not list or type(self.intercepts_) is not list:
                self.coefs_, self.intercepts_ = list(self.coefs_), list(self.intercepts_)
            return
        self._params = pack(self.coefs_, self.intercepts_, dtype)
        self.coefs_, self.intercepts_ = unpack(self._params, units)

    # -------------------------------------------------------------------- fit

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        if self.dropout > 0 and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                "dropout=%r needs solver='sgd' or 'adam': L-BFGS needs a deterministic objective, and dropout "
                "draws a new thinned network at every step. Use dropout=0.0 with solver='lbfgs'." % self.dropout
            )

        # partial_fit runs one epoch.
        max_subtasks = 1 if incremental else self.max_iter
        # Fits of one estimator from several threads take turns: each rebuilds the
        # parameter buffer, which another's compiled epoch must never see half-made.
        with _fit_lock(self):
            fit_task = _callbacks.FitTask(self, X, y, sample_weight, max_subtasks)
            previous_state = _snapshot(self.__dict__, _callbacks.shared_state(self))
            try:
                with thread_limits(self.backend, self.n_threads,
                                   blas_between_calls=self.solver not in _STOCHASTIC_SOLVERS) as threads:
                    used = self._fit_validated(X, y, sample_weight, incremental, hidden_layer_sizes, fit_task,
                                               threads)
                    self.n_threads_ = threads if used is None else used
                # A callback that raises here fails the fit, as in any epoch.
                fit_task.end()
            except BaseException:
                # A diverged or interrupted fit must not lose the model the user had. The callback
                # state is the calls' own, another thread's perhaps by now: it is left as it is.
                callback_state = {name: value for name, value in self.__dict__.copy().items()
                                  if name in _callbacks.CALLBACK_STATE}
                self.__dict__.clear()
                self.__dict__.update({name: value for name, value in previous_state.items()
                                      if name not in _callbacks.CALLBACK_STATE}, **callback_state)
                raise
        return self

    def _fit_validated(self, X, y, sample_weight, incremental, hidden_layer_sizes, fit_task, threads):
        """The fit proper, on at most `threads` threads; returns the thread count its epochs
        ran on most (None where that is `threads` throughout)."""
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if sp.issparse(X):
            check_sparse_structure(X)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
            # scikit-learn's check above refuses all-zero weights from 1.9 on; before, they
            # reached _check_alpha, which named alpha.
            if not sample_weight.any():
                raise ValueError("Sample weights must contain at least one non-zero number.")
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self._check_targets(y)
        sample_weight = self._weigh_classes(y, sample_weight, X.dtype)
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]

        self._random_state = check_random_state(self.random_state)
        dtype = X.dtype if self.solver in _STOCHASTIC_SOLVERS else np.dtype(np.float64)
        if first_pass:
            self._initialize(y, layer_units, dtype)
        else:
            # The weights a warm start or partial_fit continues from, perhaps assigned by the
            # user, must fit this architecture; the model keeps its dtype, as scikit-learn's does.
            try:
                _, model_dtype = check_model_parameters(self.coefs_, self.intercepts_, len(layer_units),
                                                        X.shape[1], self.n_outputs_, layer_units)
            except ValueError as error:
                coefs = list(self.coefs_)
                widths = [np.shape(c)[-1] for c in coefs[:-1]] if all(np.ndim(c) == 2 for c in coefs) else None
                if widths is None or widths == hidden_layer_sizes:
                    raise
                # Most often hidden_layer_sizes changed since the fit: scikit-learn then
                # trains the old widths on silently, or fails on another depth.
                raise type(error)(
                    f"{error} A warm_start fit or partial_fit continues from coefs_, whose hidden layers "
                    f"have {widths} units where hidden_layer_sizes is {self.hidden_layer_sizes!r}: set it "
                    "back, or set warm_start=False (or fit a clone) to train another architecture.") from None
            if self.n_layers_ != len(layer_units):
                # predict reads n_layers_: a model it refuses would come out of this fit.
                raise LayerCountError(f"n_layers_ is {self.n_layers_!r}, but coefs_ and intercepts_ hold "
                                      f"{len(layer_units) - 1} layers.")
            expected = self._output_activation()
            if self.out_activation_ != expected:
                # scikit-learn trains on with the fitted pairing's a - y, reporting the new loss.
                raise ValueError(
                    f"out_activation_ is {self.out_activation_!r}, but loss={self.loss!r} trains through "
                    f"{expected!r}: the loss was changed since the fit (or out_activation_ assigned). A warm start "
                    "or partial_fit continues the fitted model and cannot change its loss: set loss back, or set "
                    "warm_start=False (or fit a clone) to train a model for this loss."
                )
            if self.solver in _STOCHASTIC_SOLVERS:
                dtype = model_dtype
            if not all(np.isfinite(w).all() for w in list(self.coefs_) + list(self.intercepts_)):
                # scikit-learn trains on, to this message at the end; the penalty check below would blame alpha.
                raise ValueError(
                    f"{_SK_NON_FINITE} The weights this warm start or partial_fit continues from, coefs_ and "
                    "intercepts_, already hold NaN or infinity: assign finite ones, or set warm_start=False (or "
                    "fit a clone) to start afresh. The estimator keeps the state it had before this fit."
                )
        units = np.asarray(layer_units, dtype=np.int64)
        self._bind_params(units, dtype)
        check_cast_input(X, dtype)
        # Writeable C arrays: a read-only or strided y or sample_weight would be a new compiled specialization.
        Y = _cast_targets(y, dtype)
        sample_weight = (np.ones(X.shape[0], dtype=dtype) if sample_weight is None
                         else np.require(sample_weight, dtype, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"]))
        _check_alpha(self.alpha, self.coefs_, sample_weight)
        sample_weight, alpha = scale_weights(sample_weight, self.alpha)

        if self.solver in _STOCHASTIC_SOLVERS:
            used = self._fit_stochastic(X, Y, sample_weight, alpha, units, incremental, fit_task, threads)
        else:
            used = self._fit_lbfgs(X, Y, sample_weight, alpha, units, fit_task, threads)

        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(
                f"{_SK_NON_FINITE} The fit diverged: try a smaller learning_rate_init, or scale the input data "
                "(e.g. with StandardScaler). The estimator keeps the state it had before this fit."
            )
        return used

    def _check_targets(self, y):
        """Hook for stricter target checks (the regressor's poisson loss)."""

    def _weigh_classes(self, y, sample_weight, dtype):
        """Hook for the classifier's class_weight: the sample weights to train with."""
        return sample_weight

    def _fit_lbfgs(self, X, Y, sample_weight, alpha, units, fit_task, threads):
        engine = BACKENDS[self.backend]
        inputs = engine.input_arrays(X, np.float64)
        codes = self._codes()
        work = engine.Workspace(units, X.shape[0], np.float64, max_nnz=X.nnz if sp.issparse(X) else None)
        grads = np.empty_like(self._params)
        eps = float(np.finfo(np.float64).eps)
        scale = self._data_scale()
        n_samples = X.shape[0]
        # Each evaluation is timed and its thread count chosen as an epoch's is (see ThreadGovernor).
        governor = None
        if self.backend == "loop":
            governor = ThreadGovernor(threads, self.n_threads is None,
                                      (tuple(units), "lbfgs", n_samples, sp.issparse(X)))

        def loss_and_grad(theta):
            if iterations is not None:
                iterations.resume()
            with nullcontext() if governor is None else governor.timed(n_samples):
                data_loss, penalty = engine.backprop(theta, units, inputs, Y, sample_weight, codes,
                                                     float(alpha), eps, grads, work)
            # As scikit-learn: the reported loss with the summed loss's gradient.
            return scale * data_loss + penalty, grads.copy()

        norms = []
        iterations = fit_task.subtasks("lbfgs-iter", units)
        if iterations is not None:
            iterations.begin(self._params)

        def end_of_iteration(intermediate_result):
            norms.append(np.zeros(len(units) - 1))
            if self.record_gradient_norms:
                # L-BFGS-B evaluates the accepted point last, so grads holds its gradient.
                engine.add_gradient_norms(grads, units, work, norms[-1])
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (len(norms), intermediate_result.fun))
            if iterations is not None and iterations.step(intermediate_result.x):
                # scipy ends the minimization here, with this iteration's point as its result.
                raise StopIteration

        opt_res = scipy.optimize.minimize(
            loss_and_grad, self._params.copy(), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            callback=end_of_iteration if self.verbose or self.record_gradient_norms or iterations else None,
        )
        self.gradient_norms_ = np.array(norms).reshape(-1, len(units) - 1) if self.record_gradient_norms else None
        # A callback's stop request is not a failure to converge: no ConvergenceWarning.
        if iterations is not None and iterations.close(opt_res.x):
            self.n_iter_ = opt_res.nit
        else:
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = np.float64(opt_res.fun)
        self._params[:] = opt_res.x
        return None if governor is None else governor.most_used()

    def _validation_split(self, y, sample_weight):
        """Train and validation row indices, split as scikit-learn splits X itself."""
        # scikit-learn stratifies on the binarized booleans: its error naming a class too small to
        # split names it 'True', not '1.0'.
        stratify = y.astype(bool) if (is_classifier(self) and self.n_outputs_ == 1) else None
        train_idx, val_idx = train_test_split(
            np.arange(y.shape[0]), random_state=self._random_state,
            test_size=self.validation_fraction, stratify=stratify,
        )
        if val_idx.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        return train_idx, val_idx

    def _fit_stochastic(self, X, Y, sample_weight, alpha, units, incremental, fit_task, threads):
        dtype = self._params.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = Optimizer(
                self.solver, n_params(units), dtype, learning_rate_init=self.learning_rate_init,
                learning_rate=self.learning_rate, momentum=self.momentum,
                nesterovs_momentum=self.nesterovs_momentum, power_t=self.power_t,
                beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
            )
        else:
            self._optimizer.check_state(n_params(units), dtype)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")

        if self.early_stopping:
            train_idx, val_idx = self._validation_split(Y, sample_weight)
            X_val = X[val_idx]
            y_val = Y[val_idx]
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            sw_val = sample_weight[val_idx]
            validation_loss = self._validation_loss(X_val, Y[val_idx], sw_val, alpha, units)
        else:
            train_idx = None
            X_val = y_val = sw_val = validation_loss = None

        n_samples = X.shape[0] if train_idx is None else train_idx.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        engine = BACKENDS[self.backend]
        inputs = engine.input_arrays(X, dtype)
        # The most stored values a minibatch can hold: its rows' counts at their largest.
        max_nnz = int(np.sort(np.diff(inputs.indptr))[-batch_size:].sum()) if sp.issparse(X) else None
        work = engine.Workspace(units, batch_size, dtype, gather=True, max_nnz=max_nnz, dropout=self.dropout > 0)
        # Drawn last and only with dropout on, so dropout=0.0 leaves scikit-learn's stream untouched.
        dropout_seed = self._random_state.randint(np.iinfo(np.int64).max, dtype=np.int64) if self.dropout > 0 else 0
        grads = np.empty_like(self._params)
        codes = self._codes()
        eps = float(np.finfo(dtype).eps)
        sample_idx = np.arange(n_samples, dtype=np.int64)
        n_layers = len(units) - 1
        # A model from scikit-learn (from_sklearn) has no gradient_norms_.
        if self.record_gradient_norms and getattr(self, "gradient_norms_", None) is None:
            # Recording switched on for a warm refit: earlier epochs are unknown.
            self.gradient_norms_ = np.full((len(self.loss_curve_), n_layers), np.nan)

        epochs = fit_task.subtasks("epoch", units)
        governor = None
        if self.backend == "loop":
            governor = ThreadGovernor(threads, self.n_threads is None,
                                      (tuple(units), batch_size, dtype.char, sp.issparse(X)))
        recorded = True
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if epochs is not None:
                    epochs.begin(self._params)
                # A Ctrl-C lands after the epoch and the counters that describe it (see _interrupt).
                with deferred_interrupt():
                    if self.shuffle:
                        # Composes with the previous epoch's order, as scikit-learn does with
                        # sklearn.utils.shuffle: one RandomState.shuffle, whose draws depend on the length
                        # alone, so shuffling the order in place gives scikit-learn's
                        # sample_idx[permutation] without gathering it (0.3 ms an epoch at 50000 rows).
                        self._random_state.shuffle(sample_idx)
                    rows = sample_idx if train_idx is None else train_idx[sample_idx]
                    _check_batch_weights(sample_weight, rows, batch_size)
                    norms = np.zeros(n_layers) if self.record_gradient_norms else _NO_NORMS
                    # Masks keyed by the cumulative epoch, so partial_fit and warm refits draw new ones.
                    dropout = (float(self.dropout), epoch_key(dropout_seed, len(self.loss_curve_)))
                    recorded = False
                    with nullcontext() if governor is None else governor.timed(n_samples):
                        total = engine.train_epoch(
                            self._params, units, inputs, Y, sample_weight, np.ascontiguousarray(rows, dtype=np.int64),
                            batch_size, codes, float(alpha), eps, self._data_scale(), grads, self._optimizer,
                            work, norms, dropout,
                        )
                    self.n_iter_ += 1
                    # A NumPy float, as scikit-learn's losses are (its repr, .item(), .dtype).
                    self.loss_ = np.float64(total / n_samples)
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.record_gradient_norms:
                        self.gradient_norms_ = np.vstack([self.gradient_norms_, norms])
                    elif getattr(self, "gradient_norms_", None) is not None:
                        # Recording switched off for this partial_fit or warm refit: row i stays epoch i's.
                        self.gradient_norms_ = np.vstack([self.gradient_norms_, np.full(n_layers, np.nan)])
                    recorded = True
                    if self.verbose:
                        print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                    self._update_no_improvement_count(X_val, y_val, sw_val, validation_loss)
                    self._optimizer.iteration_ends(self.t_)
                if epochs is not None and epochs.end(self._params):
                    # A callback's stop request: the fit ends as at max_iter, without ConvergenceWarning.
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    if self.early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                        "hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            if not recorded:
                # Raised between an epoch's pass and its counters by other than SIGINT (a handler
                # of another signal, an exception set on this thread), which deferred_interrupt
                # cannot hold back: the weights may be ahead of them, so the fit fails whole (_fit).
                raise
            # The weights, the optimizer state and every counter are those of the last
            # completed epoch: a SIGINT is held back until an epoch is recorded.
            warnings.warn("Training interrupted by user.")

        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts
            self._bind_params(units, dtype)
        return None if governor is None else governor.most_used()

    def _validation_loss(self, X_val, Y_val, sw_val, alpha, units):
        """A function of no argument giving the reported loss of the current
        weights on the validation rows, as scikit-learn reports a loss:
        data_scale × Σ s_n ℓ_n / Σ s_n + ½ α Σ‖W‖² / Σ s_n.

        One compiled forward pass over the rows and one compiled loop over
        their losses, in the buffers allocated here once per fit (sized for the
        validation rows, as L-BFGS's are for the training rows). Half the cost
        of a backprop call, whose gradients would be thrown away.
        """
        dtype = self._params.dtype
        engine = BACKENDS[self.backend]
        inputs = engine.input_arrays(X_val, dtype)
        Y_val = np.ascontiguousarray(Y_val, dtype=dtype)
        work = engine.Workspace(units, Y_val.shape[0], dtype, backward=False)
        losses = np.empty(Y_val.shape[0], dtype=np.float64)
        codes, eps, scale, alpha = self._codes(), float(np.finfo(dtype).eps), self._data_scale(), float(alpha)
        return lambda: loss_value(self.backend, self._params, units, inputs, Y_val, sw_val, codes, alpha, eps, work,
                                  losses, scale)

    def _update_no_improvement_count(self, X_val, y_val, sw_val, validation_loss=None):
        if self.early_stopping:
            val_score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(val_score)
            if not isinstance(getattr(self, "validation_loss_curve_", None), list):
                # A model from scikit-learn (or an older fastbp) recorded no validation losses.
                self.validation_loss_curve_ = [np.nan] * (len(self.validation_scores_) - 1)
            self.validation_loss_curve_.append(validation_loss())
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            # Strict comparisons: a tie neither resets nor counts as an improvement.
            if val_score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The fitted model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not stochastic." % self.solver
            )
        return True

    # ---------------------------------------------------------------- predict

    def predict(self, X):
        """Predict with the fitted network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data, cast to the dtype of coefs_.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier; an indicator matrix for multilabel
            targets) or predicted values (regressor).
        """
        check_is_fitted(self)
        return self._predict(X)

    def __sklearn_is_fitted__(self):
        # check_is_fitted's own rule (some attribute ends in "_" and does not
        # start with "__"), answered at once for a fitted model: scanning every
        # attribute cost each predict on a few rows 5-6 µs of its 50.
        return "coefs_" in self.__dict__ or any(
            name.endswith("_") and not name.startswith("__") for name in vars(self))

    def _packed_parameters(self, n_features):
        """(units, dtype, flat buffer) of coefs_ and intercepts_, from one read of
        the lists, checked whole: assigned weights of the wrong shape, or a fit
        rebuilding them in another thread, never reach the kernels. The buffer
        is the fitted one itself while coefs_ and intercepts_ are still its
        views (after any fit, and after unpickling), a copy packed from them
        otherwise (weights assigned by hand, a read-only loaded model). The
        check is remembered for the same list and array objects: predict on a
        few rows then costs little beyond scikit-learn's own input validation."""
        coefs, intercepts = self.coefs_, self.intercepts_
        params = self.__dict__.get("_params")
        known = _PREDICT_STATE.get(self)
        if (known is not None and known[0] is coefs and known[1] is intercepts and known[2] is params
                and known[3] == n_features and len(coefs) == len(known[4]) and len(intercepts) == len(known[5])
                and all(a is b for a, b in zip(coefs, known[4])) and all(a is b for a, b in zip(intercepts, known[5]))):
            return known[6]
        coef_list, intercept_list = list(coefs), list(intercepts)
        units, dtype = check_model_parameters(coef_list, intercept_list, self.n_layers_, n_features, self.n_outputs_)
        if params is not None and params.dtype == dtype and params.flags.writeable and views_of(params, coef_list,
                                                                                              intercept_list):
            packed = (units, dtype, params)
            # Objects held here stay alive, so identity above cannot match a new array at a reused address.
            _PREDICT_STATE[self] = (coefs, intercepts, params, n_features, tuple(coef_list), tuple(intercept_list),
                                    packed)
            return packed
        return units, dtype, pack(coef_list, intercept_list, dtype)

    def _plain_input(self, X):
        """Whether X is an input that validate_data would return unchanged and
        silently: a 2-d float64 or float32 ndarray, CSR or CSC matrix of the
        fitted width, at least one row, all finite, for a model fitted without
        feature names. On a few rows validate_data costs more than the
        network; any other input (and any non-finite value) goes through it,
        for its messages and warnings. A dense array is not checked finite
        here for the loop backend: its forward pass checks each row as it
        reads it (see _forward_pass_fast)."""
        if type(X) is np.ndarray:
            # Compiled, the loop backend checks as it reads; in pure Python
            # (NUMBA_DISABLE_JIT=1) a NaN would meet NumPy's warnings first.
            values = None if self.backend == "loop" and not numba_config.DISABLE_JIT else X
        elif sp.issparse(X) and X.format in ("csr", "csc"):
            values = X.data
        else:
            return False
        return (X.ndim == 2 and X.dtype in _PLAIN_DTYPES and X.shape[0] >= 1
                and X.shape[1] == getattr(self, "n_features_in_", -1) and not hasattr(self, "feature_names_in_")
                # A finite sum means every value is finite (an inf or NaN would carry into it).
                and (values is None or _finite_sum(values)))

    def _forward_pass_fast(self, X, check_input=True):
        plain = check_input and self._plain_input(X)
        if check_input and not plain:
            if sp.issparse(X):
                # Before scikit-learn's validation converts it (a plain one is checked before its pass).
                check_sparse_structure(X)
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        units, _, params = self._packed_parameters(X.shape[1])
        if check_input and not plain:
            X = _numeric_operands(X, params.dtype)
        # The fitted output activation, not loss: scikit-learn's predict reads no loss set since the fit.
        act, out = ACTIVATION_CODES[self.activation], ACTIVATION_CODES[self.out_activation_]
        if not (type(self.backend) is str and self.backend in BACKENDS
                and (self.n_threads is None or type(self.n_threads) is int and self.n_threads >= 1)):
            self._check_own_params(("backend", "n_threads"))
        if check_input and (sp.issparse(X) or self.backend != "loop"):
            # Only the loop backend's dense pass checks its input as cast, row by row.
            check_cast_input(X, params.dtype)
        try:
            return BACKENDS[self.backend].predict(params, units, X, act, out, self.n_threads)
        except NonFiniteInputError:
            pass
        if plain:
            # An input taken as plain without a finiteness check: scikit-learn's
            # validation names the NaN or infinity in its own words (raised outside
            # the except clause, so that its message comes alone).
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        # X is finite, so a value of it overflowed when cast to the dtype of coefs_.
        check_cast_input(X, params.dtype)
        # Only scikit-learn's assume_finite=True passes those checks: its predict
        # then carries the NaN and infinities through the network, as the
        # vectorized backend does, in the same NumPy products.
        return BACKENDS["vectorized"].predict(params, units, X, act, out, self.n_threads)

    def __setstate__(self, state):
        super().__setstate__(state)
        # A pickle stores coefs_ and the flat buffer they viewed as separate arrays:
        # made its views again, so that predict reads the buffer instead of packing a copy.
        if "_params" in state and "coefs_" in state:
            try:
                units, dtype = check_model_parameters(self.coefs_, self.intercepts_, self.n_layers_,
                                                      self.n_features_in_, self.n_outputs_)
            except (TypeError, ValueError, AttributeError):
                return
            self._bind_params(units, dtype)

    def _backprop(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads):
        """Loss and gradients at coefs_ and intercepts_, as scikit-learn's
        private method of this name computes them (its own tests and code
        written against it call it).

        One call of the loop backend's compiled backprop over all rows,
        whatever ``backend``: its workspace holds the activations and deltas
        the lists are given. It computes in the dtype of coefs_ (X cast to it,
        as predict casts), on at most ``n_threads`` threads. The loss is the
        one fit reports: the squared error averaged over outputs, plus
        ½ α Σ‖W‖² / Σ sample_weight; the gradients are those of the loss
        summed over outputs, as scikit-learn's.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples, n_outputs)
            The targets as the network outputs them: for the classifier, the
            labels binarized by its ``_label_binarizer``.
        sample_weight : array-like of shape (n_samples,) or None
            Non-negative sample weights; None weighs every sample 1.
        activations : list of length n_layers_
            ``activations[l]`` for l >= 1 is set to the output of layer l.
        deltas : list of length n_layers_ - 1
            ``deltas[l]`` is set to the sample-weighted gradient of the summed
            loss with respect to the pre-activation of layer l + 1.
        coef_grads, intercept_grads : list of length n_layers_ - 1
            Set to the gradients, as new arrays.

        Returns
        -------
        loss : float
        coef_grads : list of ndarray
        intercept_grads : list of ndarray
        """
        X = check_array(X, accept_sparse="csr")
        units, dtype, params = self._packed_parameters(X.shape[1])
        n_samples = X.shape[0]
        Y = check_Y(y, n_samples, units[-1], dtype)
        sample_weight = check_sample_weight(sample_weight, n_samples, dtype)
        loop = BACKENDS["loop"]
        inputs = loop.input_arrays(X, dtype)
        work = loop.Workspace(units, n_samples, dtype, max_nnz=inputs.data.shape[0] if sp.issparse(X) else None)
        grads = np.empty_like(params)
        with thread_limits("loop", self.n_threads) as threads:
            # Callers evaluate one shape many times (scikit-learn's test_gradient: thousands of calls on
            # 5 rows), so the thread count is chosen as the fit chooses an epoch's, by the shape's timings:
            # on busy cores a parallel region's barriers cost more than so small a call computes.
            governor = ThreadGovernor(threads, self.n_threads is None,
                                      (tuple(units), "_backprop", n_samples, dtype.char, sp.issparse(X)))
            with governor.timed(n_samples):
                data_loss, penalty = loop.backprop(params, units, inputs, Y, sample_weight, self._codes(),
                                                   float(self.alpha), float(np.finfo(dtype).eps), grads, work)
        for layer in range(1, len(units)):
            activations[layer] = layer_rows(work.activations, units, layer, n_samples).copy()
            deltas[layer - 1] = layer_rows(work.deltas, units, layer, n_samples).copy()
        coef_grads[:], intercept_grads[:] = unpack(grads, units)
        return self._data_scale() * data_loss + penalty, coef_grads, intercept_grads

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, activations, deltas, coef_grads,
                         intercept_grads):
        """scikit-learn's L-BFGS objective: the loss and flat gradient at the
        parameters `packed_coef_inter`, which coefs_ and intercepts_ become
        (views of it, as in scikit-learn).

        Parameters
        ----------
        packed_coef_inter : ndarray of shape (n_parameters,)
            Every coefs_[l] raveled, layer after layer, then every intercepts_[l].
        X, y, sample_weight, activations, deltas, coef_grads, intercept_grads
            As in :meth:`_backprop`.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_parameters,)
            The gradients in the layout of `packed_coef_inter`.
        """
        units = [np.shape(self.coefs_[0])[0]] + [np.shape(c)[1] for c in self.coefs_]
        packed_coef_inter = np.asarray(packed_coef_inter)
        if packed_coef_inter.shape != (n_params(units),):
            raise ValueError(
                f"packed_coef_inter has shape {packed_coef_inter.shape}; the model's layer widths {units} "
                f"need ({n_params(units)},)."
            )
        self.coefs_, self.intercepts_ = unpack(packed_coef_inter, units)
        loss, coef_grads, intercept_grads = self._backprop(X, y, sample_weight, activations, deltas, coef_grads,
                                                           intercept_grads)
        return loss, pack(coef_grads, intercept_grads, coef_grads[0].dtype)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------ interchange

    def to_sklearn(self):
        """This fitted model as scikit-learn's own MLP estimator.

        Returns a fitted ``sklearn.neural_network.MLPClassifier`` or
        ``MLPRegressor`` with the same parameters (fastbp's own, such as
        backend, n_threads and class_weight, are dropped), copies of the
        weights, the fitted attributes scikit-learn's estimator has (including
        the optimizer state, so its partial_fit continues as this one's would)
        and the same predictions. Any tool that knows scikit-learn's MLP (an
        ONNX converter, for instance) can take it. scikit-learn's MLP has no
        class_weight: training continued there is unweighted unless given
        sample_weight. An optimizer state that no longer fits the weights
        (coefs_ replaced by arrays of other shapes, where this model's
        partial_fit raises) is left out: there, partial_fit starts a new one.

        Returns
        -------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted scikit-learn estimator, sharing no memory with this one.
        """
        check_is_fitted(self)
        from . import _interchange  # loaded by the conversions alone, not by every fit

        return _interchange.to_sklearn(self)

    @classmethod
    def from_sklearn(cls, estimator):
        """A fitted fastbp estimator made from a fitted scikit-learn one.

        Takes scikit-learn's parameters, weights and fitted attributes
        (optimizer state included), ready to predict and to continue training
        with ``warm_start=True`` or ``partial_fit``. fastbp's own parameters
        take their defaults. validation_loss_curve_, which scikit-learn does not
        record, holds NaN for the epochs scikit-learn ran.

        Parameters
        ----------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted estimator of the matching scikit-learn class.

        Returns
        -------
        estimator : MLPClassifier or MLPRegressor
            The fastbp estimator, sharing no memory with the given one.

        Raises
        ------
        TypeError
            If `estimator` is not an instance of the matching scikit-learn class.
        sklearn.exceptions.NotFittedError
            If `estimator` is not fitted.
        """
        from . import _interchange

        return _interchange.from_sklearn(cls, estimator)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for scikit-learn's.

    Same parameters, defaults, attributes and results as
    ``sklearn.neural_network.MLPClassifier``, trained by fastbp's compiled
    backprop. The output is softmax for multiclass targets and logistic for
    binary and multilabel ones, with the log-loss.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Neurons in each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'lbfgs' always optimizes in float64, as scipy's L-BFGS-B does (coefs_
        are float64); 'sgd' and 'adam' train in float32 when X is float32.
    alpha : float, default=0.0001
        L2 penalty, divided by the (weighted) number of samples of a batch.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        sgd's schedule.
    learning_rate_init : float, default=0.001
        Initial step size (sgd, adam).
    power_t : float, default=0.5
        Exponent of the invscaling schedule.
    max_iter : int, default=200
        Epochs (sgd, adam) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle samples every epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffles and the early-stopping split.
    tol : float, default=1e-4
        Tolerance of the stopping test.
    verbose : bool, default=False
        Print the loss at each epoch, or at each L-BFGS iteration.
    warm_start : bool, default=False
        Start from the previous fit's weights.
    momentum : float, default=0.9
        sgd's momentum.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd).
    early_stopping : bool, default=False
        Hold out validation_fraction of the data and stop when its score stalls.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int, default=10
        Epochs without improvement by tol before stopping.
    max_fun : int, default=15000
        Loss evaluations allowed to lbfgs.
    backend : {'loop', 'vectorized'}, default='loop'
        Numba loop kernels, or NumPy matrix products. The loop backend gives
        bitwise the same model for any thread count; the vectorized one
        computes in BLAS, whose results depend on its thread count and the CPU's
        kernels (agreement to about 1e-13 per gradient, not bitwise).
    n_threads : int, default=None
        Threads used by this estimator's fit and predict. None: NUMBA_NUM_THREADS
        when set, else inside a Dask worker or Ray task the task's
        OMP_NUM_THREADS (1 unless the cluster sets more), else 1 off the main
        thread (joblib's threading backend), else every core, capped by a lower
        limit the caller set (numba.set_num_threads for the loop backend,
        threadpoolctl's on BLAS for the vectorized one); the loop backend's
        epochs and L-BFGS evaluations may then run on fewer where more stop
        paying (see n_threads_). An int is used as given (capped at Numba's thread count).
    record_gradient_norms : bool, default=False
        Record each layer's weight-gradient norm in ``gradient_norms_``, inside
        the compiled epoch; off, nothing is computed for it.
    dropout : float in [0, 1), default=0.0
        Inverted dropout on the hidden units during sgd and adam training: each
        hidden unit of each training sample is dropped with this probability
        and the kept ones scaled by 1 / (1 − dropout), in the loop kernels and
        the vectorized backend alike; predict and predict_proba use the whole
        network, unscaled. The masks come from a hash of (seed, cumulative epoch
        number, position in the epoch, unit), so the same random_state gives
        the same model for any n_threads (bitwise with the loop backend), and partial_fit calls and
        warm refits draw new masks. The seed is drawn from the random_state
        stream after the initial weights and the early-stopping split, only
        when dropout > 0: 0.0 is scikit-learn's model exactly. loss_curve_ then
        records the training loss of the thinned networks (as PyTorch reports
        it). Not with solver='lbfgs' (ValueError): its objective must be
        deterministic. fastbp's own: to_sklearn drops it.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as scikit-learn's linear classifiers take them:
        each sample's weight is multiplied by its class's weight (and by
        sample_weight when both are given). A dict {label: weight} weighs the
        classes it leaves out 1; 'balanced' weighs class c by
        n_samples / (n_classes × n_c), from the whole y given to fit (before any
        early-stopping split; with sample_weight, from the weighted counts, as
        LogisticRegression does). scikit-learn's ``compute_class_weight``
        computes them, with its rules and its errors: a dict naming a label
        absent from y while leaving out a class y has raises a ValueError (so
        ``{rare: 10}`` fails on a fold without the rare class). The validation
        score and loss of early stopping weigh the held-out samples the same
        way. Not supported for multilabel targets (ValueError); partial_fit
        takes a dict, computed against classes_, but not 'balanced' (a chunk's
        class frequencies are not the data's), as SGDClassifier. None: every
        class weighs 1, scikit-learn's model. fastbp's own: to_sklearn drops it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    loss_ : float
        Loss at the end of fit.
    best_loss_ : float or None
        Lowest training loss (sgd, adam without early stopping).
    loss_curve_ : list of float
        Loss per epoch (sgd, adam).
    validation_scores_ : list of float or None
        Validation accuracy per epoch with early_stopping.
    validation_loss_curve_ : list of float or None
        With early_stopping, the loss on the held-out samples per epoch, of the
        weights at the end of that epoch, measured as loss_ is (data term, for
        several squared-error outputs averaged over them, plus
        ½ α Σ‖W‖² / Σ validation weights); as long as validation_scores_.
        loss_curve_ is a different measurement: a running average of the
        minibatch losses over an epoch, each taken before that minibatch's
        step, while the weights move, on the training samples. None without
        early_stopping. fastbp's own attribute: from_sklearn fills scikit-learn's
        epochs with NaN.
    best_validation_score_ : float or None
        Best validation accuracy with early_stopping.
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Weights, coefs_[l][k, j] from neuron k of layer l to neuron j of layer l+1.
    intercepts_ : list of ndarray of shape (fan_out,)
        Biases.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X was a DataFrame with string column names.
    n_iter_ : int
        Epochs or iterations run by the last fit.
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
        Output units.
    out_activation_ : str
        Output activation.
    n_threads_ : int
        Threads the last fit computed on (see n_threads): Numba's for the loop
        backend (1 in a child forked after its parent ran parallel kernels,
        which takes the serial path), BLAS's for the vectorized one. With
        n_threads=None the loop backend times its sgd/adam epochs (its L-BFGS
        evaluations) and runs each on the count, between the rule's and 1, that
        is fastest on the machine as it is now (fewer when other work takes
        cores): n_threads_ is then the count most of them ran on. The model is
        bitwise the same whatever counts were chosen.
    gradient_norms_ : ndarray of shape (len(loss_curve_), n_layers_ - 1) or None
        With record_gradient_norms: per epoch, the Frobenius norm of each layer's
        weight gradient (L2 term included) averaged over the epoch's minibatches;
        it grows with loss_curve_ under warm_start and partial_fit. With lbfgs,
        one row per L-BFGS iteration of the last fit. Epochs trained with it
        switched off (set_params between partial_fit calls) get rows of NaN once
        any epoch was recorded; None while none was.

    Notes
    -----
    Callbacks, with scikit-learn >= 1.9 (its experimental ``sklearn.callback``;
    before it, ``set_callbacks`` raises an ImportError): ``set_callbacks`` takes
    for instance ``ProgressBar()`` (which needs rich:
    ``pip install 'fastbp[progress]'``) or ``ScoringMonitor(scoring="accuracy")``.
    The fit, or a partial_fit call, is the root task, and each epoch
    (``"epoch"``) or L-BFGS iteration (``"lbfgs-iter"``) a sub-task. The hooks
    get X and y as passed to fit and, at an epoch's end, a fitted copy of the
    model as it stands then (copies of coefs_ and intercepts_, made only for a
    callback that asks for it). A callback's ``on_fit_task_end`` returning True
    asks the fit to stop: it ends after that epoch as at max_iter (with
    early_stopping, the best validation weights restored), without a
    ConvergenceWarning. As for scikit-learn's estimators, a ProgressBar goes on
    the outermost meta-estimator (Pipeline, GridSearchCV), not on a fastbp
    estimator inside one. Without callbacks none of this runs: an epoch stays
    one compiled call.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastbp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        # As scikit-learn's linear classifiers declare it.
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="loop", n_threads=None, class_weight=None, record_gradient_norms=False, dropout=0.0):
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend, n_threads=n_threads,
            record_gradient_norms=record_gradient_norms, dropout=dropout,
        )

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _weigh_classes(self, y, sample_weight, dtype):
        """sample_weight × the weight of each sample's class, by scikit-learn's
        compute_class_weight on the y of this call (the whole y given to fit,
        before any early-stopping split); y is the binarized target. In X's
        dtype, as a sample_weight given to fit is: lbfgs trains float32 data
        in float64, and float64 class weights made 'balanced' differ from
        sample_weight=compute_sample_weight('balanced', y) there."""
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError(
                "class_weight is not supported for multilabel targets: a sample belongs to several classes "
                "or to none. Pass sample_weight instead."
            )
        index = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0].astype(np.intp)
        # 'balanced' divides by zero for a class of no sample weight: _check_class_weight names it.
        with np.errstate(divide="ignore"):
            class_weight = compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_[index],
                                                sample_weight=sample_weight)
        class_weight = np.asarray(class_weight, dtype=np.float64)
        _check_class_weight(self.class_weight, self.classes_, class_weight)
        weight = class_weight[index].astype(dtype)
        weight = weight if sample_weight is None else sample_weight * weight
        if not weight.any():
            raise ValueError(
                "Sample weights must contain at least one non-zero number. class_weight (times sample_weight, "
                "if given) gives every sample a weight of zero."
            )
        return weight

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer, Y = fit_labels(y)
            self.classes_ = self._label_binarizer.classes_
            return X, Y
        classes = unique_labels(y)
        if self.warm_start:
            if set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the previous "
                    f"call to fit. Previously got {self.classes_}, `y` has {classes}"
                )
        elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                f"'y' has {classes}."
            )
        return X, binarize(self._label_binarizer, y)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return labels_of(self._label_binarizer, y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        classes : array of shape (n_classes,), default=None
            All classes, required on the first call.

        Returns
        -------
        self : object
            The updated model.
        """
        self._check_own_params()
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            # As SGDClassifier: one chunk's class frequencies are not the data's.
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. In order to use 'balanced' "
                "weights, use compute_class_weight('balanced', classes=classes, y=y). In place of y you "
                "can use a large enough sample of the full training set target to properly estimate the "
                "class frequency distributions. Pass the resulting weights as the class_weight parameter, "
                "as a dict: dict(zip(classes, weights))."
            )
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Log of the class probabilities, ordered as classes_.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Class probabilities, ordered as classes_.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    Same parameters, defaults, attributes and results as
    ``sklearn.neural_network.MLPRegressor``. With several outputs and the
    squared error, the reported loss (loss_, loss_curve_, and the value L-BFGS
    sees) averages the data term over the outputs while the steps follow the
    gradient of the summed loss, exactly as scikit-learn does.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss; poisson uses an exp output and needs non-negative targets.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, \
warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, \
beta_1, beta_2, epsilon, n_iter_no_change, max_fun, backend, n_threads, record_gradient_norms, \
dropout
        As in :class:`MLPClassifier`; the early-stopping score is R².

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, validation_loss_curve_, \
best_validation_score_, t_, coefs_, intercepts_, n_features_in_, feature_names_in_, \
n_iter_, n_layers_, n_outputs_, out_activation_, n_threads_, gradient_norms_
        As in :class:`MLPClassifier`.

    Notes
    -----
    Callbacks as in :class:`MLPClassifier`: ``set_callbacks``, the fit as root
    task with one sub-task per epoch or L-BFGS iteration, and the stop request
    (``ScoringMonitor(scoring="r2")``, for instance).

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from fastbp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    >>> y = y / y.std()  # targets of unit scale: L-BFGS converges in about 120 iterations, not 2000
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": _SkMLPRegressor._parameter_constraints["loss"],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, backend="loop", n_threads=None, record_gradient_norms=False, dropout=0.0):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend, n_threads=n_threads,
            record_gradient_norms=record_gradient_norms, dropout=dropout,
        )

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _check_targets(self, y):
        check_targets(self.loss, y, "y")

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.dtype.kind not in "biuf":
            raise TypeError(
                f"MLPRegressor needs numeric targets; y has dtype {y.dtype}. Encode them as numbers, "
                "or use MLPClassifier for class labels."
            )
        # scikit-learn checks an object y for NaN before it casts None to NaN, and
        # then trains on to a NaN loss or non-finite weights: named here instead.
        assert_all_finite(y, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated model.
        """
        self._check_own_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
