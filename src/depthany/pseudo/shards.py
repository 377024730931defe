"""WebDataset tar shards with the standard library: streaming reads, random-access reads, atomic writes.

A WebDataset shard is a plain POSIX tar whose members are grouped into *samples* by key: ``a/b/x.jpg`` and
``a/b/x.json`` belong to sample ``a/b/x``. The key is the member path up to the first dot of its file name and
the rest is the extension (``x.disp.npy`` -> key ``x``, extension ``disp.npy``); a sample's members are
consecutive in the archive. Files written here read back with the ``webdataset`` package (tested).

Why not the ``webdataset`` package itself: pseudo-labelling needs exactly one output shard per input shard,
written to a temporary name and renamed only when complete (a killed run must never leave a shard that looks
finished), plus the byte offset of every member so that training can read samples at random. ``tarfile``
gives both in about a hundred lines; ``webdataset.ShardWriter`` rotates files by count or size instead and
its readers stream only.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from depthany.io.atomic import fsync_dir


class ShardError(ValueError):
    """A shard cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class Member:
    """One file inside a shard: its bytes (when read) and where they sit in the tar file.

    Attributes:
        name: member path inside the tar (``a/x.jpg``).
        offset: byte offset of the member's data in the tar file.
        size: data length in bytes.
        data: the bytes, or None when only the position was read (:func:`index_shard`).
    """

    name: str
    offset: int
    size: int
    data: bytes | None = None


@dataclass
class Sample:
    """The members of one key, by extension (``{"jpg": Member, "json": Member}``)."""

    key: str
    members: dict[str, Member] = field(default_factory=dict)


def split_name(name: str) -> tuple[str, str]:
    """WebDataset's key rule: ``"a/b/x.seg.png"`` -> ``("a/b/x", "seg.png")``; no dot -> extension ``""``."""
    p = PurePosixPath(name)
    stem, dot, ext = p.name.partition(".")
    parent = str(p.parent)
    key = stem if parent in ("", ".") else f"{parent}/{stem}"
    return key, ext if dot else ""


def _group(members: Iterator[Member], where: str) -> Iterator[Sample]:
    current: Sample | None = None
    for m in members:
        key, ext = split_name(m.name)
        if current is not None and key != current.key:
            yield current
            current = None
        if current is None:
            current = Sample(key)
        if ext in current.members:
            raise ShardError(f"{where}: member {m.name!r} appears twice in sample {key!r}")
        current.members[ext] = m
    if current is not None:
        yield current


def iter_shard(path: str | Path) -> Iterator[Sample]:
    """Stream the samples of a tar shard in archive order, with every member's bytes and offset.

    Directories, links and other non-file members are skipped (WebDataset ignores them too).

    Raises:
        ShardError: the file is missing, not a tar archive, or truncated; names the file.
    """
    p = Path(path)

    def members() -> Iterator[Member]:
        try:
            with open(p, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
                for info in tar:
                    if not info.isfile():
                        continue
                    fh = tar.extractfile(info)
                    data = fh.read() if fh is not None else b""
                    if len(data) != info.size:
                        raise ShardError(f"{p}: truncated at member {info.name!r}")
                    yield Member(info.name, info.offset_data, info.size, data)
        except FileNotFoundError:
            raise ShardError(f"{p}: no such shard") from None
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ShardError(f"{p}: not a readable tar shard ({type(e).__name__}: {e})") from None

    yield from _group(members(), str(p))


def index_shard(path: str | Path) -> list[Sample]:
    """All samples of a shard with member offsets and sizes but no data (reads tar headers only).

    Raises:
        ShardError: missing, unreadable or truncated file; names it.
    """
    p = Path(path)
    try:
        with tarfile.open(p, mode="r:") as tar:
            infos = [i for i in tar.getmembers() if i.isfile()]
        size = p.stat().st_size
    except FileNotFoundError:
        raise ShardError(f"{p}: no such shard") from None
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ShardError(f"{p}: not a readable tar shard ({type(e).__name__}: {e})") from None
    bad = next((i for i in infos if i.offset_data + i.size > size), None)
    if bad is not None:
        raise ShardError(f"{p}: truncated at member {bad.name!r}")
    return list(_group((Member(i.name, i.offset_data, i.size) for i in infos), str(p)))


def index_path(path: str | Path) -> Path:
    """The offset index a :class:`ShardWriter` can write next to its shard: ``x.tar`` -> ``x.idx.json``."""
    return Path(path).with_suffix(".idx.json")


def read_index(path: str | Path) -> list[Sample] | None:
    """Samples (offsets, no data) from the shard's ``.idx.json``, or None when there is no usable index (missing,
    unreadable, or written for a tar of another size: then scan with :func:`index_shard`)."""
    p = Path(path)
    try:
        data = json.loads(index_path(p).read_text())
        if int(data["tar_size"]) != p.stat().st_size:
            return None
        return [Sample(key, {ext: Member(f"{key}.{ext}", int(o), int(n)) for ext, (o, n) in members.items()})
                for key, members in data["samples"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_index(path: str | Path) -> list[Sample]:
    """:func:`read_index` when the shard has a valid index file, else :func:`index_shard` (reads every header)."""
    return read_index(path) or index_shard(path)


def read_member(path: str | Path, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of a shard file (one member's data, located by :func:`index_shard`).

    Raises:
        ShardError: the file is missing or shorter than expected.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    except OSError as e:
        raise ShardError(f"{path}: cannot read ({e})") from None
    if len(data) != size:
        raise ShardError(f"{path}: truncated (wanted {size} bytes at offset {offset}, got {len(data)})")
    return data


def temp_name(path: Path) -> Path:
    """The temporary file a :class:`ShardWriter` for ``path`` writes before renaming (one per process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def stale_temps(path: Path) -> list[Path]:
    """Temporary files left for ``path`` (and its index) by writers that died (any process id)."""
    idx = index_path(path)
    return sorted([*path.parent.glob(f".{path.name}.tmp-*"), *idx.parent.glob(f".{idx.name}.tmp-*")])


class ShardWriter:
    """Write one tar shard to a temporary name; :meth:`commit` renames it into place when complete.

    Until the commit, ``path`` does not exist (or keeps its previous content), so a shard file that exists is
    always complete. Members get fixed metadata (mtime 0, mode 0644, no owner), so the bytes depend only on
    the samples written and their order. With ``index=True`` the commit first writes ``x.idx.json``: every
    member's data offset and size (what :func:`index_shard` would find by reading all tar headers, at ~0.3 ms
    per header in Python, too slow for millions of samples).
    """

    def __init__(self, path: str | Path, index: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_name(self.path)
        self._file = open(self.tmp, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        self.count = 0
        self._keys: set[str] = set()
        self._index: list[tuple[str, dict[str, tuple[int, int]]]] | None = [] if index else None

    def write(self, key: str, files: dict[str, bytes]) -> None:
        """Add one sample: ``files`` maps extensions (``"disp.npy"``) to bytes, stored as ``key.ext``.

        Raises:
            ShardError: a key written twice, or a key whose file name contains a dot (it would split wrongly).
        """
        if "." in PurePosixPath(key).name or not key or key.endswith("/"):
            raise ShardError(f"{self.path}: invalid sample key {key!r} (no dots in the file-name part)")
        if key in self._keys:
            raise ShardError(f"{self.path}: sample key {key!r} written twice")
        self._keys.add(key)
        where: dict[str, tuple[int, int]] = {}
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            self._tar.addfile(info, io.BytesIO(data))
            padded = (len(data) + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
            where[ext] = (self._tar.offset - padded, len(data))  # the data ends the archive so far
        if self._index is not None:
            self._index.append((key, where))
        self.count += 1

    def commit(self) -> Path:
        """Finish the archive, flush it to disk and rename it to ``path``. Returns ``path``."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self._index is not None:  # before the rename: a finished shard always has its index
            idx = index_path(self.path)
            tmp_idx = temp_name(idx)
            tmp_idx.write_text(json.dumps({"tar_size": self.tmp.stat().st_size, "samples": self._index}))
            os.replace(tmp_idx, idx)
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (nothing is renamed)."""
        try:
            self._tar.close()
            self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)
