"""Small helpers for (3, M) float32 vector arrays (x, y, z along the first axis).

They exist for speed: numpy's ``a[:, idx]`` fancy indexing on the last axis is several times slower
than ``np.take`` and per-row assignment, and ``(a * b).sum(0)`` allocates a (3, M) temporary.
"""

from __future__ import annotations

import numpy as np


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product over the leading axis of (3, ...) arrays (either may be a (3,) or (3, 1) vector)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Columns ``idx`` of a (3, M) (or (C, M)) array -> (C, len(idx))."""
    return np.take(a, idx, axis=1)


def put(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """``out[:, idx] = values`` for (C, M) ``out`` and (C, len(idx)) ``values``, row by row (faster)."""
    for k in range(out.shape[0]):
        out[k][idx] = values[k]
