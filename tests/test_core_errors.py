"""Bad input gets a ValueError naming the problem, before any compiled code runs."""

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from _reference import DISALLOWED_PAIRS, draw_problem, pair_id

import fastbp

FUNCTIONS = ["forward", "loss_and_gradients", "check_gradients"]


def _problem():
    return draw_problem(
        0, hidden=(4, 3), activation="tanh", out_activation="softmax", loss="log_loss",
        n_samples=5, n_outputs=3, weighted=True,
    )


def _call(name, coefs, intercepts, X, Y, **options):
    if name == "forward":
        options = {k: v for k, v in options.items()
                   if k in ("activation", "out_activation", "backend")}
        return fastbp.forward(coefs, intercepts, X, **options)
    return getattr(fastbp, name)(coefs, intercepts, X, Y, **options)


def _raises(name, *patterns, **changes):
    """Call with ``changes`` applied; expect a ValueError whose message matches every pattern."""
    coefs, intercepts, X, Y, options = _problem()
    args = dict(coefs=coefs, intercepts=intercepts, X=X, Y=Y)
    for key, value in changes.items():
        if key in args:
            args[key] = value
        else:
            options[key] = value
    with pytest.raises(ValueError) as info:
        _call(name, **args, **options)
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("option, value", [
    ("activation", "sigmoid"),
    ("activation", "softmax"),  # output only
    ("activation", "exp"),  # output only
    ("out_activation", "softplus"),
    ("backend", "gpu"),
])
def test_unknown_names_raise(name, option, value):
    _raises(name, rf"\b{value}\b", **{option: value})


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
def test_unknown_loss_raises(name):
    _raises(name, r"\bhinge\b", loss="hinge")


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
def test_a_missing_loss_is_named(name):
    """forward takes no loss (None); a training call given None names it, not a KeyError."""
    _raises(name, r"\bloss None\b", loss=None)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("alpha, error", [("0.1", TypeError), (True, TypeError), (1j, TypeError),
                                          (-1.0, ValueError), (np.inf, ValueError), (10**400, ValueError)])
def test_alpha_other_than_a_finite_nonnegative_real_is_named(name, alpha, error):
    coefs, intercepts, X, Y, options = _problem()
    with pytest.raises(error, match=r"^alpha must be"):
        _call(name, coefs, intercepts, X, Y, **dict(options, alpha=alpha))


@pytest.mark.parametrize("eps, error", [(0, ValueError), (-1e-6, ValueError), (np.nan, ValueError),
                                        ("1e-6", TypeError)])
def test_check_gradients_refuses_a_step_that_is_no_positive_number(eps, error):
    coefs, intercepts, X, Y, options = _problem()
    with pytest.raises(error, match=r"^eps must be"):
        fastbp.check_gradients(coefs, intercepts, X, Y, eps=eps, **options)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
def test_poisson_with_a_negative_target_raises_as_the_estimators_do(name):
    """The loss of a negative target is NaN: returned silently before."""
    coefs, intercepts, X, Y, options = _problem()
    Y = Y.copy()
    Y[2, 1] = -1.0
    options.update(out_activation="exp", loss="poisson")
    with pytest.raises(ValueError, match="poisson loss needs non-negative targets"):
        _call(name, coefs, intercepts, X, Y, **options)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("value", [-0.5, 1.5])
def test_log_loss_with_a_target_outside_0_1_raises(name, value):
    """A negative target gave a negative loss, silently; soft targets inside
    [0, 1] stay accepted."""
    coefs, intercepts, X, Y, options = _problem()
    soft = np.full_like(Y, 1.0 / Y.shape[1])
    _call(name, coefs, intercepts, X, soft, **options)
    Y = Y.copy()
    Y[2, 1] = value
    with pytest.raises(ValueError, match=re.escape("log_loss needs targets in [0, 1]")):
        _call(name, coefs, intercepts, X, Y, **options)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_complex_or_string_input_is_refused_not_cast(name):
    """A cast would drop the imaginary part (with only NumPy's warning) or
    parse strings of digits; scikit-learn refuses both."""
    coefs, intercepts, X, Y, options = _problem()
    for bad in (X + 1j, X.astype(str)):
        _raises(name, r"\bX must be numeric", str(bad.dtype), X=bad)
    _raises(name, r"coefs\[1\] must be numeric", "complex", coefs=[coefs[0], coefs[1] + 0j, coefs[2]])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_layers_not_in_a_list_or_without_units_are_named(name):
    coefs, intercepts, X, Y, options = _problem()
    for given in (iter(coefs), None, coefs[0]):
        with pytest.raises(TypeError, match="coefs and intercepts must be lists of arrays"):
            _call(name, given, intercepts, X, Y, **options)
    empty = [np.zeros((X.shape[1], 0)), np.zeros((0, 3))]
    _raises(name, re.escape(f"coefs[0] has shape ({X.shape[1]}, 0): every layer needs at least one"),
            coefs=empty, intercepts=[np.zeros(0), np.zeros(3)])


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("backend", ["loop", "vectorized"])
@pytest.mark.parametrize("pair", DISALLOWED_PAIRS, ids=pair_id)
def test_disallowed_output_loss_pairs_raise_naming_the_pair(pair, backend, name):
    out_activation, loss = pair
    coefs, intercepts, X, Y, options = _problem()
    options.update(out_activation=out_activation, loss=loss, backend=backend)
    with pytest.raises(ValueError) as info:
        _call(name, coefs, intercepts, X, Y, **options)
    message = str(info.value)
    assert re.search(rf"\b{out_activation}\b", message), message
    assert re.search(rf"\b{loss}\b", message), message
    # and it names an allowed output activation for that loss
    allowed = {"log_loss": "softmax|logistic", "poisson": r"\bexp\b"}[loss]
    assert re.search(allowed, message), message


# ---------------------------------------------------------------- shapes
def _bad_shapes():
    coefs, intercepts, X, Y, options = _problem()
    W0, W1, W2 = coefs
    b0, b1, b2 = intercepts
    yield "coef-chain", "coefs", dict(coefs=[W0, W1[:-1], W2])
    yield "intercept-length", "intercepts", dict(intercepts=[b0, b1[:-1], b2])
    yield "fewer-intercepts", "intercepts", dict(intercepts=[b0, b1])
    yield "coef-1d", "coefs", dict(coefs=[W0, W1.ravel(), W2])
    yield "intercept-2d", "intercepts", dict(intercepts=[b0[None, :], b1, b2])
    yield "no-layers", "coefs", dict(coefs=[], intercepts=[])
    yield "X-features", r"\bX\b", dict(X=X[:, :-1])
    yield "X-1d", r"\bX\b", dict(X=X[0])
    yield "X-3d", r"\bX\b", dict(X=X[:, :, None])


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case, culprit, changes", list(_bad_shapes()),
                         ids=[c for c, _, _ in _bad_shapes()])
def test_bad_network_or_X_shapes_raise(case, culprit, changes, name):
    _raises(name, culprit, r"(?i)shape|[12]-?D\b|dimension|feature|length|empty", **changes)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("case", ["rows", "columns", "1d", "3d"])
def test_bad_Y_shapes_raise(case, name):
    coefs, intercepts, X, Y, options = _problem()
    Y = {"rows": Y[:-1], "columns": Y[:, :-1], "1d": Y.argmax(axis=1).astype(float),
         "3d": Y[:, :, None]}[case]
    _raises(name, r"\bY\b", r"(?i)shape|2-?D\b|dimension", Y=Y)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("case", ["short", "long", "2d"])
def test_sample_weight_of_wrong_shape_raises(case, name):
    coefs, intercepts, X, Y, options = _problem()
    s = options["sample_weight"]
    options["sample_weight"] = {"short": s[:-1], "long": np.append(s, 1.0),
                                "2d": s[:, None]}[case]
    _raises(name, r"sample_weight", r"(?i)shape|1-?D\b|length|dimension",
            sample_weight=options["sample_weight"])


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
@pytest.mark.parametrize("weight, alpha, total", [(1e308, 0.0, "inf"), (5e-324, 1e300, "2.5e-323")])
def test_sample_weight_whose_sum_the_loss_cannot_divide_by_is_named(name, weight, alpha, total):
    """Finite weights whose sum overflows gave a NaN loss and gradients.
    Subnormal ones are scaled up, alpha with them, as far as alpha allows:
    beside alpha=1e300 not far enough, and the sum named is the one given."""
    _raises(name, rf"sample_weight sums to {total} in float64", r"rescale", sample_weight=np.full(5, weight),
            alpha=alpha)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [0.0, 2.0**-4])
def test_subnormal_sample_weights_give_the_loss_and_gradients_of_their_scaled_copies(dtype, alpha):
    """The loss and gradients do not change when the weights and alpha are
    multiplied by one number. Weights down in the subnormals were refused
    ("rescale the weights") where their sum was subnormal, and lost bits in
    every weighted error where it was not; the estimators scale them by a
    power of two, and so now does the functional API."""
    coefs, intercepts, X, Y, options = _problem()
    coefs, intercepts = [[a.astype(dtype) for a in arrays] for arrays in (coefs, intercepts)]
    X, Y = X.astype(dtype), Y.astype(dtype)
    weights = np.array([1.0, 3.0, 0.5, 2.0, 7.0], dtype=dtype)
    # 2^-1070 puts float64 weights 4 to 8 bits above the smallest subnormal, 2^-145 float32 ones;
    # alpha 2^-4 then becomes the smallest subnormal, exactly.
    shift = -1070 if dtype == np.float64 else -145
    options = dict(options, alpha=alpha)
    expected = fastbp.loss_and_gradients(coefs, intercepts, X, Y, **dict(options, sample_weight=weights))
    tiny = np.ldexp(weights, shift).astype(dtype)
    assert tiny.min() < np.finfo(dtype).tiny
    scaled = dict(options, sample_weight=tiny, alpha=float(np.ldexp(alpha, shift)))
    got = fastbp.loss_and_gradients(coefs, intercepts, X, Y, **scaled)
    assert got[0] == pytest.approx(expected[0], rel=1e-12 if dtype == np.float64 else 1e-6)
    for g, e in zip(got[1] + got[2], expected[1] + expected[2]):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=0)
    assert fastbp.check_gradients(coefs, intercepts, X, Y, **scaled) == pytest.approx(
        fastbp.check_gradients(coefs, intercepts, X, Y, **dict(options, sample_weight=weights)), rel=1e-3)


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
def test_alpha_beyond_float32_is_named_for_float32_input(name):
    """Cast to float32 it was infinite: finite loss, gradients of -inf."""
    coefs, intercepts, X, Y, options = _problem()
    cast = [[a.astype(np.float32) for a in arrays] for arrays in (coefs, intercepts)]
    with pytest.raises(ValueError, match=r"alpha=1e\+39 is beyond the range of float32"):
        _call(name, *cast, X.astype(np.float32), Y.astype(np.float32), **dict(options, alpha=1e39))
    _call(name, *cast, X.astype(np.float32), Y.astype(np.float32), **dict(options, alpha=1e3))


def test_check_gradients_names_a_step_that_makes_the_loss_overflow():
    """The answer was NaN, with only NumPy's RuntimeWarnings (errors here) to say why."""
    coefs, intercepts, X, Y, options = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"central differences are not finite.*eps=1e\+300"):
            fastbp.check_gradients(coefs, intercepts, X, Y, **dict(options, eps=1e300))


@pytest.mark.parametrize("name", ["loss_and_gradients", "check_gradients"])
def test_negative_sample_weight_raises(name):
    coefs, intercepts, X, Y, options = _problem()
    options["sample_weight"][2] = -0.5
    _raises(name, r"sample_weight", r"(?i)negative|non-?negative|>= ?0",
            sample_weight=options["sample_weight"])


# ---------------------------------------------------------------- non-finite values
NONFINITE_TARGETS = ["X", "Y", "coefs", "intercepts", "sample_weight"]


# forward takes no Y or sample_weight.
NONFINITE_CASES = [(target, name) for target in NONFINITE_TARGETS for name in FUNCTIONS
                   if not (name == "forward" and target in ("Y", "sample_weight"))]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("target, name", NONFINITE_CASES)
def test_nonfinite_inputs_raise(target, bad, name):
    coefs, intercepts, X, Y, options = _problem()
    if target == "X":
        X[1, 2] = bad
    elif target == "Y":
        Y[3, 0] = bad
    elif target == "coefs":
        coefs[1][2, 1] = bad
    elif target == "intercepts":
        intercepts[2][0] = bad
    else:
        options["sample_weight"][4] = bad
    with pytest.raises(ValueError) as info:
        _call(name, coefs, intercepts, X, Y, **options)
    message = str(info.value)
    assert re.search(r"(?i)nan|inf|finite", message), message
    assert re.search(rf"\b{target}\b", message), message


@pytest.mark.parametrize("name, target", [(name, target) for name in FUNCTIONS for target in ("X", "Y")
                                           if not (name == "forward" and target == "Y")])
def test_sparse_inputs_get_scikit_learns_dense_data_message(name, target):
    """Not NumPy's "setting an array element with a sequence"."""
    import scipy.sparse as sp

    coefs, intercepts, X, Y, options = _problem()
    X, Y = (sp.csr_matrix(X), Y) if target == "X" else (X, sp.csr_matrix(Y))
    message = f"Sparse data was passed for {target}, but dense data is required. Use '.toarray()'"
    with pytest.raises(TypeError, match=re.escape(message)):
        _call(name, coefs, intercepts, X, Y, **options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_float32_input_raises(dtype):
    coefs, intercepts, X, Y, options = _problem()
    X = X.astype(dtype)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        fastbp.loss_and_gradients(coefs, intercepts, X, Y, **options)


# ---------------------------------------------------------------- lazy compilation
LAZY_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numba.core.dispatcher import Dispatcher

    def dispatchers():
        found = {}
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "fastbp" or name.startswith("fastbp.")):
                continue
            for attr, value in vars(module).items():
                if isinstance(value, Dispatcher):
                    found[f"{name}.{attr}"] = value
        return found

    import fastbp

    compiled = sorted(k for k, d in dispatchers().items() if d.signatures)
    assert not compiled, f"compiled at import: {compiled}"

    # bad input is refused before any compiled code runs
    coefs = [np.ones((3, 4)), np.ones((4, 2))]
    intercepts = [np.zeros(4), np.zeros(2)]
    X = np.ones((5, 3))
    Y = np.eye(2)[[0, 1, 0, 1, 1]]
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    bad_calls = [
        lambda: fastbp.forward(coefs, intercepts, X_nan),
        lambda: fastbp.forward(coefs, intercepts, X[:, :2]),
        lambda: fastbp.forward(coefs, intercepts, X, activation="sigmoid"),
        lambda: fastbp.loss_and_gradients(coefs, intercepts, X, Y, out_activation="identity"),
        lambda: fastbp.loss_and_gradients(coefs, intercepts, X, Y[:4]),
        lambda: fastbp.loss_and_gradients(coefs, intercepts, X, Y, sample_weight=-np.ones(5)),
        lambda: fastbp.check_gradients(coefs, [intercepts[0]], X, Y),
    ]
    for call in bad_calls:
        try:
            call()
        except ValueError:
            pass
        else:
            raise AssertionError("no ValueError")
    compiled = sorted(k for k, d in dispatchers().items() if d.signatures)
    assert not compiled, f"compiled on bad input: {compiled}"

    # the detection itself works: a good call does leave compiled signatures behind
    fastbp.loss_and_gradients(coefs, intercepts, X, Y)
    compiled = sorted(k for k, d in dispatchers().items() if d.signatures)
    assert compiled, "no compiled dispatcher found after a loop call"
    print("ok", len(dispatchers()), "dispatchers")
    """
)


def test_import_and_bad_input_compile_nothing():
    result = subprocess.run(
        [sys.executable, "-c", LAZY_SCRIPT], capture_output=True, text=True, timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")
