"""Write synthetic samples into a depthany RGB-D folder: deterministic, parallel and resumable.

Sample ``i`` of a run is rendered from the generator seeded with (seed, i) and stored under the stem
``f"{i:07d}"``, so the folder's content does not depend on the number of worker processes or on the
order in which samples finish. ``RGBDWriter`` writes a sample's rgb, depth and mask files first and its
``meta/<stem>.json`` last; a sample counts as done only when that JSON parses, so a run that is killed
and restarted re-renders at most the samples that were in flight and never touches finished ones.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..data.rgbd import RGBDSample, RGBDWriter, png16_scale_for
from ..io.atomic import write_text_atomic
from .labels import SEMANTIC_VERSION, SYNTH_CLASSES
from .render import Rendering, render
from .scene import Scene
from .worlds import GENERATOR_VERSION, WorldConfig, make_scene

DEPTH_FORMATS = ("png16", "npy")
STEM_DIGITS = 7
# dataset.json keys that must match when a run resumes into an existing folder.
_RUN_KEYS = ("generator", "generator_version", "seed", "width", "height", "kind", "textures", "max_depth",
             "indoor_fraction", "clean", "val_fraction", "depth_encoding", "png16_scale", "semantic")


def semantic_info() -> dict[str, Any]:
    """``dataset.json["semantic"]``: the class table of ``labels/`` and its version."""
    return {**SYNTH_CLASSES.to_dict(), "version": SEMANTIC_VERSION}


def stem_for(index: int) -> str:
    """File stem of sample ``index``: zero-padded so that names sort in index order."""
    return f"{index:0{STEM_DIGITS}d}"


def is_val(index: int, val_fraction: float) -> bool:
    """Whether sample ``index`` belongs to the validation split.

    Every ``1/val_fraction``-th sample is validation (exactly floor(N * val_fraction) of the first N), so a
    sample's split never changes when a run is extended to a larger count.
    """
    f = Fraction(val_fraction).limit_denominator(1_000_000)
    return (index + 1) * f.numerator // f.denominator > index * f.numerator // f.denominator


def render_sample(seed: int, index: int, config: WorldConfig) -> tuple[Rendering, Scene]:
    """Render sample ``index`` of a run with ``seed``; a pure function of its arguments."""
    scene = make_scene(seed, index, config)
    return render(scene), scene


def sample_meta(view: Rendering, scene: Scene, split: str | None) -> dict[str, Any]:
    """The per-sample JSON (``intrinsics`` is added by the writer)."""
    finite = np.isfinite(view.depth)
    meta: dict[str, Any] = {"kind": scene.info.get("kind"), "sky_fraction": float(1 - finite.mean()),
                            "beyond_max_depth_fraction": float((finite & ~view.valid).mean()),
                            "scene": scene.to_dict()}
    if split is not None:
        meta["split"] = split
    return meta


def iter_samples(indices: Iterable[int], config: WorldConfig | None = None, seed: int = 0,
                 val_fraction: float = 0.0) -> Iterator[RGBDSample]:
    """Render samples on the fly, as the same ``RGBDSample`` objects an npy folder would read back.

    For training on endless fresh data without a folder: ``iter_samples(itertools.count(), cfg, seed=1)``.
    Each sample has ``depth`` (H, W) float32 metres with 0 where invalid, ``valid``, ``intrinsics``, the
    stem ``stem_for(i)``, ``meta`` as written to ``meta/<stem>.json`` (without ``intrinsics``) and ``labels``
    (H, W) uint8 semantic classes (:data:`~depthany.synth.labels.SYNTH_CLASSES`).
    """
    config = config or WorldConfig()
    for index in indices:
        view, scene = render_sample(seed, index, config)
        split = ("val" if is_val(index, val_fraction) else "train") if val_fraction > 0 else None
        depth = np.where(view.valid, view.depth, 0).astype(np.float32)
        yield RGBDSample(view.rgb, depth, view.valid.copy(), view.intrinsics, stem_for(index),
                         sample_meta(view, scene, split), view.labels)


def is_complete(root: str | Path, index: int) -> bool:
    """True when sample ``index`` in ``root`` has its rgb, depth and label files and a readable meta JSON."""
    root, stem = Path(root), stem_for(index)
    try:
        meta = json.loads((root / "meta" / f"{stem}.json").read_text())
    except (OSError, ValueError):
        return False
    has_depth = (root / "depth" / f"{stem}.png").exists() or (root / "depth" / f"{stem}.npy").exists()
    return (isinstance(meta, dict) and "scene" in meta and has_depth and (root / "rgb" / f"{stem}.png").exists()
            and (root / "labels" / f"{stem}.png").exists())


@dataclass
class GenerateReport:
    """What a :func:`generate` call did."""

    root: Path
    count: int
    rendered: int
    skipped: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else float("nan")


# --- worker side -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(root: str, config: WorldConfig, seed: int, depth_format: str, scale: float,
                 val_fraction: float) -> None:
    _WORKER.update(writer=RGBDWriter(root, depth_format, scale), config=config, seed=seed,
                   val_fraction=val_fraction)


def _make_one(index: int) -> int:
    w = _WORKER
    view, scene = render_sample(w["seed"], index, w["config"])
    split = ("val" if is_val(index, w["val_fraction"]) else "train") if w["val_fraction"] > 0 else None
    w["writer"].write(stem_for(index), view.rgb, view.depth, view.valid, view.intrinsics,
                      sample_meta(view, scene, split), view.labels)
    return index


# --- driver ------------------------------------------------------------------------------------------


def _run_info(config: WorldConfig, seed: int, depth_format: str, scale: float, val_fraction: float,
              count: int) -> dict[str, Any]:
    return {"generator": "depthany.synth", "generator_version": GENERATOR_VERSION, "seed": seed,
            "width": config.width, "height": config.height, "kind": config.kind,
            "textures": list(config.families), "max_depth": config.depth_limit,
            "indoor_fraction": config.indoor_fraction, "clean": config.clean, "val_fraction": val_fraction,
            "depth_encoding": depth_format, "png16_scale": scale, "semantic": semantic_info(), "count": count}


def _check_resume(root: Path, info: dict[str, Any]) -> None:
    path = root / "dataset.json"
    if not path.exists():
        if root.exists() and any((root / sub).is_dir() and any((root / sub).iterdir()) for sub in ("rgb", "meta")):
            raise ValueError(f"{root}: holds samples but no dataset.json; refusing to mix runs (pick another --out)")
        return
    try:
        old = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: unreadable ({e}); it records the run's settings, so this folder cannot be "
                         "resumed safely; pick another --out") from e
    if old.get("generator") != "depthany.synth":
        raise ValueError(f"{root}: is not a depthany synth folder ({path} has generator "
                         f"{old.get('generator')!r}); pick another --out")
    diff = [f"{k}: folder has {_short(k, old.get(k))}, this run {_short(k, info[k])}" for k in _RUN_KEYS
            if old.get(k) != info[k]]
    if diff:
        raise ValueError(f"{root}: was generated with different settings, cannot resume into it ("
                         + "; ".join(diff) + "); pick another --out or repeat the original options")


def _short(key: str, value: Any) -> str:
    """A run setting for an error message; class tables are summarised (folders made before labels have none)."""
    if key != "semantic":
        return repr(value)
    if isinstance(value, dict) and "classes" in value:
        return f"a {len(value['classes'])}-class table (version {value.get('version')})"
    return "no semantic labels"


def _write_splits(root: Path, count: int, val_fraction: float) -> None:
    (root / "splits").mkdir(exist_ok=True)
    val = [stem_for(i) for i in range(count) if is_val(i, val_fraction)]
    train = [stem_for(i) for i in range(count) if not is_val(i, val_fraction)]
    for name, stems in (("train", train), ("val", val)):
        write_text_atomic(root / "splits" / f"{name}.txt", "".join(s + "\n" for s in stems))


def generate(out: str | Path, count: int, config: WorldConfig | None = None, seed: int = 0, workers: int = 1,
             depth_format: str = "png16", val_fraction: float = 0.0, progress: bool = False) -> GenerateReport:
    """Render samples 0..count-1 into the RGB-D folder ``out``, skipping those already complete.

    Args:
        out: destination folder (created if needed). Re-running with the same options resumes; a larger
            ``count`` extends the dataset; different options raise ValueError.
        count: number of samples.
        config: what to render (size, kind, texture families, max depth); default ``WorldConfig()``.
        seed: run seed; sample i is a pure function of (seed, i, config).
        workers: processes rendering in parallel (1 = in this process). Workers are *spawned*, so a script
            calling this with workers > 1 must do so under ``if __name__ == "__main__":``.
        depth_format: "png16" (uint16, ``png16_scale`` units per metre, from ``max_depth``) or "npy"
            (float32 metres).
        val_fraction: share of samples listed in ``splits/val.txt`` (the rest in ``splits/train.txt``);
            0 writes no split files.
        progress: show a tqdm progress bar on stderr.

    Returns:
        A :class:`GenerateReport`.

    Raises:
        ValueError: naming a bad argument or a folder generated with other settings.
    """
    config = config or WorldConfig()
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth_format must be one of {', '.join(DEPTH_FORMATS)}, got {depth_format!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    root = Path(out)
    scale = png16_scale_for(config.depth_limit)
    info = _run_info(config, seed, depth_format, scale, val_fraction, count)
    _check_resume(root, info)
    writer = RGBDWriter(root, depth_format, scale, info=info)
    writer.close()  # dataset.json first: an interrupted folder is still recognisable and resumable
    todo = [i for i in range(count) if not is_complete(root, i)]
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm  # type: ignore[import-untyped]

        bar = tqdm(total=count, initial=count - len(todo), unit="img", desc=f"synth {root.name}")
    args = (str(root), config, seed, depth_format, scale, val_fraction)
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(*args)
            for i in todo:
                _make_one(i)
                if bar is not None:
                    bar.update(1)
        else:
            # spawn: workers start clean (no inherited threads or locks from a parent that imported torch).
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_init_worker, initargs=args) as pool:
                for _ in pool.imap_unordered(_make_one, todo, chunksize=1):
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    if val_fraction > 0:
        _write_splits(root, count, val_fraction)
    writer.close()
    return GenerateReport(root, count, len(todo), count - len(todo), seconds)
