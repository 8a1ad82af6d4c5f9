"""Every Examples section in fastbp's docstrings runs, shows what it prints,
and warns of nothing (a user pasting it sees no warning either)."""

import doctest
import importlib
import pkgutil
import warnings

import pytest

import fastbp

MODULES = sorted(f"fastbp.{info.name}" for info in pkgutil.iter_modules(fastbp.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run_as_shown_without_warnings(name):
    module = importlib.import_module(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        # fastbp.patch's examples patch scikit-learn: one failing halfway must not leave the tests after it patched.
        fastbp.unpatch_sklearn()
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"


def test_the_public_estimators_and_functions_have_examples():
    names = ("MLPClassifier", "MLPRegressor", "forward", "loss_and_gradients", "check_gradients", "jacobian")
    missing = [name for name in names if ">>>" not in (getattr(fastbp, name).__doc__ or "")]
    assert not missing
