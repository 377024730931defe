"""Write files atomically: to a temporary name in the same folder, then rename over the target.

A reader (or a crash, or Ctrl-C) never sees a half-written output, and an existing file is only replaced by a
complete new one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so format-by-extension writers work); on success
    rename it to ``path``, on any error delete it and re-raise. Parent folders are created.

    Example:
        >>> with atomic_path("out/x.npy") as tmp:   # doctest: +SKIP
        ...     np.save(tmp, values)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
