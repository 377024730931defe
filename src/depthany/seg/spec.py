"""What a segmentation model is: encoder and taps, neck, head, classes and the inference it was made for.

The encoder sizes and layer taps come from :mod:`depthany.zoo` (no number twice); this module holds the
numbers of the segmentation heads. Their defaults are the Depth Anything V1 semantic-segmentation configs
(``semseg/config/depth_anything/*.py``, LiheYoung/Depth-Anything 1d03336): a ``Feature2Pyramid`` neck with
rescales (4, 2, 1, 0.5) and a Mask2Former head with 1024 feature/mask channels, 200 queries, 9 decoder layers,
32 heads, 4096-wide FFNs and a 6-layer multi-scale deformable-attention pixel decoder (3 levels, 4 points);
Hungarian matching costs class 2 / mask 5 / dice 5, losses with the same weights, no-object weight 0.1 and
12544 sampled points (oversample 3, importance 0.75); sliding-window inference with 896 crops after resizing
to a short side of 896 (long side at most 3584), stride 518 on Cityscapes and 426 on ADE20K.

A :class:`SegSpec` is stored in the metadata of segmentation weights (:mod:`depthany.seg.weights`), so a file
describes itself.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import zoo
from ..data.classes import ClassTable

SegHeadKind = Literal["linear", "mask2former"]
InferenceMode = Literal["whole", "slide"]
HEADS: tuple[str, ...] = ("linear", "mask2former")

# mmseg's data_preprocessor mean/std (0-255 scale) are 255 x the ImageNet numbers of zoo.py.
MEAN_255 = tuple(255 * m for m in zoo.IMAGENET_MEAN)
STD_255 = tuple(255 * s for s in zoo.IMAGENET_STD)


@dataclass(frozen=True)
class LinearHeadCfg:
    """DINOv2's linear evaluation head (``BNHead``): the chosen taps, concatenated, BatchNorm, a 1x1 conv.

    ``levels`` index the four tapped layers; all four is DINOv2's "+ms" head, ``(3,)`` its plain linear head.
    """

    levels: tuple[int, ...] = (0, 1, 2, 3)


@dataclass(frozen=True)
class Mask2FormerCfg:
    """Mask2Former head sizes and training costs (defaults: the Depth Anything V1 configs, see module docstring).

    ``feat_channels`` is the pixel decoder width and the transformer decoder width; ``out_channels`` the mask
    feature width. ``num_heads`` serves both the deformable attention and the decoder attention (32 in V1).
    """

    feat_channels: int = 1024
    out_channels: int = 1024
    num_queries: int = 200
    decoder_layers: int = 9
    num_heads: int = 32
    ffn_channels: int = 4096
    encoder_layers: int = 6
    encoder_ffn_channels: int = 4096
    deform_points: int = 4
    neck_rescales: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)
    train_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1


@dataclass(frozen=True)
class InferenceCfg:
    """How a whole image is segmented (mmseg ``test_cfg`` + test pipeline semantics).

    Attributes:
        mode: ``whole`` (one pass) or ``slide`` (``crop`` x ``crop`` windows every ``stride`` pixels, scores
            summed and divided by the number of windows covering each pixel).
        crop, stride: sliding-window size and step in pixels (of the resized image).
        resize: ``(long, short)``: resize (bilinear, aspect kept) so the image fits ``long`` x ``short``, as
            mmseg's ``Resize(scale=(3584, 896), keep_ratio=True)``; None keeps the input size.
        size_divisor: pad the network input (bottom/right, zeros after normalisation) to a multiple of this.
        ratios: multi-scale test: resize the *original* image by each ratio (mmseg ``TestTimeAug``; ``resize``
            is then not applied); empty = single scale.
        flip: also run each scale mirrored; with ratios or flip, per-view softmax scores are averaged.
    """

    mode: InferenceMode = "slide"
    crop: int = 896
    stride: int = 518
    resize: tuple[int, int] | None = (3584, 896)
    size_divisor: int | None = None
    ratios: tuple[float, ...] = ()
    flip: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"inference mode must be 'whole' or 'slide', got {self.mode!r}")
        if self.crop < 1 or self.stride < 1:
            raise ValueError(f"crop and stride must be positive, got crop {self.crop}, stride {self.stride}")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) < 1):
            raise ValueError(f"resize must be (long, short) in pixels, got {self.resize}")
        if any(not r > 0 for r in self.ratios):
            raise ValueError(f"ratios must be positive, got {self.ratios}")


# The V1 test settings (semseg/config/depth_anything/*.py): Cityscapes stride 518, ADE20K 426, and the
# Cityscapes multi-scale + flip variant (_ms config: ratios 0.5-2.0, flip, size_divisor 14).
CITYSCAPES_TEST = InferenceCfg(stride=518)
ADE20K_TEST = InferenceCfg(stride=426)
CITYSCAPES_TEST_MS = InferenceCfg(stride=518, resize=None, size_divisor=14,
                                  ratios=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0), flip=True)


@dataclass(frozen=True)
class SegSpec:
    """A segmentation model.

    Attributes:
        name: run or model name.
        encoder: DINOv2 ViT size (a zoo encoder or a custom one).
        layers: the four tapped blocks (0-based); V1 taps the last four, V2 spreads them.
        classes: class names and colours (its length is the number of output classes).
        head: ``linear`` or ``mask2former``.
        inference: default whole-image / sliding-window settings.
        linear, mask2former: the head's sizes (only the chosen head's are used).
        licence, description: provenance.
    """

    name: str
    encoder: zoo.EncoderSpec
    layers: tuple[int, ...]
    classes: ClassTable
    head: SegHeadKind = "linear"
    inference: InferenceCfg = field(default_factory=InferenceCfg)
    linear: LinearHeadCfg = field(default_factory=LinearHeadCfg)
    mask2former: Mask2FormerCfg = field(default_factory=Mask2FormerCfg)
    licence: str = "unspecified"
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.layers) != 4 or any(not 0 <= i < self.encoder.depth for i in self.layers):
            raise ValueError(f"layers must be 4 block indices in [0, {self.encoder.depth}), got {self.layers}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if not self.linear.levels or any(not 0 <= i < 4 for i in self.linear.levels):
            raise ValueError(f"linear.levels must index the 4 taps (0..3), got {self.linear.levels}")
        if len(self.classes) > 255:
            raise ValueError(f"at most 255 classes fit 8-bit label images, got {len(self.classes)}")
        m = self.mask2former
        if self.head == "mask2former":
            if m.feat_channels % 32 or m.feat_channels % m.num_heads:
                raise ValueError(f"mask2former.feat_channels {m.feat_channels} must be a multiple of 32 "
                                 f"(GroupNorm groups) and of num_heads {m.num_heads}")
            if len(m.neck_rescales) != 4:
                raise ValueError(f"mask2former.neck_rescales needs 4 entries, got {m.neck_rescales}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def make_seg_spec(encoder: str | zoo.EncoderSpec, classes: ClassTable, head: SegHeadKind = "linear",
                  taps: str | tuple[int, ...] = "v2", name: str = "seg", **changes: Any) -> SegSpec:
    """A :class:`SegSpec` for a zoo encoder size (``"vits"`` ... ``"vitg"``) or an explicit encoder.

    Args:
        taps: ``"v1"`` (the last four blocks, as the V1 seg backbone's ``get_intermediate_layers(x, 4)``),
            ``"v2"`` (the zoo's V2 taps), or four explicit block indices.
        changes: other :class:`SegSpec` fields (``inference``, ``mask2former``, ``linear``, ...).

    Raises:
        ValueError: unknown encoder size or taps.
    """
    if isinstance(encoder, str) and encoder not in zoo.ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; known: {', '.join(zoo.ENCODERS)}")
    enc = zoo.ENCODERS[encoder] if isinstance(encoder, str) else encoder
    if taps == "v1":
        layers: tuple[int, ...] = tuple(range(enc.depth - 4, enc.depth))
    elif taps == "v2":
        if enc.name not in zoo.V2_LAYERS:
            raise ValueError(f"no V2 taps for encoder {enc.name!r}; give four block indices")
        layers = zoo.V2_LAYERS[enc.name]
    elif isinstance(taps, tuple):
        layers = tuple(int(i) for i in taps)
    else:
        raise ValueError(f"taps must be 'v1', 'v2' or four block indices, got {taps!r}")
    return SegSpec(name, enc, layers, classes, head, **changes)


# ------------------------------------------------------------------------------------------------ JSON


def spec_to_json(spec: SegSpec) -> str:
    """The spec as JSON (stored in segmentation weights)."""
    d = dataclasses.asdict(spec)
    d["classes"] = spec.classes.to_dict()
    return json.dumps({"kind": "depthany-seg", "version": 1, **d})


def spec_from_json(text: str, where: str = "segmentation spec") -> SegSpec:
    """Inverse of :func:`spec_to_json`.

    Raises:
        ValueError: naming ``where`` for malformed JSON or fields.
    """
    try:
        d = json.loads(text)
        if d.pop("kind", None) != "depthany-seg":
            raise ValueError("not a depthany segmentation spec")
        d.pop("version", None)
        enc = d.pop("encoder")
        return SegSpec(
            encoder=zoo.EncoderSpec(**enc), classes=ClassTable.from_dict(d.pop("classes"), where),
            layers=tuple(d.pop("layers")),
            inference=InferenceCfg(**_tuples(d.pop("inference"))),
            linear=LinearHeadCfg(**_tuples(d.pop("linear"))),
            mask2former=Mask2FormerCfg(**_tuples(d.pop("mask2former"))), **d)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: invalid segmentation spec ({type(e).__name__}: {e})") from None


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
