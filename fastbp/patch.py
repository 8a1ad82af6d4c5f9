"""Zero code changes: scikit-learn's MLP names resolve to fastbp's estimators.

``python -m fastbp.patch script.py [args ...]`` runs a script with the patch
applied before its first line, as ``python script.py [args ...]`` would run it.

What the patch replaces, and what it leaves alone:

- ``sklearn.neural_network.MLPClassifier`` and ``.MLPRegressor``, the public
  names. ``from sklearn.neural_network import MLPClassifier`` is an attribute
  lookup on that module, so every import made while patched, in the user's
  code or in a library's, yields fastbp's class.
- Not ``sklearn.neural_network._multilayer_perceptron``, where scikit-learn's
  classes live: pickles of scikit-learn's MLPs name that module, and load
  into scikit-learn's classes patched or not; fastbp's own interchange
  (``to_sklearn``, ``from_sklearn``) takes scikit-learn's classes from there.
- Names bound before patching keep what they were bound to: an estimator
  created, or a class imported, before the patch stays scikit-learn's. Patch
  first (``python -m fastbp.patch`` patches before anything is imported).
- Other interpreters: the patch is this process's (and its forked
  children's). Workers that start afresh (joblib's loky, spawn and
  forkserver pools, Dask and Ray) import scikit-learn unpatched; estimators
  sent to them keep their class.
"""

import os
import runpy
import sys

import sklearn.neural_network
from sklearn.neural_network import _multilayer_perceptron

from ._mlp import MLPClassifier, MLPRegressor

_NAMES = ("MLPClassifier", "MLPRegressor")
_FASTBP = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
# From the module that defines them, which the patch never touches.
_SKLEARN = {name: getattr(_multilayer_perceptron, name) for name in _NAMES}


class _Patched:
    """What patch_sklearn returns: a context manager that restores, on exit,
    the state before the call."""

    def __init__(self, was_patched):
        self._was_patched = was_patched

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if not self._was_patched:
            unpatch_sklearn()
        return False


def _is_patched():
    return sklearn.neural_network.MLPClassifier is MLPClassifier


def patch_sklearn():
    """Make scikit-learn's MLP names resolve to fastbp's estimators.

    Afterwards ``from sklearn.neural_network import MLPClassifier,
    MLPRegressor``, in any module, gives :class:`fastbp.MLPClassifier` and
    :class:`fastbp.MLPRegressor`: code written for scikit-learn, a library's
    included, trains with fastbp without an edit. Calling it again changes
    nothing; :func:`unpatch_sklearn` restores scikit-learn's classes.

    The estimators are fastbp's classes themselves, so:

    - ``isinstance(est, sklearn.neural_network.MLPClassifier)`` looked up while
      patched is true for fastbp's estimators; against scikit-learn's class
      itself (bound before the patch) it is false, as fastbp's classes do not
      derive from scikit-learn's.
    - ``clone`` and ``get_params`` see every fastbp parameter; code that
      passes scikit-learn's parameters only leaves fastbp's own (``backend``,
      ``n_threads``, ``class_weight``, ``dropout``, ``record_gradient_norms``)
      at their defaults, which train scikit-learn's model.
    - A fitted estimator pickles as ``fastbp._mlp.MLPClassifier``: it loads,
      patched or not, into fastbp's class, wherever fastbp is installed.
    - An estimator created before the patch, and ``clone`` of it, stay
      scikit-learn's; as does what ``to_sklearn()`` returns.

    Returns
    -------
    patched : context manager
        ``with patch_sklearn(): ...`` patches for the block only: on exit the
        patch is undone unless it was already on at the call.

    See Also
    --------
    unpatch_sklearn : Restore scikit-learn's classes.

    Examples
    --------
    >>> import fastbp
    >>> with fastbp.patch_sklearn():
    ...     from sklearn.neural_network import MLPClassifier
    >>> MLPClassifier is fastbp.MLPClassifier
    True
    >>> from sklearn.neural_network import MLPClassifier
    >>> MLPClassifier is fastbp.MLPClassifier
    False
    """
    was_patched = _is_patched()
    for name in _NAMES:
        setattr(sklearn.neural_network, name, _FASTBP[name])
    return _Patched(was_patched)


def unpatch_sklearn():
    """Restore scikit-learn's MLPClassifier and MLPRegressor in
    ``sklearn.neural_network``.

    Estimators and classes obtained while patched stay fastbp's.

    See Also
    --------
    patch_sklearn : Make scikit-learn's MLP names resolve to fastbp's estimators.

    Examples
    --------
    >>> import fastbp
    >>> fastbp.patch_sklearn()  # doctest: +ELLIPSIS
    <fastbp.patch._Patched object at ...>
    >>> fastbp.unpatch_sklearn()
    >>> from sklearn.neural_network import MLPRegressor
    >>> MLPRegressor.__module__
    'sklearn.neural_network._multilayer_perceptron'
    """
    for name in _NAMES:
        setattr(sklearn.neural_network, name, _SKLEARN[name])


def main(argv=None):
    """``python -m fastbp.patch script.py [args ...]``: run script.py as
    ``__main__``, with ``sys.argv`` and ``sys.path[0]`` as ``python script.py
    [args ...]`` sets them, under :func:`patch_sklearn`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python -m fastbp.patch script.py [args ...]\n"
                 "Runs script.py with sklearn.neural_network's MLPClassifier and MLPRegressor replaced by fastbp's.")
    script = argv[0]
    sys.argv = argv
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    patch_sklearn()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
