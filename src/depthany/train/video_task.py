"""The pieces of ``task: video`` training (Video Depth Anything) that the training loop plugs in.

* :class:`ClipSource` (source kind ``video``): clips of ``data.clip_frames`` (<= 32) consecutive frames from RGB-D sequence
  folders (the ``rgbd-video`` layout that ``depthany synth --sequence-frames`` writes), every frame of a clip
  cropped, flipped and colour-augmented the same way;
* :func:`video_spec` / :func:`build_video_training_model`: the image model of ``model`` (initialised from
  ``model.init``, e.g. the bundled ``da2-mini``) turned into a video model whose temporal modules start as the
  identity (:func:`depthany.models.video_model_from_image`), the encoder frozen when ``video.freeze_encoder``
  (as the paper: only the head and its temporal modules learn);
* :class:`VideoObjective` (objective ``video``): the official loss,
  :func:`depthany.train.video_loss.video_depth_loss`, on disparity targets.

The loop's checkpoints, exact resume and DDP apply unchanged; ``final.safetensors`` carries a Video Depth Anything
spec, so ``depthany video --weights final.safetensors`` runs it (window or streaming mode).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import zoo
from ..data.rgbd import RGBDFolder
from ..models import DepthAnything, VideoDepthAnything, video_model_from_image
from ..models.vda import video_arch
from .augment import training_sample
from .build import build_model, recipe_spec
from .config import DataCfg, Recipe, RecipeError, SourceCfg
from .losses import depth_to_disparity
from .objectives import Objective


def _natural(stem: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem)]


def sequence_folders(root: str | Path) -> list[Path]:
    """``root`` itself when it is an RGB-D folder, else its sub-folders that are (natural name order)."""
    root = Path(root)
    if (root / "dataset.json").exists():
        return [root]
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / "dataset.json").exists()), key=lambda p: _natural(p.name))


class ClipSource:
    """Clips of T consecutive frames from RGB-D sequence folders (``path``: one sequence, or a folder of them).

    T is ``data.clip_frames`` (2..32, default 32: the temporal modules' positional table). Option: ``stride``
    (frames between clip starts, default 1). Every start ``0, stride, ...`` with a whole clip inside its sequence is one sample.
    A sample: ``image`` (T, 3, S, S) normalised, ``depth`` (T, S, S) metres, ``valid`` (T, S, S) bool; one crop,
    flip and colour draw for the whole clip (the frames share a size).
    """

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: zoo.Preprocess, key: str = "data.sources") -> None:
        unknown = sorted(set(cfg.options) - {"stride"})
        if unknown:
            raise RecipeError(f"{key}.options: the video source takes stride only, got {unknown}")
        self.frames = data.clip_frames
        stride = int(cfg.options.get("stride", 1))
        if stride < 1:
            raise RecipeError(f"{key}.options.stride: must be >= 1, got {stride}")
        folders = sequence_folders(cfg.path)
        if not folders:
            raise RecipeError(f"{key}.path: {cfg.path} holds no RGB-D sequence (a folder with dataset.json, or "
                              "folders of them, as depthany synth --sequence-frames writes)")
        self.sequences: list[RGBDFolder] = []
        self.clips: list[tuple[int, int]] = []  # (sequence, first frame)
        for folder in folders:
            try:
                seq = RGBDFolder(folder, cfg.split)
            except ValueError as e:
                raise RecipeError(f"{key}.path: {e}") from None
            seq.stems.sort(key=_natural)
            for start in range(0, len(seq) - self.frames + 1, stride):
                self.clips.append((len(self.sequences), start))
            self.sequences.append(seq)
        if not self.clips:
            raise RecipeError(f"{key}.path: no sequence under {cfg.path} has {self.frames} frames (data.clip_frames)")
        self.data, self.pre = data, pre

    def __len__(self) -> int:
        return len(self.clips)

    def load(self, index: int, rng: np.random.Generator) -> dict[str, Tensor]:
        s, start = self.clips[index]
        seq = self.sequences[s]
        seed = int(rng.integers(2**63))  # every frame replays the same draws: one crop for the clip
        out: list[dict[str, Tensor]] = []
        size = None
        for i in range(start, start + self.frames):
            f = seq[i]
            if size is not None and f.depth.shape != size:
                raise ValueError(f"{seq.root}: frame {f.stem} has another size than frame {seq.stems[start]}")
            size = f.depth.shape
            out.append(training_sample(f.rgb, f.depth, f.valid, self.data, self.pre, np.random.default_rng(seed)))
        return {k: torch.stack([o[k] for o in out]) for k in out[0]}


# ------------------------------------------------------------------------------------------------- network


def video_spec(recipe: Recipe) -> zoo.ModelSpec:
    """The spec of the video model a ``task: video`` recipe trains: the image spec of ``model`` with temporal
    modules, VDA's float32 resize and window schedule."""
    spec = recipe_spec(recipe)
    try:
        arch = video_arch(spec.arch)
    except ValueError as e:
        raise RecipeError(f"model.head: {e}") from None
    pre = dataclasses.replace(spec.preprocess, resize_dtype="float32")
    return dataclasses.replace(spec, arch=arch, preprocess=pre, video=zoo.VDA_WINDOWS,
                               description=spec.description.replace("trained with", "video model trained with"))


def build_video_training_model(recipe: Recipe, device: torch.device | str = "cpu") -> VideoDepthAnything:
    """The image model of ``model`` (``model.init`` / ``encoder_init`` loaded) as a video model, in train mode,
    its encoder frozen (``requires_grad`` False) when ``video.freeze_encoder``.

    Raises:
        RecipeError: init weights that are missing or do not fit, naming the key.
    """
    image = build_model(dataclasses.replace(recipe, task="depth"), recipe_spec(recipe), "cpu")
    assert isinstance(image, DepthAnything)
    video = video_model_from_image(image)
    if recipe.video.freeze_encoder:
        video.pretrained.requires_grad_(False)
    return video.to(device).train()


# ----------------------------------------------------------------------------------------------- objective


class VideoObjective(Objective):
    """The official Video Depth Anything loss on clips: ``image`` (B, T, 3, S, S), ``depth`` (B, T, S, S) metres,
    ``valid`` (B, T, S, S); the target is disparity 1 / depth on valid pixels. Logs ``spatial`` and ``stable``
    (the temporal term, already x ``video.stable_scale``)."""

    needs = ("image", "depth", "valid")

    def __init__(self, alpha: float, scales: int, stable_scale: float) -> None:
        self.alpha, self.scales, self.stable_scale = alpha, scales, stable_scale

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        from .video_loss import video_depth_loss

        if batch["image"].dim() != 5:
            raise RecipeError("loss.objective: 'video' needs clips (B, T, 3, S, S): data.sources of kind video")
        pred = model(batch["image"]).float()
        valid = batch["valid"]
        target = depth_to_disparity(batch["depth"], valid)
        terms = video_depth_loss(pred, target, valid, self.alpha, self.scales, stable_scale=self.stable_scale)
        return {"loss": terms.total, "spatial": terms.spatial.detach(), "stable": terms.stable.detach()}


def _video(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    if recipe.task != "video":
        raise RecipeError("loss.objective: 'video' needs task: video")
    v = recipe.video
    return VideoObjective(v.alpha, recipe.loss.gm_scales, v.stable_scale)
