"""Turn what a user typed (files, folders, globs, ``.txt`` lists) into image files and collision-free output
names.

Rules:

* a **folder** is searched recursively for files with an image suffix (:data:`IMAGE_SUFFIXES`, any case);
  hidden files and folders (name starting with ``.``) are skipped; outputs mirror the sub-folders;
* a **glob** (``photos/**/*.jpg``; ``**`` recurses) keeps the folders below its fixed prefix;
* a **``.txt`` list** holds one path per line, relative to the list file (absolute paths and ``~`` work);
  blank lines and lines starting with ``#`` are ignored; entries may be files or folders;
* any other **file** is taken as an image whatever its suffix (reading it says if it is not one).

Each image gets a ``key``: its path relative to the folder / glob prefix / list folder, without suffix
(``a/x`` for ``photos/a/x.jpg``), under which the outputs are written. When two inputs would get the same key
(same stem with different suffixes, or equal names from different arguments), those inputs are renamed:
first by keeping the suffix (``x.jpg``, ``x.png``), then by their path relative to their common folder, and
as a last resort with a number (``x_2``). Case is ignored when comparing, so outputs are distinct on
case-insensitive file systems too. A file named twice is processed once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .image import IMAGE_SUFFIXES

LIST_SUFFIX = ".txt"
_MAGIC = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One image to process.

    Attributes:
        path: the image file.
        key: output name relative to the output folder, without suffix (``a/x``).
        origin: the argument (or ``list.txt:LINE``) it came from.
    """

    path: Path
    key: PurePosixPath
    origin: str


@dataclass(frozen=True)
class InputProblem:
    """An argument or list entry that yields no image: what it was and why."""

    target: str
    reason: str


@dataclass
class ExpandedInputs:
    """The images found (in argument order, sorted within folders and globs) and the problems met."""

    items: list[InputItem] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


def is_image_name(path: Path) -> bool:
    """Whether ``path`` has an image suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames)
                     if not f.startswith(".") and is_image_name(Path(f)))
    return found


def _glob_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard (``photos/2024`` for ``photos/2024/*/x.jpg``)."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _MAGIC & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _relative_key(path: Path, root: Path | None) -> PurePosixPath:
    rel: Path | None = None
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = None
    if rel is None or not rel.parts:
        rel = Path(path.name)
    return PurePosixPath(*rel.parts).with_suffix("")


class _Collector:
    def __init__(self, exclude: Iterable[Path]) -> None:
        self.out = ExpandedInputs()
        self.seen: set[Path] = set()
        self.exclude = [Path(e).resolve() for e in exclude]

    def add(self, path: Path, root: Path | None, origin: str) -> None:
        real = path.resolve()
        if real in self.seen or any(real.is_relative_to(e) for e in self.exclude):
            return
        self.seen.add(real)
        self.out.items.append(InputItem(path, _relative_key(path, root), origin))

    def problem(self, target: str, reason: str) -> None:
        self.out.problems.append(InputProblem(target, reason))

    def folder(self, folder: Path, root: Path, origin: str) -> None:
        files = _walk(folder)
        if not files:
            self.problem(origin, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        for f in files:
            self.add(f, root, origin)

    def list_file(self, listing: Path) -> None:
        try:
            lines = listing.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            self.problem(str(listing), f"cannot read the list file ({e})")
            return
        base = listing.parent
        for n, line in enumerate(lines, 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            origin = f"{listing}:{n}"
            p = Path(entry).expanduser()
            p = p if p.is_absolute() else base / p
            if p.is_dir():
                self.folder(p, base, origin)
            elif p.is_file():
                if p.suffix.lower() == LIST_SUFFIX:
                    self.problem(origin, f"{entry}: lists inside lists are not supported")
                else:
                    self.add(p, base, origin)
            else:
                self.problem(origin, f"{entry}: no such file or folder (relative to {base})")

    def argument(self, arg: str | Path) -> None:
        text = str(arg)
        p = Path(text).expanduser()
        if p.is_dir():
            self.folder(p, p, text)
        elif p.is_file():
            if p.suffix.lower() == LIST_SUFFIX:
                self.list_file(p)
            else:
                self.add(p, p.parent, text)
        elif _MAGIC & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            root = _glob_root(os.path.expanduser(text))
            files = [Path(m) for m in matches if Path(m).is_file() and is_image_name(Path(m))]
            for d in (Path(m) for m in matches if Path(m).is_dir()):
                files.extend(_walk(d))
            if not files:
                self.problem(text, "no image files match this pattern")
            for f in files:
                self.add(f, root, text)
        else:
            self.problem(text, "no such file or folder")


def _common_folder(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))


def _deduplicate(items: list[InputItem]) -> list[InputItem]:
    """Give inputs that share a key (ignoring case) distinct keys; see the module docstring."""
    keys = [it.key for it in items]

    def clashes() -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(str(k).casefold(), []).append(i)
        return {k: g for k, g in groups.items() if len(g) > 1}

    for group in clashes().values():  # step 1: same folder, different suffix -> keep the suffix
        for i in group:
            keys[i] = keys[i].with_name(items[i].path.name)
    for group in clashes().values():  # step 2: from different arguments -> path below their common folder
        common = _common_folder([items[i].path for i in group])
        for i in group:
            rel = items[i].path.resolve().relative_to(common)
            keys[i] = PurePosixPath(*rel.parts).with_suffix("")
        if len({str(keys[i]).casefold() for i in group}) < len(group):
            for i in group:
                keys[i] = keys[i].with_name(items[i].path.name)
    taken = {str(k).casefold() for k in keys}
    for group in clashes().values():  # step 3: number the rest
        for n, i in enumerate(group[1:], 2):
            while f"{keys[i]}_{n}".casefold() in taken:
                n += 1
            keys[i] = keys[i].with_name(f"{keys[i].name}_{n}")
            taken.add(str(keys[i]).casefold())
    return [InputItem(it.path, k, it.origin) for it, k in zip(items, keys)]


def expand_inputs(args: Sequence[str | Path], exclude: Iterable[str | Path] = ()) -> ExpandedInputs:
    """Expand files, folders, globs and ``.txt`` lists into images with distinct output keys.

    Args:
        args: what the user typed, in order.
        exclude: folders whose files are never inputs (the output folder, so a second run does not read
            its own pictures).

    Returns:
        the images (first occurrence of each file) and the arguments or list entries that gave none.
    """
    collector = _Collector(Path(e) for e in exclude)
    for arg in args:
        collector.argument(arg)
    out = collector.out
    out.items = _deduplicate(out.items)
    return out
