"""One compiled specialization per float dtype, whatever the input's flags.

Numba compiles a function again for every distinct argument type: a read-only
array, another layout or an integer dtype reaching the compiled epoch would
cost a user a full compile (18-19 s measured for a read-only y) in the
middle of a session. The estimators convert every such input before the
call, and ``_loop.check_call`` refuses anything else.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numba import config as numba_config
from numba import njit, types
from numba.core.errors import TypingError

from fastbp import MLPClassifier, MLPRegressor, _loop
from fastbp._cache import compiled_signatures

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 5))
y = np.arange(60) % 3


def _read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kwargs)


def _odd_inputs(dtype):
    """(X, y, sample_weight) variants that all train in `dtype`."""
    Xd = X.astype(dtype)
    return [
        (Xd, y, None),
        (np.asfortranarray(Xd), y, None),
        (_read_only(Xd), _read_only(y), _read_only(np.ones(60))),
        (Xd[:, ::-1].copy()[:, ::-1], y.astype(np.int8), np.ones(60, dtype=np.int32)),
        (Xd, y.astype(np.uint64), np.arange(60) % 2 + 1),
        (sp.csc_matrix(Xd), y, None),
        (sp.csr_matrix(Xd), y.astype(np.float32), np.ones(60, dtype=np.float16)),
    ]


def _fit_every_way(Xv, yv, sw):
    for params in (dict(solver="adam"), dict(solver="sgd", momentum=0, learning_rate_init=1),
                   dict(solver="lbfgs", alpha=0), dict(solver="adam", early_stopping=True, dropout=0.1)):
        model = _fit_quietly(MLPClassifier((4,), max_iter=2, random_state=0, **params), Xv, yv, sample_weight=sw)
        model.predict_proba(Xv)
    regressor = _fit_quietly(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0), Xv,
                             y.astype(np.int64))
    regressor.predict(Xv[:1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_input_flag_or_integer_dtype_compiles_anything_again(dtype):
    plain = _odd_inputs(dtype)[0]
    _fit_every_way(*plain)
    before = compiled_signatures()
    for inputs in _odd_inputs(dtype)[1:]:
        _fit_every_way(*inputs)
    assert compiled_signatures() == before


def test_integer_weights_assigned_by_hand_predict_without_a_new_specialization():
    model = _fit_quietly(MLPClassifier((4,), max_iter=2, random_state=0), X, y)
    before = compiled_signatures()
    expected = model.predict_proba(X[:5])
    model.coefs_ = [np.rint(c * 4).astype(np.int64) for c in model.coefs_]
    model.intercepts_ = [np.rint(b * 4).astype(np.int32) for b in model.intercepts_]
    scaled = model.predict_proba(X[:5])
    assert scaled.dtype == np.float64 and scaled.shape == expected.shape
    assert compiled_signatures() == before


def test_the_epoch_has_one_signature_per_dtype_it_ran_in():
    for dtype in (np.float64, np.float32):
        _fit_quietly(MLPClassifier((4,), max_iter=2, random_state=0), X.astype(dtype), y).predict(X.astype(dtype))
    dtypes = sorted(str(sig[0].dtype) for sig in _loop.run_epoch_dense.signatures)
    assert dtypes == ["float32", "float64"]


def test_the_epoch_calls_its_regions_by_the_signatures_written_for_them():
    dtypes = [np.float64, np.float32]
    for dtype in dtypes:
        # Dense: the dense regions; CSR: the general ones.
        for data in (X.astype(dtype), sp.csr_matrix(X.astype(dtype))):
            _fit_quietly(MLPClassifier((4,), max_iter=2, random_state=0), data, y).predict(data)
    # Each training region is compiled for exactly region_signatures' argument
    # lists and nothing else (a forward-only one, which these predicts leave
    # for the training region at hand, for some of them), and called by
    # address (two int64 arguments of the epoch).
    for (index, _), region in _loop._REGIONS.items():
        written = {str(_loop.region_signatures(d)[index].args) for d in dtypes}
        compiled = set(map(str, region.signatures))
        assert compiled <= written if index == 2 else compiled == written
    for epoch in _loop._EPOCHS.values():
        assert epoch.signatures
        for sig in epoch.signatures:
            assert sig[-2:] == (types.int64, types.int64)


def test_only_dense_input_without_dropout_or_norms_takes_the_dense_epoch_and_regions():
    """The dense versions have no CSR, dropout or norm code: any of these must
    take the general ones (the dense epoch would read a CSR call's empty X)."""
    dense = _loop.input_arrays(X, np.float64)
    csr = _loop.input_arrays(sp.csr_matrix(X), np.float64)
    plain, dropout = _loop.terms((0, 0, 0)), _loop.terms((0, 0, 0), dropout=(0.5, 1))
    no_norms, norms = np.empty(0), np.zeros(2)
    assert not _loop.general_call(dense, plain, no_norms)
    assert _loop.general_call(csr, plain, no_norms)
    assert _loop.general_call(dense, dropout, no_norms)
    assert _loop.general_call(dense, plain, norms)


def test_a_region_call_with_another_argument_list_does_not_compile():
    @njit
    def call_with(address, params):
        _loop._call_at(address, (params, params), np.int64(0), np.int64(1))

    with pytest.raises(TypingError, match="no region takes the arguments"):
        call_with(0, np.zeros(3))


def test_a_wrong_argument_type_is_refused_before_the_compiled_code():
    units = np.array([5, 4, 3])
    work = _loop.Workspace(units, 60, np.float64)
    params = np.zeros(5 * 4 + 4 * 3 + 4 + 3)
    inputs = _loop.input_arrays(X, np.float64)
    Y = np.zeros((60, 3))
    codes = (3, 4, 1)
    grads = np.empty_like(params)
    for bad, match in [
        (dict(Y=_read_only(Y)), "Y must be a writeable"),
        (dict(Y=np.asfortranarray(np.zeros((60, 3)))[:, :3].T.copy().T), "Y must be"),
        (dict(sample_weight=np.ones(60, dtype=np.int64)), "sample_weight must be"),
        (dict(grads=grads.astype(np.float32)), "grads must be"),
    ]:
        args = dict(Y=Y, sample_weight=np.ones(60), grads=grads)
        args.update(bad)
        with pytest.raises(TypeError, match=match):
            _loop.backprop(params, units, inputs, args["Y"], args["sample_weight"], codes, 0.0, 1e-16,
                           args["grads"], work)
    with pytest.raises(TypeError, match="alpha must be of type float"):
        _loop.check_call(params, units, inputs, Y, np.ones(60), _loop._NO_ROWS, 60,
                         _loop.Terms(3, 4, 1, 1, 0.0, 1.0, 0.0, np.uint64(0)), grads, work.buffers,
                         _loop.no_step(np.float64), 1, _loop._NO_NORMS)


def test_a_workspace_with_a_short_loss_buffer_is_refused_before_the_compiled_code():
    """Region 1 writes a loss (or, for a forward pass alone, a finiteness flag)
    for every row of a batch: a Buffers put together by hand with fewer would
    be written past its end."""
    units = np.array([5, 4, 3])
    params = np.zeros(5 * 4 + 4 * 3 + 4 + 3)
    inputs = _loop.input_arrays(X, np.float64)
    for backward in (True, False):
        short = _loop.Workspace(units, 60, np.float64, backward=backward).buffers._replace(losses=np.empty(59))
        with pytest.raises(ValueError, match="a workspace for 60 rows"):
            _loop.check_call(params, units, inputs, np.zeros((60, 3)), np.ones(60), _loop._NO_ROWS, 60,
                             _loop.terms((3, 4, 1)), np.empty_like(params), short, _loop.no_step(np.float64), 1,
                             _loop._NO_NORMS)
        work = _loop.Workspace(units, 60, np.float64, backward=False)
        work.buffers = short
        with pytest.raises(ValueError, match="a workspace of another network or for fewer than 60 rows"):
            _loop.forward_pass(params, units, inputs, 3, 4, work)



def test_region_2_scratch_is_a_row_per_thread_and_caps_the_shares():
    """Region 2's column-sum scratch is one row per share, not per task: a very
    wide input meeting a wide layer (65554 tasks here) would take gibibytes.
    Given fewer rows than threads, region 2 runs fewer shares, with the same
    bits; a Buffers without the rows or their width is refused."""
    wide = _loop.Workspace([2**20, 64, 1000], 8, np.float32, max_nnz=0)
    assert len(wide.tasks) > 60000
    assert wide.penalty_columns.shape == (min(len(wide.tasks), numba_config.NUMBA_NUM_THREADS), 1000)
    units = np.array([5, 40, 3])
    params = np.random.default_rng(0).normal(size=5 * 40 + 40 * 3 + 40 + 3)
    inputs = _loop.input_arrays(X, np.float64)
    Y = np.eye(3)[np.arange(60) % 3]
    args = (params, units, inputs, Y, np.ones(60), _loop._NO_ROWS, 60, _loop.terms((3, 4, 1), 1e-3, 1e-16))
    results = []
    for rows, threads in ((2, 1), (1, 2), (2, 2)):
        work = _loop.Workspace(units, 60, np.float64).buffers._replace(penalty_columns=np.empty((rows, 40)))
        grads = np.empty_like(params)
        loss = _loop._run(*args, grads, work, _loop.no_step(np.float64), _loop._NO_NORMS, threads=threads)[0]
        results.append((loss, grads))
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grads, results[0][1])
    for scratch in (np.empty((0, 40)), np.empty((2, 39))):
        work = _loop.Workspace(units, 60, np.float64).buffers._replace(penalty_columns=scratch)
        with pytest.raises(ValueError, match="a workspace without region 2's tasks or scratch"):
            _loop.check_call(*args, np.empty_like(params), work, _loop.no_step(np.float64), 1, _loop._NO_NORMS)


def test_numba_num_threads_lowered_after_numba_started_leaves_the_functional_api_working():
    """NUMBA_NUM_THREADS set after Numba has compiled something: the workspace
    then has scratch for that many threads, and the pool still runs all of
    its own. loss_and_gradients raised 'a workspace for 1 threads, run on 2'."""
    code = textwrap.dedent("""
        import os, numba, numpy as np
        numba.njit(lambda x: x + 1)(1)
        os.environ["NUMBA_NUM_THREADS"] = "1"
        import fastbp
        rng = np.random.default_rng(0)
        coefs, intercepts = [rng.normal(size=(3, 40)), rng.normal(size=(40, 2))], [np.zeros(40), np.zeros(2)]
        X, Y = rng.normal(size=(50, 3)), np.eye(2)[rng.integers(0, 2, 50)]
        print(repr(fastbp.loss_and_gradients(coefs, intercepts, X, Y)[0]))
    """)
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.isfinite(float(result.stdout.strip().removeprefix("np.float64(").rstrip(")")))


# Every public path in both backends and dtypes, then the compiled-only
# functions it called from Python (each such call builds an uncached twin).
PUBLIC_PATHS = """
    import json, pickle, warnings
    import numpy as np, scipy.sparse as sp
    import fastbp
    from fastbp import MLPClassifier, MLPRegressor
    from fastbp._cache import CompiledOnlyDispatcher
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.normal(size=(60, 5)).astype(dtype)
        y = np.arange(60) % 3
        Y = np.eye(3, dtype=dtype)[y]
        for backend in ("loop", "vectorized"):
            for solver in ("adam", "sgd", "lbfgs"):
                model = MLPClassifier((6, 4), max_iter=2, random_state=0, solver=solver, backend=backend,
                                      early_stopping=solver != "lbfgs").fit(X, y)
                model.predict(X[:1]), model.predict_proba(X), model.score(X, y)
            model = MLPClassifier((4,), max_iter=2, random_state=0, backend=backend, dropout=0.2,
                                  record_gradient_norms=True).fit(sp.csr_matrix(X), y)
            model.partial_fit(X[:20], y[:20])
            pickle.loads(pickle.dumps(model)).predict(sp.csr_matrix(X))
            for loss, target in (("squared_error", X[:, :2]), ("poisson", np.abs(X[:, 0]))):
                MLPRegressor(hidden_layer_sizes=(4,), loss=loss, max_iter=2, random_state=0,
                             backend=backend).fit(X, target).predict(X)
            fastbp.forward(model.coefs_, model.intercepts_, X, backend=backend)
            fastbp.loss_and_gradients(model.coefs_, model.intercepts_, X, Y, backend=backend)
        for mode in ("reverse", "forward"):
            fastbp.jacobian(model, X[:3], mode=mode)
        # L-BFGS records the norms between iterations, from Python; scikit-learn's
        # own gradient check calls _backprop.
        model = MLPClassifier((4,), max_iter=2, random_state=0, solver="lbfgs", record_gradient_norms=True).fit(X, y)
        n_layers = len(model.coefs_)
        model._backprop(X, Y, None, [X] + [None] * n_layers, [None] * n_layers, [None] * n_layers,
                        [None] * n_layers)
    fastbp.check_gradients(model.coefs_, model.intercepts_, X[:5].astype(np.float64), Y[:5].astype(np.float64))
    fastbp.warmup()
    print(json.dumps(sorted(CompiledOnlyDispatcher.twins)))
"""


def test_no_public_path_calls_a_compiled_only_function_from_python(tmp_path):
    """The kernels compiled with no CPython wrapper (JIT) are called by compiled
    code alone in every fit, predict, jacobian and warmup: a Python call would
    compile an uncached twin in every process."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(PUBLIC_PATHS)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == []
