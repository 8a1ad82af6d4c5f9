"""scikit-learn's own MLP tests, run against fastbp's estimators.

The tests are those of the installed scikit-learn
(``sklearn/neural_network/tests/test_mlp.py``), not a copy: each ``test_*``
function of that module is exposed here wrapped, and the wrapper rebinds the
module's globals ``MLPClassifier`` and ``MLPRegressor`` to fastbp's for the
duration of the call. Its test functions look those names up at call time, so
they build fastbp's estimators; the parametrized ones received scikit-learn's
classes as arguments when the module was imported, and the wrapper swaps those
too. Outside a wrapped call the module keeps scikit-learn's classes, so any
other test of the session sees scikit-learn unchanged.
"""

import contextlib
import functools

import pytest
import sklearn.neural_network as sk_nn

import fastbp

# Plain asserts of scikit-learn's tests then report their operands on failure.
pytest.register_assert_rewrite("sklearn.neural_network.tests.test_mlp")

from sklearn.neural_network.tests import test_mlp as sk_test_mlp  # noqa: E402

# scikit-learn's parametrization of its global_random_seed fixture, from its
# conftest (SKLEARN_TESTS_GLOBAL_RANDOM_SEED picks the seeds), for this module
# alone: registering sklearn.conftest as a plugin would also run its session
# hooks, which cap BLAS threads for every test.
from sklearn.conftest import pytest_generate_tests  # noqa: E402, F401

_NAMES = ("MLPClassifier", "MLPRegressor")


def _substitute(value):
    """fastbp's estimator class in place of scikit-learn's; other values as given."""
    for name in _NAMES:
        if value is getattr(sk_nn, name):
            return getattr(fastbp, name)
    return value


@contextlib.contextmanager
def _fastbp_globals():
    """scikit-learn's test module sees fastbp's classes, until the block ends."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _NAMES:
            patch.setattr(sk_test_mlp, name, getattr(fastbp, name))
        yield


def _on_fastbp(test):
    """`test`, run with fastbp's classes in its module's globals and arguments.

    functools.wraps keeps the name, the parametrize marks and, through
    __wrapped__, the signature pytest reads the fixtures from.
    """

    @functools.wraps(test)
    def run(*args, **kwargs):
        with _fastbp_globals():
            return test(*map(_substitute, args), **{k: _substitute(v) for k, v in kwargs.items()})

    return run


for _name, _test in vars(sk_test_mlp).copy().items():
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _on_fastbp(_test)
del _name, _test


def test_suite_runs_fastbp(monkeypatch):
    """A wrapped test builds and trains fastbp's estimators, and only while it runs."""
    seen = []
    original = fastbp.MLPClassifier.partial_fit

    def recording_partial_fit(self, *args, **kwargs):
        seen.append(type(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fastbp.MLPClassifier, "partial_fit", recording_partial_fit)
    test_partial_fit_classes_error()  # noqa: F821 (bound by the loop above)
    assert seen and set(seen) == {fastbp.MLPClassifier}

    for name in _NAMES:
        assert sk_test_mlp.test_alpha.__globals__[name] is getattr(sk_nn, name)
        with _fastbp_globals():
            assert sk_test_mlp.test_alpha.__globals__[name] is getattr(fastbp, name)
        assert sk_test_mlp.test_alpha.__globals__[name] is getattr(sk_nn, name)


def test_parametrized_classes_are_substituted():
    """Classes scikit-learn's parametrize marks bound at import reach the test as fastbp's."""
    received = {}

    def probe(MLPEstimator, other):
        received.update(MLPEstimator=MLPEstimator, other=other)

    _on_fastbp(probe)(MLPEstimator=sk_nn.MLPRegressor, other=sk_nn)
    assert received == {"MLPEstimator": fastbp.MLPRegressor, "other": sk_nn}
