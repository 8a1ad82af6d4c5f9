"""Compile, or load from Numba's disk cache, every kernel a fit and a predict use."""

import time
import warnings

import numpy as np

from ._functional import forward, loss_and_gradients


def warmup(dtypes=("float64", "float32")):
    """Pay the compile cost up front, for a service or a notebook.

    Runs a tiny fit of each solver and a predict in each dtype, which compiles
    the fused epoch, the L-BFGS loss-and-gradient call and the forward pass (or
    loads them from the on-disk cache, in well under a second), plus the
    functional API's calls.

    Parameters
    ----------
    dtypes : tuple of {'float64', 'float32'}, default=('float64', 'float32')
        The dtypes to prepare. L-BFGS always runs in float64.

    Returns
    -------
    dict
        Seconds spent per dtype.

    Examples
    --------
    >>> import fastbp
    >>> sorted(fastbp.warmup(dtypes=("float64",)))
    ['float64']
    """
    from ._mlp import MLPClassifier

    rng = np.random.default_rng(0)
    seconds = {}
    for name in dtypes:
        dtype = np.dtype(name)
        start = time.perf_counter()
        X = rng.normal(size=(8, 3)).astype(dtype)
        y = np.arange(8) % 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for solver in ("adam", "lbfgs"):
                MLPClassifier((4,), solver=solver, max_iter=1, random_state=0).fit(X, y).predict(X)
        coefs = [np.ones((3, 2), dtype), np.ones((2, 2), dtype)]
        intercepts = [np.zeros(2, dtype), np.zeros(2, dtype)]
        forward(coefs, intercepts, X)
        loss_and_gradients(coefs, intercepts, X, np.eye(2, dtype=dtype)[y])
        seconds[dtype.name] = time.perf_counter() - start
    return seconds
