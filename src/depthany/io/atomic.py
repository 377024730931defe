"""Write files atomically: to a temporary name in the same folder, then rename over the target.

A reader (or a crash, or Ctrl-C) never sees a half-written output, and an existing file is only replaced by a
complete new one. This is the one implementation every writer in depthany uses (outputs, weights,
checkpoints, shards, synthetic samples).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0)
        os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entry list to disk, so a rename inside it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: str | Path) -> Path:
    """A unique hidden temporary name beside ``path`` that keeps its suffix (format-by-extension writers work)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on any error delete it.

    The file gets the usual permissions (``0666 & ~umask``) even if the writer created it private. Parent
    folders are created. ``durable=True`` also flushes the file and the folder to disk (checkpoints).

    Example:
        >>> with atomic_path("out/x.npy") as tmp:   # doctest: +SKIP
        ...     np.save(tmp, values)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: str | Path, write: Callable[[Path], object], durable: bool = False) -> Path:
    """Call ``write(tmp_path)``, then rename ``tmp_path`` onto ``path``; returns ``path``."""
    with atomic_path(path, durable=durable) as tmp:
        write(tmp)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | Path, text: str, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (``durable``: also flushed to disk); returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=durable)
