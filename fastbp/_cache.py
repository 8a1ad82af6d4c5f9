"""Numba's on-disk cache for fastbp's kernels: whether it can live anywhere.

Numba's own cache raises at decoration time (so at ``import fastbp``) when it
finds no writable directory; fastbp then compiles in memory instead.
"""

import warnings

from numba.core.caching import FunctionCache


def _probe():
    """A function of this package for Numba to look for a cache directory for."""


def disk_cache_available():
    """Whether Numba can cache fastbp's kernels on disk; warn once if not.

    Numba picks the directory per source file (``NUMBA_CACHE_DIR``, else the
    package's ``__pycache__``, else a user cache directory) and checks it by
    writing to it. Every kernel module sits in this file's directory, so one
    probe answers for all of them.

    Returns
    -------
    bool
        False, with a RuntimeWarning, when no directory is writable.
    """
    try:
        FunctionCache(_probe)
    except RuntimeError as exc:
        warnings.warn(
            f"fastbp cannot cache its compiled kernels on disk ({exc}): they are compiled "
            "again in every process. Set NUMBA_CACHE_DIR to a writable directory to cache them.",
            RuntimeWarning, stacklevel=2,
        )
        return False
    return True

