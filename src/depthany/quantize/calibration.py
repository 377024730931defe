"""The user's images for post-training quantisation: which calibrate, which are held out for the gate, and how
each becomes a network input.

Calibration images set the int8 ranges; held-out images measure the result and must not be among them (a gate
measured on the calibration set would flatter the model). Without explicit held-out images, every k-th image
of the list is held out (deterministic, spread over the list) and the rest calibrate. Images are decoded and
preprocessed exactly as :class:`~depthany.predictor.DepthPredictor` does (the model's
:class:`~depthany.inference.InferencePipeline`, under the network-input budget), one at a time and again on each
pass, so memory stays at one image whatever the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..inference import InferencePipeline
from ..io.image import as_rgb

# NNCF's own default is 300. On a 2-core CPU statistics collection for a ViT-S at 518x518 costs ~1 s per
# image per pass, and the gate measured on our trained models moved by less than 0.1 % AbsRel between 64 and
# 128 images (docs/performance.md), so 128 is the default.
DEFAULT_CALIBRATION = 128
DEFAULT_HOLDOUT = 16  # at most this many held-out images taken from the calibration list
MIN_CALIBRATION = 1


@dataclass(frozen=True)
class ImageSets:
    """Calibration and held-out image files (disjoint)."""

    calibration: tuple[Path, ...]
    holdout: tuple[Path, ...]


def split_images(images: Sequence[Path], holdout: Sequence[Path] | None = None, count: int = DEFAULT_CALIBRATION,
                 holdout_count: int = DEFAULT_HOLDOUT) -> ImageSets:
    """Choose calibration and held-out images.

    Args:
        images: the calibration candidates, in the user's order (duplicates are dropped).
        holdout: explicit held-out images; None holds out ``holdout_count`` of ``images`` (every k-th one,
            at most a fifth of them, at least one).
        count: calibration images used at most (spread evenly over what is left).
        holdout_count: held-out images at most.

    Raises:
        ValueError: too few images, or a held-out image that is also a calibration image.
    """
    if count < MIN_CALIBRATION:
        raise ValueError(f"calibration count must be >= {MIN_CALIBRATION}, got {count}")
    if holdout_count < 1:
        raise ValueError(f"held-out count must be >= 1, got {holdout_count}")
    cands = list(dict.fromkeys(Path(p) for p in images))
    if holdout is not None:
        held = list(dict.fromkeys(Path(p) for p in holdout))
        same = {p.resolve() for p in cands} & {p.resolve() for p in held}
        if same:
            raise ValueError(f"held-out images must not be calibration images; both: {sorted(map(str, same))[:3]}")
        held = _spread(held, holdout_count)
    else:
        if len(cands) < 2:
            raise ValueError(f"need at least 2 images (calibration + held-out) without --holdout, got {len(cands)}")
        n_held = max(1, min(holdout_count, len(cands) // 5))
        step = len(cands) / n_held
        picks = {int(step * i + step / 2) for i in range(n_held)}
        held = [p for i, p in enumerate(cands) if i in picks]
        cands = [p for i, p in enumerate(cands) if i not in picks]
    if not cands:
        raise ValueError("no calibration images")
    if not held:
        raise ValueError("no held-out images")
    return ImageSets(tuple(_spread(cands, count)), tuple(held))


def _spread(items: list[Path], n: int) -> list[Path]:
    """``n`` items spread evenly over ``items`` (all of them if there are at most ``n``)."""
    if len(items) <= n:
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx.tolist())]


def readable(paths: Sequence[Path], progress: Callable[[Sequence[Path]], Iterable[Path]] | None = None
             ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Split ``paths`` into images that decode and (path, reason) for those that do not (reported, skipped)."""
    ok, bad = [], []
    for p in progress(paths) if progress is not None else paths:
        try:
            as_rgb(p)
        except (ValueError, OSError) as e:  # ImageReadError is a ValueError
            bad.append((str(p), str(e)))
            continue
        ok.append(p)
    return ok, bad


def network_input(pipeline: InferencePipeline, path: Path) -> np.ndarray:
    """One image file -> (1, 3, h, w) float32 network input, as the predictor prepares it."""
    return pipeline.prepare(as_rgb(path).rgb).x.numpy()
