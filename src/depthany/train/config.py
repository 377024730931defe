"""Training recipes: YAML files loaded into typed, frozen dataclasses.

A recipe says *what* to train (model, initialisation), *on what* (RGB-D folders mixed by weight, crop size,
validation folder), *how* (optimiser, schedule, loss weights, batch, precision) and *how often* to log,
validate and checkpoint. Every field is documented in ``docs/training.md``.

Loading is strict: an unknown or mistyped key, or a value of the wrong type, raises :class:`RecipeError`
naming the dotted key and the YAML file (or the ``--set`` override it came from). Relative paths inside a
recipe are taken relative to the current directory, like command-line arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..seg.spec import InferenceCfg, Mask2FormerCfg
from ..zoo import PATCH_SIZE, ZoeConfig
from .strict import FieldError, RecipeError, apply_override, from_dict, parse_override, to_plain

__all__ = ["RecipeError", "apply_override", "parse_override"]  # re-exported: the CLI and extensions use them

Precision = Literal["fp32", "bf16"]
HeadName = Literal["relative", "metric", "zoedepth"]
ScheduleKind = Literal["linear", "poly", "constant", "mmseg", "onecycle"]
Task = Literal["depth", "semseg", "video"]
SegHeadName = Literal["linear", "mask2former"]
SEG_SOURCE_KINDS = ("semseg", "cityscapes", "ade20k")  # depthany.train.seg_sources
DEPTH_OBJECTIVES = ("relative", "metric", "student")  # objectives that train depth heads


@dataclass(frozen=True)
class CustomArch:
    """Explicit network sizes for models outside the zoo (tiny CI and test models).

    The encoder is a DINOv2 ViT of ``depth`` blocks, ``embed_dim`` wide with ``num_heads`` heads; ``layers`` are
    the four tapped blocks (0-based), ``features`` and ``out_channels`` the DPT decoder widths.
    """

    embed_dim: int
    depth: int
    num_heads: int
    layers: tuple[int, ...]
    features: int
    out_channels: tuple[int, ...]


@dataclass(frozen=True)
class ModelCfg:
    """Which network to train and how to initialise it.

    ``name`` is a zoo name or alias (``da2-mini``, ``da2-small``, ``da1-base`` ...): it supplies the
    architecture, the preprocessing numbers (mean/std, inference size) and the family. ``head`` and
    ``max_depth`` (metres) switch the output head; ``custom`` replaces the sizes. ``init`` fine-tunes all
    weights from a file or a zoo name; ``encoder_init`` loads only the encoder (a DINOv2 pretraining
    checkpoint, or any Depth Anything checkpoint); neither means random initialisation.

    ``head: zoedepth`` puts the ZoeDepth metric head (the V1 metric models, ``docs/zoedepth.md``) on the model
    as its "core"; ``zoe`` is its configuration (default: the official ``config_zoedepth.json``, or the zoo
    entry's when ``name`` is a ZoeDepth model). ``init`` then takes a ZoeDepth checkpoint (all weights) or a
    *relative* Depth Anything model, which fills the core (encoder and DPT decoder) while the head keeps its
    random initialisation, as the official trainer starts from ``depth_anything_vitl14.pth``.
    """

    name: str = "da2-mini"
    head: HeadName | None = None
    max_depth: float | None = None
    custom: CustomArch | None = None
    input_size: int | None = None
    init: str | None = None
    encoder_init: str | None = None
    zoe: ZoeConfig | None = None


@dataclass(frozen=True)
class SourceCfg:
    """One training data source: a depthany RGB-D folder, drawn with probability ``weight / sum(weights)``.

    ``kind`` picks the reader from :data:`depthany.train.data.SOURCE_KINDS`; ``options`` are passed to it.
    """

    path: str
    weight: float = 1.0
    split: str | None = None
    kind: str = "rgbd"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValCfg:
    """Validation set: an RGB-D folder (and split), predicted at ``input_size`` (short side, default: crop)."""

    path: str | None = None
    split: str | None = None
    input_size: int | None = None
    max_images: int | None = None


@dataclass(frozen=True)
class SegAugCfg:
    """The mmseg training pipeline of ``task: semseg`` (Depth Anything V1 seg configs).

    ``RandomChoiceResize``: the short side becomes ``int(t * 0.1 * crop_size)`` for ``t`` drawn uniformly from
    ``short_side_tenths`` (V1: 5..20, i.e. 0.5-2.0 x crop), the long side capped at ``max_long_ratio * crop_size``
    (V1: 4 x 896 = 3584); ``RandomCrop`` of ``crop_size`` retried up to 10 times until no class covers
    ``cat_max_ratio`` or more of the crop's labelled pixels; flip with ``data.hflip``; mmseg's
    ``PhotoMetricDistortion`` when ``photometric``; then zero-padding (image) / 255 (labels) to the crop size.
    """

    short_side_tenths: tuple[int, ...] = tuple(range(5, 21))
    max_long_ratio: float = 4.0
    cat_max_ratio: float = 0.75
    photometric: bool = True


@dataclass(frozen=True)
class ColorAugCfg:
    """ZoeDepth's photometric augmentation (``data_mono.py`` ``augment_image``), applied with probability ``p``
    after the crop and flip: ``image ** gamma``, times a brightness, times a per-channel colour factor, clipped to
    [0, 1]; each factor uniform in its range. Official: p 0.5, gamma [0.9, 1.1], brightness [0.75, 1.25]
    (NYUv2) or [0.9, 1.1] (KITTI), colour [0.9, 1.1]. ``p: 0`` (the default) turns it off."""

    p: float = 0.0
    gamma: tuple[float, float] = (0.9, 1.1)
    brightness: tuple[float, float] = (0.75, 1.25)
    colour: tuple[float, float] = (0.9, 1.1)


@dataclass(frozen=True)
class DataCfg:
    """Training data and augmentation.

    Each sample is resized (aspect kept) so its short side is ``crop_size * s`` with ``s ~ U(scale)``, randomly
    cropped to ``crop_size`` square and flipped left-right with probability ``hflip``. ``crop_hw`` = (height,
    width) crops rectangles instead (an image of that size with ``scale`` [1, 1] is used whole: ZoeDepth's NYUv2
    480x640 frames and KITTI 352x1216 KB crops). ``rotate`` and ``color`` are ZoeDepth's augmentations (off by
    default). Segmentation sources use ``seg_aug`` instead of ``scale``. ``clip_frames``: the clip length of
    ``video`` sources (``task: video``; 2..32, the temporal modules' positional table).
    """

    sources: tuple[SourceCfg, ...] = ()
    crop_size: int = 224
    crop_hw: tuple[int, int] | None = None
    scale: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.5
    rotate: float = 0.0
    color: ColorAugCfg = field(default_factory=ColorAugCfg)
    num_workers: int = 0
    val: ValCfg = field(default_factory=ValCfg)
    seg_aug: SegAugCfg = field(default_factory=SegAugCfg)
    clip_frames: int = 32


@dataclass(frozen=True)
class OptimCfg:
    """AdamW with a separate decoder learning rate, linear warm-up then decay.

    ``lr`` is the encoder's peak learning rate; the decoder uses ``lr * decoder_lr_mult`` (Depth Anything:
    5e-6 and 10x) and a ZoeDepth head ``lr * head_lr_mult`` (official: encoder and decoder at 1.61e-4 / 50, the
    head at 1.61e-4). ``schedule``: ``linear`` to 0, ``poly`` (1 - progress) ** ``poly_power``, ``constant``, or
    ``onecycle``: PyTorch's ``OneCycleLR`` (cosine, two phases) with ``pct_start``, ``div_factor`` and
    ``final_div_factor``, cycling Adam's beta1 between ``max_momentum`` and ``base_momentum`` when
    ``cycle_momentum`` (ZoeDepth: 0.7, 1, 1e4, 0.95 -> 0.85 -> 0.95).
    """

    lr: float = 5e-6
    decoder_lr_mult: float = 10.0
    head_lr_mult: float = 1.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: ScheduleKind = "linear"
    poly_power: float = 0.9
    warmup_start_factor: float = 1e-6
    pct_start: float = 0.7
    div_factor: float = 1.0
    final_div_factor: float = 1e4
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95


@dataclass(frozen=True)
class LossCfg:
    """Objective and loss weights.

    ``objective``: a name in :data:`depthany.train.objectives.OBJECTIVES`, or ``auto`` (``relative`` for a
    relative head: ``ssi`` x affine-invariant + ``gm`` x gradient matching in disparity; ``metric`` for a
    metric head: ``silog`` x SILog in depth; ``zoedepth`` for a ZoeDepth head: ``silog`` x ZoeDepth's SILog,
    ``10 sqrt(var(g) + silog_beta mean(g)^2)``). ``options`` go to the objective (extensions use them).
    """

    objective: str = "auto"
    ssi: float = 1.0
    gm: float = 2.0
    gm_scales: int = 4
    silog: float = 1.0
    silog_lambda: float = 0.5
    silog_beta: float = 0.15
    min_depth: float = 1e-3
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainCfg:
    """Loop length and cadence. ``batch_size`` is the *global* batch per optimiser step (all processes and
    accumulation micro-steps together); intervals are in optimiser steps, 0 = never."""

    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    grad_clip: float = 1.0
    log_every: int = 10
    val_every: int = 0
    ckpt_every: int = 500
    snapshot_every: int = 0


@dataclass(frozen=True)
class SegCfg:
    """The segmentation model of ``task: semseg`` (see ``docs/segmentation.md``).

    The encoder (size, taps, mean/std) comes from ``model`` (``name``, ``custom``) and its initialisation from
    ``model.encoder_init`` (any Depth Anything relative/metric checkpoint, a DINOv2 pretraining checkpoint) or
    nothing (random); ``model.init`` resumes from a depthany segmentation file.

    Attributes:
        head: ``linear`` (DINOv2's BN + 1x1 conv head) or ``mask2former`` (Feature2Pyramid + Mask2Former).
        taps: ``auto`` (the zoo model's own layers), ``v1`` (last four blocks, as the V1 seg configs) or ``v2``.
        classes: ``auto`` (the class table of the first data source), ``cityscapes``, ``ade20k``, or a path to
            a JSON class table or to an RGB-D folder with labels.
        linear_levels: which of the four taps the linear head concatenates.
        mask2former: head sizes and loss weights (defaults: V1).
        test: inference for validation and the exported model (defaults: V1 Cityscapes, stride 518).
        avg_non_ignore: cross-entropy of the linear head averaged over labelled pixels only (mmseg default: no).
    """

    head: SegHeadName = "linear"
    taps: str = "auto"
    classes: str = "auto"
    linear_levels: tuple[int, ...] = (0, 1, 2, 3)
    mask2former: Mask2FormerCfg = field(default_factory=Mask2FormerCfg)
    test: InferenceCfg = field(default_factory=InferenceCfg)
    avg_non_ignore: bool = False


@dataclass(frozen=True)
class VideoCfg:
    """The Video Depth Anything training of ``task: video`` (see ``docs/video_depth_anything.md``).

    The network is ``model``'s image model (initialised from ``model.init``, e.g. ``da2-mini``) with temporal
    modules that start as the identity; clips come from ``data.sources`` of kind ``video`` (clip length:
    ``data.clip_frames``, at most 32).

    Attributes:
        freeze_encoder: keep the DINOv2 encoder fixed (the paper: only the head and temporal modules learn).
        alpha: weight of the spatial gradient-matching term (official 0.5; its scales: ``loss.gm_scales``, 4).
        stable_scale: weight of the temporal gradient-matching term (official 10).
    """

    freeze_encoder: bool = True
    alpha: float = 0.5
    stable_scale: float = 10.0


@dataclass(frozen=True)
class Recipe:
    """A complete training recipe. ``name`` names the run and the exported model; ``task`` says whether it
    trains depth (``model`` / ``loss``) or semantic segmentation (``seg``)."""

    name: str = "run"
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    licence: str = "unspecified"
    task: Task = "depth"
    model: ModelCfg = field(default_factory=ModelCfg)
    data: DataCfg = field(default_factory=DataCfg)
    optim: OptimCfg = field(default_factory=OptimCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    seg: SegCfg = field(default_factory=SegCfg)
    video: VideoCfg = field(default_factory=VideoCfg)


# ------------------------------------------------------------------------------------------------- load/dump


def recipe_from_dict(data: dict[str, Any], where: str = "<recipe>", overridden: tuple[str, ...] = ()) -> Recipe:
    """Build and validate a recipe from a plain dict.

    Args:
        where: the file name used in error messages.
        overridden: dotted keys that came from ``--set``; errors at those keys name the override instead.
    """
    from .build import recipe_spec  # local: building the spec imports the model package (torch)

    try:
        recipe = from_dict(Recipe, data, "")
        validate(recipe)
    except FieldError as e:
        raise RecipeError(f"{_origin(e.key, where, overridden)}: {e.key}: {e.message}") from None
    try:
        recipe_spec(recipe)  # unknown zoo name, metric head without max_depth, bad custom sizes
    except RecipeError as e:
        key = str(e).split(":", 1)[0]
        raise RecipeError(f"{_origin(key, where, overridden)}: {e}") from None
    return recipe


def _origin(key: str, where: str, overridden: tuple[str, ...]) -> str:
    for o in overridden:
        if key == o or key.startswith(o + ".") or o.startswith(key + "."):
            return f"--set {o}"
    return where


def load_recipe(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a YAML recipe (or start from the defaults when ``path`` is None) and apply ``--set`` overrides.

    Raises:
        RecipeError: unreadable file, invalid YAML, unknown keys, wrong types or values; names file and key.
    """
    where = str(path) if path is not None else "<defaults>"
    data: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(f"{p}: no such recipe file")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise RecipeError(f"{p}: a recipe must be a mapping of sections, got {type(data).__name__}")
    keys = []
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
        keys.append(key)
    return recipe_from_dict(data, where, tuple(keys))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """A plain dict (lists, not tuples) that :func:`recipe_from_dict` turns back into the same recipe."""
    return to_plain(recipe)  # type: ignore[no-any-return]


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML, every field spelled out (what ``run_dir/recipe.yaml`` holds)."""
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def recipe_diff(a: Recipe, b: Recipe) -> list[str]:
    """Dotted keys whose values differ between two recipes, as ``key: old -> new`` lines."""
    out: list[str] = []

    def walk(x: Any, y: Any, key: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in dict.fromkeys([*x, *y]):
                walk(x.get(k), y.get(k), f"{key}.{k}" if key else str(k))
        elif x != y:
            out.append(f"{key}: {x!r} -> {y!r}")

    walk(recipe_to_dict(a), recipe_to_dict(b), "")
    return out


# ------------------------------------------------------------------------------------------------ validation


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise FieldError(key, message)


def validate(r: Recipe) -> None:
    """Range and consistency checks that types alone cannot express. Raises :class:`FieldError`."""
    from .objectives import OBJECTIVES  # local: objectives import torch, keep recipe parsing light

    patch = PATCH_SIZE
    d, o, lo, t, m = r.data, r.optim, r.loss, r.train, r.model
    _check(d.crop_size >= patch and d.crop_size % patch == 0, "data.crop_size",
           f"must be a positive multiple of {patch}, got {d.crop_size}")
    if d.crop_hw is not None:  # multiples of 14 unless the head resizes (checked by build.recipe_spec)
        _check(min(d.crop_hw) >= patch, "data.crop_hw", f"must be (height, width) >= {patch}, got {list(d.crop_hw)}")
    _check(0.0 <= d.rotate <= 45.0, "data.rotate", f"is a maximum angle in degrees in [0, 45], got {d.rotate}")
    c = d.color
    _check(0.0 <= c.p <= 1.0, "data.color.p", f"is a probability in [0, 1], got {c.p}")
    for k in ("gamma", "brightness", "colour"):
        lo_hi = getattr(c, k)
        _check(0 < lo_hi[0] <= lo_hi[1], f"data.color.{k}", f"needs 0 < min <= max, got {list(lo_hi)}")
    _check(0 < d.scale[0] <= d.scale[1], "data.scale", f"needs 0 < min <= max, got {list(d.scale)}")
    _check(d.scale[0] >= 1.0, "data.scale", f"min must be >= 1 (the crop must fit), got {d.scale[0]}")
    _check(0.0 <= d.hflip <= 1.0, "data.hflip", f"is a probability in [0, 1], got {d.hflip}")
    _check(2 <= d.clip_frames <= 32, "data.clip_frames", f"clips hold 2..32 frames, got {d.clip_frames}")
    _check(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}")
    for i, s in enumerate(d.sources):
        _check(s.weight >= 0, f"data.sources.{i}.weight", f"must be >= 0, got {s.weight}")
    if d.sources:
        _check(sum(s.weight for s in d.sources) > 0, "data.sources", "all weights are 0")
    v = d.val
    if v.input_size is not None:
        _check(v.input_size >= patch and v.input_size % patch == 0, "data.val.input_size",
               f"must be a positive multiple of {patch}, got {v.input_size}")
    if v.max_images is not None:
        _check(v.max_images > 0, "data.val.max_images", f"must be > 0, got {v.max_images}")
    if m.input_size is not None:
        _check(m.input_size >= patch and m.input_size % patch == 0, "model.input_size",
               f"must be a positive multiple of {patch}, got {m.input_size}")
        _check(m.head != "zoedepth", "model.input_size", "a ZoeDepth head runs at model.zoe.img_size; set that")
    _check(m.zoe is None or m.head in ("zoedepth", None), "model.zoe", "is the ZoeDepth head's configuration: "
           "use it with model.head: zoedepth")
    _check(not (m.init and m.encoder_init), "model.encoder_init",
           "give either model.init (all weights) or model.encoder_init (encoder only), not both")
    if m.max_depth is not None:
        _check(m.max_depth > 0, "model.max_depth", f"must be > 0 metres, got {m.max_depth}")
    _check(o.lr > 0, "optim.lr", f"must be > 0, got {o.lr}")
    _check(o.decoder_lr_mult > 0, "optim.decoder_lr_mult", f"must be > 0, got {o.decoder_lr_mult}")
    _check(o.head_lr_mult > 0, "optim.head_lr_mult", f"must be > 0, got {o.head_lr_mult}")
    if o.schedule == "onecycle":
        _check(0 < o.pct_start < 1, "optim.pct_start", f"must be in (0, 1), got {o.pct_start}")
        _check(o.div_factor > 0 and o.final_div_factor > 0, "optim.div_factor",
               f"div_factor and final_div_factor must be > 0, got {o.div_factor} / {o.final_div_factor}")
        _check(0 <= o.base_momentum <= o.max_momentum < 1, "optim.base_momentum",
               f"needs 0 <= base_momentum <= max_momentum < 1, got {o.base_momentum} / {o.max_momentum}")
        _check(o.warmup_steps == 0, "optim.warmup_steps", "onecycle has its own warm-up phase (pct_start); set 0")
    _check(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}")
    _check(all(0 <= b < 1 for b in o.betas), "optim.betas", f"must be in [0, 1), got {list(o.betas)}")
    _check(o.eps > 0, "optim.eps", f"must be > 0, got {o.eps}")
    _check(0 <= o.warmup_steps <= t.steps, "optim.warmup_steps", f"must be in [0, train.steps], got {o.warmup_steps}")
    _check(o.poly_power > 0, "optim.poly_power", f"must be > 0, got {o.poly_power}")
    _check(0 < o.warmup_start_factor <= 1, "optim.warmup_start_factor", f"must be in (0, 1], got {o.warmup_start_factor}")
    _validate_seg(r)
    _validate_video(r)
    _check(lo.objective == "auto" or lo.objective in OBJECTIVES, "loss.objective",
           f"unknown objective {lo.objective!r}; known: auto, {', '.join(OBJECTIVES)}")
    _check(lo.silog_beta >= 0, "loss.silog_beta", f"must be >= 0, got {lo.silog_beta}")
    for k in ("ssi", "gm", "silog"):
        _check(getattr(lo, k) >= 0, f"loss.{k}", f"must be >= 0, got {getattr(lo, k)}")
    _check(lo.gm_scales >= 1, "loss.gm_scales", f"must be >= 1, got {lo.gm_scales}")
    _check(0 <= lo.silog_lambda <= 1, "loss.silog_lambda", f"must be in [0, 1], got {lo.silog_lambda}")
    _check(lo.min_depth > 0, "loss.min_depth", f"must be > 0 metres, got {lo.min_depth}")
    _check(t.steps > 0, "train.steps", f"must be > 0, got {t.steps}")
    _check(t.batch_size > 0, "train.batch_size", f"must be > 0, got {t.batch_size}")
    _check(t.grad_accum > 0, "train.grad_accum", f"must be > 0, got {t.grad_accum}")
    _check(t.batch_size % t.grad_accum == 0, "train.grad_accum",
           f"train.batch_size {t.batch_size} is not divisible by grad_accum {t.grad_accum}")
    _check(t.grad_clip >= 0, "train.grad_clip", f"must be >= 0 (0 = off), got {t.grad_clip}")
    for k in ("log_every", "val_every", "ckpt_every", "snapshot_every"):
        _check(getattr(t, k) >= 0, f"train.{k}", f"must be >= 0 (0 = never), got {getattr(t, k)}")
    _check(t.log_every > 0, "train.log_every", "must be > 0")
    _check(r.device == "auto" or r.device.split(":")[0] in ("cpu", "cuda", "mps"), "device",
           f"must be auto, cpu, cuda, cuda:N or mps, got {r.device!r}")


def _validate_video(r: Recipe) -> None:
    """Checks of the ``video`` section (only meaningful for ``task: video``)."""
    if r.task != "video":
        _check(r.video == VideoCfg(), "video", "is only used with task: video")
        return
    for i, s in enumerate(r.data.sources):
        _check(s.kind == "video", f"data.sources.{i}.kind",
               f"task: video trains on clips: sources of kind video (RGB-D sequence folders), got {s.kind!r}")
    _check(r.loss.objective in ("auto", "video"), "loss.objective",
           f"task: video trains with the video objective, got {r.loss.objective!r}")
    _check(not r.data.val.path, "data.val.path", "task: video has no in-loop validation; score final.safetensors "
           "with depthany eval --dataset rgbd-video")
    _check(r.model.head in (None, "relative"), "model.head", "task: video trains a relative model (the VDA head)")
    _check(r.video.alpha >= 0 and r.video.stable_scale >= 0, "video",
           f"alpha and stable_scale must be >= 0, got {r.video.alpha} / {r.video.stable_scale}")


def _validate_seg(r: Recipe) -> None:
    """Checks of the ``seg`` section and ``data.seg_aug`` (only meaningful for ``task: semseg``)."""
    if r.task != "semseg":
        _check(r.seg == SegCfg(), "seg", "is only used with task: semseg")
        return
    sg, a = r.seg, r.data.seg_aug
    for i, s in enumerate(r.data.sources):
        _check(s.kind in SEG_SOURCE_KINDS, f"data.sources.{i}.kind",
               f"task: semseg trains on {', '.join(SEG_SOURCE_KINDS)} sources (semseg: an RGB-D folder with labels), "
               f"got {s.kind!r}")
    _check(sg.taps in ("auto", "v1", "v2"), "seg.taps", f"must be auto, v1 or v2, got {sg.taps!r}")
    _check(bool(sg.linear_levels) and all(0 <= i < 4 for i in sg.linear_levels), "seg.linear_levels",
           f"must index the four taps (0..3), got {list(sg.linear_levels)}")
    _check(bool(a.short_side_tenths) and all(t > 0 for t in a.short_side_tenths), "data.seg_aug.short_side_tenths",
           f"must be positive integers, got {list(a.short_side_tenths)}")
    _check(a.max_long_ratio > 0, "data.seg_aug.max_long_ratio", f"must be > 0, got {a.max_long_ratio}")
    _check(0 < a.cat_max_ratio <= 1, "data.seg_aug.cat_max_ratio", f"must be in (0, 1], got {a.cat_max_ratio}")
    _check(r.loss.objective not in DEPTH_OBJECTIVES, "loss.objective",
           f"task: semseg trains with the semseg objective (or a registered extension), got {r.loss.objective!r}")
