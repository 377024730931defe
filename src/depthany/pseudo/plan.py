"""What to label: inputs -> input shards -> one output shard each, and the manifest that pins them.

Inputs are WebDataset tar shards (``shards/train-000123.tar``, globs such as ``shards/*.tar`` and brace ranges
``shards/train-{000000..000099}.tar``) and image files (folders, globs, ``.txt`` lists, files; the rules of
:func:`depthany.io.inputs.expand_inputs`). Each tar shard is one unit of work and keeps its base name; image
files are cut, in input order, into *file shards* of ``shard_size`` images named ``files-000000`` ... Output
``OUT/<name>.tar`` holds the labels of input shard ``<name>``.

``OUT/manifest.json`` records the teacher, the input size and every shard with its source. A rerun must
describe the same work (same teacher, size and shards) or it is refused: mixing two teachers, or shifting
file shards after a folder changed, would break "every image labelled exactly once".
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..io.inputs import expand_inputs
from .shards import stale_temps

MANIFEST = "manifest.json"
FORMAT = "depthany-pseudo-labels"
VERSION = 1
FILE_SHARD_PREFIX = "files-"
_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")


class PlanError(ValueError):
    """The inputs or the output folder do not make a valid labelling job; the message says which."""


@dataclass(frozen=True)
class InputShard:
    """One unit of work.

    Attributes:
        name: output base name (``OUT/<name>.tar``).
        tar: the input tar shard, or None for a file shard.
        files: (key, image path) pairs of a file shard; empty for a tar shard.
    """

    name: str
    tar: Path | None = None
    files: tuple[tuple[str, Path], ...] = ()

    def source(self) -> dict[str, Any]:
        """JSON description for the manifest (tar path; or file count and a digest of keys and paths)."""
        if self.tar is not None:
            return {"type": "tar", "path": str(self.tar)}
        h = hashlib.sha256()
        for key, path in self.files:
            h.update(f"{key}\0{path}\n".encode())
        return {"type": "files", "count": len(self.files), "sha256": h.hexdigest()}


def expand_braces(pattern: str) -> list[str]:
    """Expand numeric ranges ``{000..012}`` (zero padding kept, several allowed) as WebDataset URLs do."""
    m = _BRACE.search(pattern)
    if m is None:
        return [pattern]
    a, b = m.group(1), m.group(2)
    width = len(a) if a.startswith("0") or len(a) == len(b) else 0
    lo, hi = int(a), int(b)
    if hi < lo:
        raise PlanError(f"{pattern}: empty range {{{a}..{b}}}")
    out: list[str] = []
    for i in range(lo, hi + 1):
        out += expand_braces(pattern[:m.start()] + f"{i:0{width}d}" + pattern[m.end():])
    return out


def _is_tar_arg(arg: str) -> bool:
    return arg.endswith(".tar") or ".tar}" in arg


def _sample_key(key: PurePosixPath) -> str:
    """A WebDataset-safe key for an image file: no dots in the name (they would split key and extension)."""
    return str(key.with_name(key.name.replace(".", "_")))


def plan_shards(inputs: list[str] | tuple[str, ...], shard_size: int = 1000,
                exclude: tuple[Path, ...] = ()) -> list[InputShard]:
    """Turn command-line inputs into input shards (tar shards first in argument order, then file shards).

    Args:
        inputs: tar shards / tar globs / brace ranges, and image files, folders, globs or ``.txt`` lists.
        shard_size: images per file shard.
        exclude: folders never read as image inputs (the output folder).

    Raises:
        PlanError: no inputs found, an input that yields nothing, a missing tar, or two shards that would
            write the same output name.
    """
    if shard_size < 1:
        raise PlanError(f"shard_size must be >= 1, got {shard_size}")
    tars: list[Path] = []
    image_args: list[str] = []
    for arg in map(str, inputs):
        if not _is_tar_arg(arg):
            image_args.append(arg)
            continue
        found: list[str] = []
        for pat in expand_braces(arg):
            found += sorted(glob.glob(pat, recursive=True)) if glob.has_magic(pat) else [pat]
        if not found:
            raise PlanError(f"{arg}: matches no tar shard")
        for f in found:
            if not Path(f).is_file():
                raise PlanError(f"{f}: no such tar shard")
            tars.append(Path(f))
    shards = [InputShard(p.name[: -len(".tar")], tar=p) for p in dict.fromkeys(tars)]
    if image_args:
        expanded = expand_inputs(image_args, exclude=exclude)
        if expanded.problems:
            pr = expanded.problems[0]
            raise PlanError(f"{pr.target}: {pr.reason}")
        items = [(_sample_key(it.key), it.path) for it in expanded.items]
        seen: dict[str, int] = {}
        unique = []
        for key, path in items:  # replacing dots can make two keys equal: number the later ones
            n = seen.get(key.casefold(), 0)
            seen[key.casefold()] = n + 1
            unique.append((key if n == 0 else f"{key}_{n + 1}", path))
        for i in range(0, len(unique), shard_size):
            shards.append(InputShard(f"{FILE_SHARD_PREFIX}{i // shard_size:06d}",
                                     files=tuple(unique[i:i + shard_size])))
    if not shards:
        raise PlanError("no inputs: give tar shards, image folders, globs, files or .txt lists")
    names: dict[str, InputShard] = {}
    for s in shards:
        other = names.get(s.name)
        if other is not None:
            raise PlanError(f"two input shards would both write {s.name}.tar: {other.source()['path']!s} and "
                            f"{s.source().get('path', 'image files')}; rename one")
        names[s.name] = s
    return shards


def assign(shards: list[InputShard], rank: int, world: int) -> list[InputShard]:
    """The shards process ``rank`` of ``world`` labels: ``shards[rank::world]`` (disjoint, covering all)."""
    return shards[rank::world]


def output_path(out: Path, shard: InputShard) -> Path:
    """Where the labels of ``shard`` go."""
    return out / f"{shard.name}.tar"


def is_finished(out: Path, shard: InputShard) -> bool:
    """A shard is finished when its output tar exists: writers rename only complete files into place."""
    return output_path(out, shard).is_file()


def remove_partial(out: Path, shard: InputShard) -> int:
    """Delete temporary files a killed run left for ``shard``; returns how many. Never touches finished ones."""
    stale = stale_temps(output_path(out, shard))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def manifest_dict(shards: list[InputShard], teacher: str, weights: str | None, input_size: int,
                  max_tokens: int | None = None) -> dict[str, Any]:
    """The manifest content for a job (``max_tokens``: the network-input budget, when known)."""
    out = {"format": FORMAT, "version": VERSION, "teacher": teacher, "weights": weights,
           "input_size": input_size, "shards": [{"name": s.name, "source": s.source()} for s in shards]}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    return out


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of an output folder, or None when there is none yet.

    Raises:
        PlanError: the file exists but is not a depthany pseudo-label manifest.
    """
    p = Path(out) / MANIFEST
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PlanError(f"{p}: unreadable manifest ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanError(f"{p}: not a depthany pseudo-label manifest")
    return data


def check_manifest(stored: dict[str, Any], wanted: dict[str, Any], out: Path) -> None:
    """Refuse to continue a job whose teacher, input size, input budget or shards differ from the stored
    manifest (folders started before the budget was recorded are not checked for it).

    Raises:
        PlanError: naming the first difference and the folder.
    """
    keys = ["teacher", "input_size"] + (["max_tokens"] if "max_tokens" in stored and "max_tokens" in wanted else [])
    for k in keys:
        if stored.get(k) != wanted[k]:
            raise PlanError(f"{out}: labelled with {k} {stored.get(k)!r}, this run asks for {wanted[k]!r}; "
                            "use another --out folder (labels from two settings must not mix)")
    a = {s["name"]: s["source"] for s in stored.get("shards", [])}
    b = {s["name"]: s["source"] for s in wanted["shards"]}
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            raise PlanError(f"{out}: shard {name} was {a.get(name)} when this folder was started, now "
                            f"{b.get(name)}; the inputs changed, so use another --out folder")
