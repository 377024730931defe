"""Captions for ControlNet training samples: from a file, from sidecars next to each image, or from file names.

``--captions`` takes one of:

* ``sidecar`` (default): ``photo.txt`` next to ``photo.jpg``; in a WebDataset tar, the sample's ``txt`` member,
  else the ``caption`` / ``text`` / ``prompt`` field of its ``json`` member (what img2dataset writes);
* ``filename``: the file name without its suffix, ``_``, ``-`` and ``.`` read as spaces
  (``red_brick-house.jpg`` -> ``red brick house``);
* a file mapping images to captions:

  - ``.txt`` / ``.tsv``: ``NAME<TAB>CAPTION`` per line (blank lines and ``#`` comments skipped);
  - ``.csv``: a header row with a name column (``file_name``, ``image``, ``file``, ``path`` or ``key``) and a
    caption column (``text``, ``caption`` or ``prompt``);
  - ``.json``: ``{"NAME": "caption", ...}`` or a list of objects as in the CSV;
  - ``.jsonl``: one such object per line (a ``metadata.jsonl`` of an existing image folder works).

  ``NAME`` is matched against, in order: the image's path relative to the caption file's folder (with and
  without suffix), its file name, and its file name without suffix; for a WebDataset sample, its member name
  and its key (whole, then the last path part). A caption may be a list of strings (the diffusers training
  script picks one at random per step).

An image without a caption gets ``""`` and is counted in the report (the training script also trains on empty
prompts, ``--proportion_empty_prompts``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from ..pseudo.shards import ShardError, load_index, read_member

Caption = str | list[str]
NAME_FIELDS = ("file_name", "image", "file", "path", "key")
TEXT_FIELDS = ("text", "caption", "prompt")
KINDS = ("sidecar", "filename")


class CaptionError(ValueError):
    """A caption file that cannot be read; the message names the file and line."""


def _clean(value: Any) -> Caption | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        texts = [v.strip() for v in value if v.strip()]
        return (texts[0] if len(texts) == 1 else texts) if texts else None
    return None


def _norm(name: str) -> str:
    return str(PurePosixPath(name.replace("\\", "/"))).removeprefix("./")


def _pick(row: dict[str, Any], fields: Iterable[str]) -> Any:
    return next((row[f] for f in fields if f in row), None)


def read_caption_file(path: str | Path) -> dict[str, Caption]:
    """Name -> caption from a ``.txt``/``.tsv``, ``.csv``, ``.json`` or ``.jsonl`` file (see the module docstring).

    Raises:
        CaptionError: unreadable, an unknown suffix, or a malformed line/row (names the file and line).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".txt", ".tsv", ".csv", ".json", ".jsonl"):
        raise CaptionError(f"{p}: caption files are .txt/.tsv (NAME<TAB>CAPTION), .csv, .json or .jsonl; or give "
                           "--captions sidecar or --captions filename")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CaptionError(f"{p}: cannot read the caption file ({e})") from None
    rows: list[tuple[str, Any, str]] = []  # (name, caption, where)
    if suffix in (".txt", ".tsv"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" not in line:
                raise CaptionError(f"{p}:{n}: expected NAME<TAB>CAPTION, got {line[:60]!r}")
            name, caption = line.split("\t", 1)
            rows.append((name.strip(), caption, f"{p}:{n}"))
    elif suffix == ".csv":
        for n, row in enumerate(csv.DictReader(text.splitlines()), 2):
            rows.append((str(_pick(row, NAME_FIELDS) or ""), _pick(row, TEXT_FIELDS), f"{p}:{n}"))
    else:  # .json / .jsonl
        try:
            if suffix == ".json":
                data = json.loads(text)
                items = list(data.items()) if isinstance(data, dict) else None
                objects = data if isinstance(data, list) else []
            else:
                items, objects = None, [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise CaptionError(f"{p}: not valid JSON ({e})") from None
        if items is not None:
            rows = [(str(k), v, str(p)) for k, v in items]
        for n, obj in enumerate(objects, 1):
            if not isinstance(obj, dict):
                raise CaptionError(f"{p}: entry {n} is not an object")
            rows.append((str(_pick(obj, NAME_FIELDS) or ""), _pick(obj, TEXT_FIELDS), f"{p}: entry {n}"))
    out: dict[str, Caption] = {}
    for name, caption, where in rows:
        if not name:
            raise CaptionError(f"{where}: no image name ({' / '.join(NAME_FIELDS)})")
        clean = _clean(caption)
        if clean is not None:
            out[_norm(name)] = clean
    return out


def caption_from_name(name: str) -> str:
    """``"red_brick-house.jpg"`` -> ``"red brick house"`` (last suffix dropped; ``_``, ``-``, ``.`` are spaces)."""
    stem = PurePosixPath(name).stem
    return " ".join(stem.replace("_", " ").replace("-", " ").replace(".", " ").split())


class Captions:
    """Finds the caption of each sample (a file image or a WebDataset tar sample).

    Args:
        source: ``"sidecar"``, ``"filename"`` or a caption file path.

    Raises:
        CaptionError: a caption file that cannot be read.
    """

    def __init__(self, source: str = "sidecar") -> None:
        self.source = source
        self.table: dict[str, Caption] | None = None
        self.root: Path | None = None
        if source not in KINDS:
            self.table = read_caption_file(source)
            self.root = Path(source).resolve().parent
        self._tar_index: dict[str, dict[str, dict[str, Any]]] = {}

    def describe(self) -> str:
        """The source, for manifests and reports."""
        return self.source if self.table is None else f"file {Path(self.source).resolve()}"

    def for_file(self, path: Path) -> Caption | None:
        """The caption of an image file, or None."""
        if self.source == "sidecar":
            side = path.with_suffix(".txt")
            try:
                return _clean(side.read_text(encoding="utf-8-sig")) if side.is_file() else None
            except (OSError, UnicodeDecodeError):
                return None
        if self.source == "filename":
            return caption_from_name(path.name) or None
        names = []
        if self.root is not None:
            try:
                rel = path.resolve().relative_to(self.root)
                names += [rel.as_posix(), rel.with_suffix("").as_posix()]
            except ValueError:
                pass
        names += [path.name, path.stem, str(path)]
        return self._lookup(names)

    def for_tar(self, tar: str, key: str, member: str) -> Caption | None:
        """The caption of sample ``key`` (image member ``member``) of a WebDataset tar, or None."""
        if self.source == "filename":
            return caption_from_name(member) or None
        if self.source == "sidecar":
            members = self._members(tar).get(key, {})
            if "txt" in members:
                return _clean(read_member(tar, members["txt"]["offset"], members["txt"]["size"]).decode("utf-8",
                                                                                                         "replace"))
            if "json" in members:
                try:
                    obj = json.loads(read_member(tar, members["json"]["offset"], members["json"]["size"]))
                except (ValueError, UnicodeDecodeError):
                    return None
                return _clean(_pick(obj, TEXT_FIELDS)) if isinstance(obj, dict) else None
            return None
        return self._lookup([member, key, PurePosixPath(member).name, PurePosixPath(key).name])

    def _lookup(self, names: list[str]) -> Caption | None:
        assert self.table is not None
        for n in names:
            found = self.table.get(_norm(n))
            if found is not None:
                return found
        return None

    def _members(self, tar: str) -> dict[str, dict[str, Any]]:
        """key -> extension -> {offset, size} of one input tar (headers read once, on first use)."""
        if tar not in self._tar_index:
            try:
                samples = load_index(tar)
            except ShardError:
                samples = []
            self._tar_index = {tar: {s.key: {e: {"offset": m.offset, "size": m.size} for e, m in s.members.items()}
                                     for s in samples}}  # one tar at a time: shards are converted in order
        return self._tar_index[tar]
