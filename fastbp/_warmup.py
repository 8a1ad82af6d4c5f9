"""Compile, or load from Numba's disk cache, every kernel a fit, a predict and
``fastbp.jacobian`` use."""

import time
import warnings
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from ._functional import forward, loss_and_gradients
from ._jacobian import jacobian
from ._validation import training_dtype


def warmup(dtypes=("float64", "float32")):
    """Pay the compile cost up front, for a service or a notebook.

    Runs a tiny fit of each solver (L-BFGS's recording its gradient norms),
    one on CSR input with dropout, a predict and a Jacobian in each of both
    modes per dtype, which compiles the epoch (it also serves L-BFGS's loss
    and gradient and the forward pass of predict) and its regions in both
    versions (a dense fit without dropout or gradient norms compiles only the
    ones for that), the Jacobian sweeps and the functional API's calls, or
    loads them from the on-disk cache in well under a second.

    Parameters
    ----------
    dtypes : str or tuple of str, default=('float64', 'float32')
        The dtypes of the data to prepare for, as names NumPy understands. Data
        of any dtype other than float32 trains in float64, so each is prepared
        (and reported) as the dtype it trains in. L-BFGS always runs in float64.

    Returns
    -------
    dict
        Seconds spent per training dtype, by name.

    Examples
    --------
    >>> import fastbp
    >>> sorted(fastbp.warmup("float64"))
    ['float64']
    >>> sorted(fastbp.warmup(("float16", "float64")))
    ['float64']
    """
    from ._mlp import MLPClassifier

    if isinstance(dtypes, (str, type, np.dtype)):
        dtypes = (dtypes,)
    elif isinstance(dtypes, Iterable) and not isinstance(dtypes, (bytes, bytearray)):
        # (bytes iterate as ints, which NumPy would read as type numbers)
        dtypes = tuple(dtypes)
    # NumPy reads None as float64: here it is more likely a default left unset than a choice.
    if not isinstance(dtypes, tuple) or any(name is None for name in dtypes):
        raise TypeError(f"dtypes should be a dtype, its name, or a tuple of them; got {dtypes!r}.")
    trained = []
    for name in dtypes:
        dtype = training_dtype(np.empty(0, dtype=np.dtype(name)))
        if dtype not in trained:
            trained.append(dtype)
    rng = np.random.default_rng(0)
    seconds = {}
    for dtype in trained:
        start = time.perf_counter()
        X = rng.normal(size=(8, 3)).astype(dtype)
        y = np.arange(8) % 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPClassifier((4,), solver="lbfgs", max_iter=1, random_state=0, record_gradient_norms=True).fit(
                X, y).predict(X)
            # adam's model is of this dtype (L-BFGS's is float64 whatever the data): the Jacobian's.
            model = MLPClassifier((4,), max_iter=1, random_state=0).fit(X, y)
            model.predict(X)
            sparse = sp.csr_matrix(X)
            MLPClassifier((4,), dropout=0.5, max_iter=1, random_state=0).fit(sparse, y).predict(sparse)
        for mode in ("forward", "reverse"):
            jacobian(model, X, mode=mode)
        coefs = [np.ones((3, 2), dtype), np.ones((2, 2), dtype)]
        intercepts = [np.zeros(2, dtype), np.zeros(2, dtype)]
        forward(coefs, intercepts, X)
        loss_and_gradients(coefs, intercepts, X, np.eye(2, dtype=dtype)[y % 2])
        seconds[np.dtype(dtype).name] = time.perf_counter() - start
    return seconds
