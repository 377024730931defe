"""Data sources for the student stage: labeled RGB-D folders and pseudo-labeled image collections.

Both give every sample the same keys (a batch mixes them), the *student sample*:

* ``image`` (3, S, S) normalised network input (perturbed and possibly CutMix-ed for pseudo-labeled samples);
* ``target`` (S, S) disparity label: 1 / depth for labeled samples, the teacher's output for pseudo-labeled;
* ``target_mix`` (S, S) teacher disparity of the image pasted by CutMix (zeros without CutMix);
* ``box`` (S, S) bool, the pasted region (all False without CutMix);
* ``valid`` (S, S) bool, where the label holds (pseudo-labels: everywhere);
* ``pseudo`` () bool, True for pseudo-labeled samples.

Kinds (``data.sources.N.kind``): ``labeled`` (an RGB-D folder, no options) and ``pseudo`` (a
``depthany pseudo-label`` output folder; options in :class:`PseudoOptions`). Crops and flips follow ``data``
exactly as for the teacher; strong perturbations and CutMix touch pseudo-labeled samples only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..io.image import ImageReadError, read_image
from ..pseudo.labels import LabelError, LabelFolder
from ..transforms import normalize_image
from ..zoo import Preprocess
from .augment import apply_crop, sample_crop
from .config import DataCfg, RecipeError, SourceCfg
from .cutmix import CutMixCfg, box_mask, check_cutmix, paste, sample_box
from .data import Batch, RGBDSource
from .losses import depth_to_disparity
from .perturb import PerturbCfg, check_perturb, strong_perturb
from .strict import FieldError, from_dict

STUDENT_KEYS = ("image", "target", "target_mix", "box", "valid", "pseudo")


@dataclass(frozen=True)
class PseudoOptions:
    """Options of a ``pseudo`` source (``data.sources.N.options``).

    Attributes:
        perturb: ``strong`` (colour jitter, grayscale, blur; :class:`~depthany.train.perturb.PerturbCfg`) or
            ``none``.
        strong: the strong perturbation's parameters.
        cutmix: CutMix parameters; ``cutmix.p: 0`` turns it off.
        allow_partial: train on an unfinished labelling job (missing shards skipped).
    """

    perturb: Literal["strong", "none"] = "strong"
    strong: PerturbCfg = field(default_factory=PerturbCfg)
    cutmix: CutMixCfg = field(default_factory=CutMixCfg)
    allow_partial: bool = False


def parse_pseudo_options(options: dict[str, object], key: str) -> PseudoOptions:
    """Strictly parse and range-check ``options`` (errors name ``key.options.<field>``).

    Raises:
        RecipeError: unknown keys, wrong types or out-of-range values.
    """
    try:
        opts: PseudoOptions = from_dict(PseudoOptions, options, f"{key}.options.")
    except FieldError as e:
        raise RecipeError(f"{e.key}: {e.message}") from None
    problems = [(f"strong.{k}", m) for k, m in check_perturb(opts.strong)]
    problems += [(f"cutmix.{k}", m) for k, m in check_cutmix(opts.cutmix)]
    if problems:
        k, m = problems[0]
        raise RecipeError(f"{key}.options.{k}: {m}")
    return opts


def student_sample(image: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, pseudo: bool,
                   target_mix: torch.Tensor | None = None, box: torch.Tensor | None = None) -> Batch:
    """Assemble a student sample (see the module docstring); ``image`` is already normalised."""
    return {"image": image, "target": target,
            "target_mix": target_mix if target_mix is not None else torch.zeros_like(target),
            "box": box if box is not None else torch.zeros_like(valid),
            "valid": valid, "pseudo": torch.tensor(pseudo)}


class LabeledSource:
    """An RGB-D folder in the student format: ``target = 1 / depth`` on valid pixels; never perturbed."""

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        if cfg.options:
            raise RecipeError(f"{key}.options: a labeled source takes no options (perturbations apply to "
                              f"pseudo-labeled data only), got {sorted(cfg.options)}")
        self.inner = RGBDSource(dataclasses.replace(cfg, kind="rgbd"), data, pre, key)

    def __len__(self) -> int:
        return len(self.inner)

    def load(self, index: int, rng: np.random.Generator) -> Batch:
        s = self.inner.load(index, rng)
        disp = depth_to_disparity(s["depth"][None], s["valid"][None])[0]
        return student_sample(s["image"], disp, s["valid"], pseudo=False)


class PseudoSource:
    """A pseudo-label folder: images (read where the labels say) with the teacher's disparity as target.

    Per draw: random crop and flip of image and label together (the label, stored at the teacher's network
    resolution, is resampled nearest-neighbour onto the crop), then the strong perturbation of the image; with
    probability ``cutmix.p`` a second sample of this source (drawn by the same generator) is cropped and
    perturbed the same way and pasted inside a random box.
    """

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        self.opts = parse_pseudo_options(cfg.options, key)
        try:
            self.labels = LabelFolder(cfg.path, allow_partial=self.opts.allow_partial)
        except LabelError as e:
            raise RecipeError(f"{key}.path: {e}") from None
        if len(self.labels) == 0:
            raise RecipeError(f"{key}.path: {cfg.path} holds no labelled images")
        self.data, self.pre = data, pre

    def __len__(self) -> int:
        return len(self.labels)

    def _view(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One cropped, flipped and perturbed image in [0, 1] (3, S, S), its label (S, S) and validity (S, S)."""
        meta = self.labels.meta(index)
        disp = self.labels.disparity(index, meta)
        try:
            rgb = read_image(self.labels.image_bytes(index, meta)).rgb
        except (ImageReadError, LabelError) as e:
            raise LabelError(f"{self.labels.root}: sample {meta.get('key')!r}: {e}") from None
        if list(rgb.shape[:2]) != list(meta["image_size"]):
            raise LabelError(f"{self.labels.root}: sample {meta.get('key')!r}: the image is {rgb.shape[:2]} but was "
                             f"{meta['image_size']} when labelled; it changed, relabel it")
        h, w = rgb.shape[:2]
        p = sample_crop(h, w, self.data.crop_size, self.data.scale, self.data.hflip, rng)
        img, d, v = apply_crop(rgb, disp, np.ones(disp.shape, dtype=bool), p)
        if self.opts.perturb == "strong":
            img = strong_perturb(img, self.opts.strong, rng)
        return img, d, v

    def load(self, index: int, rng: np.random.Generator) -> Batch:
        img, target, valid = self._view(index, rng)
        target_mix = box = None
        if rng.random() < self.opts.cutmix.p:
            other = int(rng.integers(0, len(self)))
            img_b, target_mix, valid_b = self._view(other, rng)
            s = img.shape[-1]
            box = box_mask(s, s, sample_box(s, s, self.opts.cutmix, rng))
            img = paste(img, img_b, box)
            valid = paste(valid, valid_b, box)
        image = normalize_image(img, self.pre.mean, self.pre.std)
        return student_sample(image, target, valid, True, target_mix, box)
