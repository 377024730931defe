"""The model table: every number that defines a Depth Anything model lives here and nowhere else.

One frozen :class:`ModelSpec` per model name says what the network is (:class:`Arch`), how images are
prepared for it (:class:`Preprocess`), where its weights come from (:class:`WeightSource`) and under which
licence they are published. Facts come from the official repositories (see ``docs/models.md`` and, for
Depth Anything 3, ``docs/depth_anything_3.md``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Literal

Family = Literal["v1", "v2", "vda", "da3"]
# relative: V1/V2/VDA disparity (ReLU). metric: metres (V2: sigmoid * max_depth; V1 ZoeDepth; VDA metric, ReLU).
# DA3 (exp output, depth): depth: DA3Mono relative depth + sky; focal_metric: DA3Metric, metres = output *
# focal_px / metric_focal, + sky; multiview: the any-view models (DualDPT depth + confidence, camera decoder).
HeadKind = Literal["relative", "metric", "depth", "focal_metric", "multiview"]
HEAD_KINDS: tuple[str, ...] = ("relative", "metric", "depth", "focal_metric", "multiview")
FfnKind = Literal["mlp", "swiglu"]
WeightFormat = Literal["official", "v1_hub", "transformers", "depthany", "zoedepth", "da3"]
ResizeDtype = Literal["float64", "float32"]
# V1/V2: lower-bound bicubic resize on the float image. DA3 (``process_res_method``): bound the longest
# (upper) or shortest (lower) side with OpenCV on uint8, then reach multiples of 14 by a second resize or a crop.
ResizeRule = Literal["lower_bound", "upper_bound_resize", "upper_bound_crop", "lower_bound_resize",
                     "lower_bound_crop"]
RESIZE_RULES: tuple[str, ...] = ("lower_bound", "upper_bound_resize", "upper_bound_crop", "lower_bound_resize",
                                 "lower_bound_crop")
BinCenters = Literal["softplus", "normed", "hybrid1", "hybrid2"]
AttractorType = Literal["inv", "exp"]
AttractorKind = Literal["mean", "sum"]

# Every Depth Anything encoder is a DINOv2 ViT with 14-pixel patches, and every official model runs at a 518 px
# short side: 37 x 37 patches, the grid its positional embeddings are stored at.
PATCH_SIZE = 14
INPUT_SIZE = 518
POS_GRID = INPUT_SIZE // PATCH_SIZE

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderSpec:
    """A DINOv2 ViT size. ``pos_grid`` is the side of the stored positional-embedding grid (518 / 14 = 37)."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    ffn: FfnKind = "mlp"
    mlp_ratio: float = 4.0
    patch_size: int = PATCH_SIZE
    pos_grid: int = POS_GRID

    @property
    def ffn_hidden(self) -> int:
        """Hidden width of the feed-forward layer (SwiGLU: 2/3 of 4D, rounded up to a multiple of 8)."""
        hidden = int(self.embed_dim * self.mlp_ratio)
        if self.ffn == "swiglu":
            hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        return hidden


ENCODERS: dict[str, EncoderSpec] = {
    "vitt": EncoderSpec("vitt", 192, 12, 3),  # depthany's own tiny size for the bundled model
    "vits": EncoderSpec("vits", 384, 12, 6),
    "vitb": EncoderSpec("vitb", 768, 12, 12),
    "vitl": EncoderSpec("vitl", 1024, 24, 16),
    "vitg": EncoderSpec("vitg", 1536, 40, 24, ffn="swiglu"),
}

# Decoder widths per encoder size: (features, out_channels). Official values from the V2 `run.py` table.
HEAD_WIDTHS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    "vitt": (32, (24, 48, 96, 192)),
    "vits": (64, (48, 96, 192, 384)),
    "vitb": (128, (96, 192, 384, 768)),
    "vitl": (256, (256, 512, 1024, 1024)),
    "vitg": (384, (1536, 1536, 1536, 1536)),
}

# Tapped encoder blocks (0-based). V1 unintentionally used the last four blocks; V2 spreads them out.
V1_LAYERS: dict[str, tuple[int, ...]] = {"vits": (8, 9, 10, 11), "vitb": (8, 9, 10, 11), "vitl": (20, 21, 22, 23)}
V2_LAYERS: dict[str, tuple[int, ...]] = {
    "vitt": (2, 5, 8, 11),
    "vits": (2, 5, 8, 11),
    "vitb": (2, 5, 8, 11),
    "vitl": (4, 11, 17, 23),
    "vitg": (9, 19, 29, 39),
}


@dataclass(frozen=True)
class ZoeConfig:
    """The ZoeDepth metric head of the V1 metric models (``metric_depth/`` of the V1 repository).

    Defaults are the official ``config_zoedepth.json`` values, which both released files use (see
    ``docs/zoedepth.md``). ``bin_centers_type`` picks the seed regressor and attractors: ``"softplus"``
    (unbounded centres, attractors with one channel each), ``"normed"`` (centres bounded to
    [min_depth, max_depth], two channels per attractor), or the two official hybrids (``"hybrid1"``: normed seed,
    softplus attractors; ``"hybrid2"``: the reverse). ``img_size`` is the network input (H, W): the image is
    resized to exactly that size (``keep_aspect=False``, the official "eval" config) or, with
    ``keep_aspect=True`` (the official "infer" config's ``force_keep_ar``), by the single scale factor closest to 1
    that fits one side; either way each side is then rounded to a multiple of 14 (the KITTI config's 384x768
    runs at 378x770). The upper depth bound is :attr:`Arch.max_depth`.
    """

    n_bins: int = 64
    bin_centers_type: BinCenters = "softplus"
    bin_embedding_dim: int = 128
    min_depth: float = 1e-3
    n_attractors: tuple[int, int, int, int] = (16, 8, 4, 1)
    attractor_alpha: float = 1000.0
    attractor_gamma: int = 2
    attractor_kind: AttractorKind = "mean"
    attractor_type: AttractorType = "inv"
    min_temp: float = 0.0212
    max_temp: float = 50.0
    img_size: tuple[int, int] = (392, 518)
    keep_aspect: bool = False

    def __post_init__(self) -> None:
        if self.bin_centers_type not in ("softplus", "normed", "hybrid1", "hybrid2"):
            raise ValueError(f"bin_centers_type must be softplus, normed, hybrid1 or hybrid2, got "
                             f"{self.bin_centers_type!r}")
        if self.attractor_type not in ("inv", "exp") or self.attractor_kind not in ("mean", "sum"):
            raise ValueError(f"attractor_type must be inv/exp and attractor_kind mean/sum, got "
                             f"{self.attractor_type!r} / {self.attractor_kind!r}")
        if len(self.n_attractors) != 4 or min(self.n_attractors) < 1 or self.n_bins < 2:
            raise ValueError(f"n_attractors must be 4 positive counts (one per decoder level) and n_bins >= 2, got "
                             f"{self.n_attractors} / {self.n_bins}")
        if not 0 <= self.min_temp < self.max_temp:
            raise ValueError(f"need 0 <= min_temp < max_temp, got {self.min_temp} / {self.max_temp}")
        if len(self.img_size) != 2 or min(self.img_size) < 14:
            raise ValueError(f"img_size must be (H, W), both >= 14, got {self.img_size}")

    @property
    def normed_seed(self) -> bool:
        """Whether the seed bin regressor bounds its centres to [min_depth, max_depth]."""
        return self.bin_centers_type in ("normed", "hybrid1")

    @property
    def normed_attractors(self) -> bool:
        """Whether the attractors work on normalised centres (two output channels per attractor)."""
        return self.bin_centers_type in ("normed", "hybrid2")


@dataclass(frozen=True)
class TemporalSpec:
    """Video Depth Anything's four temporal ("motion") modules in the DPT head.

    Each module: GroupNorm(``norm_groups``) -> ``proj_in`` -> ``transformer_blocks`` blocks of
    ``attention_blocks`` pre-norm temporal self-attention layers (``heads`` heads, sinusoidal absolute
    positional encoding over ``max_frames`` frames) and a GEGLU feed-forward (``ff_mult`` x wider) ->
    ``proj_out`` -> residual. Official values: ``DPTHeadTemporal`` / ``TemporalModule`` in
    DepthAnything/Video-Depth-Anything (see ``docs/video_depth_anything.md``).
    """

    heads: int = 8
    transformer_blocks: int = 1
    attention_blocks: int = 2
    max_frames: int = 32
    norm_groups: int = 32
    ff_mult: int = 4


@dataclass(frozen=True)
class ViewAttention:
    """How a Depth Anything 3 any-view encoder mixes views (block indices 0-based; -1 disables).

    From block ``alt_start`` on, odd blocks attend across all views ("global"), even blocks within each view
    ("local"); the class token is replaced by a camera token at ``alt_start`` and the reference view is chosen
    just before block ``alt_start - 1``. Blocks from ``qknorm_start`` normalise queries and keys, blocks from
    ``rope_start`` apply 2D rotary embeddings (base ``rope_freq``). With ``cat_token`` the head receives
    [last within-view output, current output] concatenated (2 x embed dim).
    """

    alt_start: int
    qknorm_start: int
    rope_start: int
    cat_token: bool = True
    rope_freq: float = 100.0


@dataclass(frozen=True)
class Arch:
    """What the network is: encoder, tapped layers, decoder widths and output head.

    ``family`` only changes the top-level forward: V1 resizes the head output to the input size and applies
    a ReLU (both no-ops numerically), V2 relative applies a ReLU, V2 metric multiplies the sigmoid by
    ``max_depth`` (metres).

    ``zoe`` set: a V1 metric model, the ZoeDepth head (:class:`ZoeConfig`) on a relative V1 Depth Anything
    ("the core": encoder and DPT decoder as described by the other fields). Such an arch has ``head="metric"``
    (it outputs metres) and ``family="v1"``; ``max_depth`` is ZoeDepth's ``max_depth``.

    ``family="vda"`` (Video Depth Anything) adds the ``temporal`` modules to the head and applies a ReLU for
    both heads: relative disparity, or depth in metres without an upper bound.

    ``family="da3"`` is Depth Anything 3 (see :data:`HeadKind`): ``metric_focal`` is the focal length (px) at
    which a ``focal_metric`` output is in metres, ``views`` configures the any-view encoder of ``multiview``
    heads, and ``gaussian_head`` says the checkpoint carries the 3D-Gaussian head (DA3-Giant; loaded, not run).
    """

    encoder: EncoderSpec
    layers: tuple[int, ...]
    features: int
    out_channels: tuple[int, int, int, int]
    head: HeadKind = "relative"
    max_depth: float | None = None
    family: Family = "v2"
    zoe: ZoeConfig | None = None
    temporal: TemporalSpec | None = None
    metric_focal: float | None = None
    views: ViewAttention | None = None
    gaussian_head: bool = False

    def __post_init__(self) -> None:
        if len(self.layers) != 4 or any(not 0 <= i < self.encoder.depth for i in self.layers):
            raise ValueError(f"layers must be 4 block indices in [0, {self.encoder.depth}), got {self.layers}")
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {', '.join(HEAD_KINDS)}, got {self.head!r}")
        if self.zoe is not None and (self.head != "metric" or self.family != "v1"):
            raise ValueError("a ZoeDepth arch (zoe set) is a V1 metric model: head='metric', family='v1'")
        da3_head = self.head in ("depth", "focal_metric", "multiview")
        if da3_head != (self.family == "da3"):
            raise ValueError(f"head {self.head!r} does not belong to family {self.family!r}")
        if self.head == "focal_metric" and not self.metric_focal:
            raise ValueError("a focal_metric head needs metric_focal (pixels)")
        if (self.head == "multiview") != (self.views is not None):
            raise ValueError("exactly the multiview head needs views (ViewAttention)")
        if self.gaussian_head and self.head != "multiview":
            raise ValueError("only multiview (any-view) models carry a Gaussian head")
        if (self.family == "vda") != (self.temporal is not None):
            raise ValueError("family 'vda' and a temporal spec go together")
        if self.family == "vda":
            if self.max_depth is not None:
                raise ValueError("Video Depth Anything metric heads are unbounded (ReLU); max_depth must be None")
            channels = (self.out_channels[2], self.out_channels[3], self.features)
            t = self.temporal
            assert t is not None
            if any(c % t.norm_groups or c % t.heads for c in channels):
                raise ValueError(f"temporal modules need out_channels[2], out_channels[3] and features divisible "
                                 f"by {t.norm_groups} groups and {t.heads} heads, got {channels}")
        elif self.head == "metric" and not self.max_depth:
            raise ValueError("a metric head needs max_depth (metres)")

    @property
    def bounded(self) -> bool:
        """True for the V2 metric head (sigmoid x ``max_depth``); every other head ends in a ReLU or exp."""
        return self.head == "metric" and self.family in ("v1", "v2")

    @property
    def is_da3(self) -> bool:
        """Depth Anything 3 (a different network class and checkpoint layout from V1/V2)."""
        return self.family == "da3"


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes network input, and how the output returns to the image size.

    ``resize="lower_bound"`` (V1/V2/VDA): lower-bound resize so both sides are >= ``input_size`` and multiples of
    ``multiple`` (bicubic, a=-0.75, no antialiasing, on the float image), then ``(x - mean) / std`` in float64.
    The output is resized back with bilinear interpolation; V2 scripts use ``align_corners=True``, V1 scripts
    ``False``. The DA3 rules (``upper_bound_resize`` ...) are :func:`depthany.da3.preprocess.preprocess`.

    ``pipeline`` names the pre/post-processing code that applies these numbers (an entry of
    :data:`depthany.inference.PIPELINES`); families with another recipe register their own.
    """

    input_size: int = INPUT_SIZE
    multiple: int = PATCH_SIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output_align_corners: bool = True
    pipeline: str = "depth_anything"
    resize_dtype: ResizeDtype = "float64"  # the image's dtype during the resize: V1/V2 float64, VDA float32

    resize: ResizeRule = "lower_bound"

    def __post_init__(self) -> None:
        if self.resize_dtype not in ("float64", "float32"):
            raise ValueError(f"resize_dtype must be 'float64' or 'float32', got {self.resize_dtype!r}")
        if self.resize not in RESIZE_RULES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_RULES)}, got {self.resize!r}")


@dataclass(frozen=True)
class VideoWindows:
    """Video Depth Anything's inference schedule (``INFER_LEN``, ``OVERLAP``, ``KEYFRAMES``, ``INTERP_LEN``).

    Offline: windows of ``length`` frames advance by ``step`` = length - overlap; each later window's first
    ``overlap`` inputs are replaced by the previous window's inputs at ``keyframes``; its first ``align_frames``
    outputs fit a scale/shift onto the reference, and the ``interp`` frames after them are cross-faded with the
    previous window. Videos wider than ``wide_ratio`` (long side / short side) run at a smaller input size,
    ``input_size * wide_factor / ratio``. Streaming mode keeps ``stream_gap`` + 1 cached frames.
    """

    length: int = 32
    overlap: int = 10
    keyframes: tuple[int, ...] = (0, 12, 24, 25, 26, 27, 28, 29, 30, 31)
    interp: int = 8
    wide_ratio: float = 1.78
    wide_factor: float = 1.777

    def __post_init__(self) -> None:
        if not 0 < self.overlap < self.length or len(self.keyframes) != self.overlap:
            raise ValueError(f"need 0 < overlap < length and one keyframe per overlapping frame, got {self}")
        if any(not 0 <= k < self.length for k in self.keyframes) or not 2 <= self.interp <= self.overlap:
            raise ValueError(f"keyframes must lie in the window and 2 <= interp <= overlap, got {self}")
        tail = tuple(range(self.length - self.interp, self.length))
        if self.keyframes[self.align_frames:] != tail:
            raise ValueError(f"the last {self.interp} keyframes must be the window's last frames, got {self}")

    @property
    def step(self) -> int:
        """New frames per window (22)."""
        return self.length - self.overlap

    @property
    def align_frames(self) -> int:
        """Keyframes used for the scale/shift fit (2: the video's first frame and one from the last window)."""
        return self.overlap - self.interp

    @property
    def stream_gap(self) -> int:
        """Official streaming ``gap`` (41): frames between the kept keyframe and the current frame."""
        return self.step * 2 - 1 - self.align_frames


@dataclass(frozen=True)
class WeightSource:
    """One published copy of a model's weights.

    ``repo_id`` + ``filename`` on the Hugging Face Hub (``repo_type`` "model" or "space"), or ``bundled``: a file
    shipped inside the depthany package (``depthany/assets/...``).
    """

    format: WeightFormat
    repo_id: str | None = None
    filename: str | None = None
    repo_type: str = "model"
    sha256: str | None = None
    bundled: str | None = None
    config_filename: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A named model: architecture, preprocessing, weight sources, licence."""

    name: str
    arch: Arch
    preprocess: Preprocess
    weights: tuple[WeightSource, ...]
    licence: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    video: VideoWindows | None = None  # Video Depth Anything's window schedule (video models only)

    def __post_init__(self) -> None:
        if (self.video is not None) != (self.arch.temporal is not None):
            raise ValueError(f"{self.name}: a video schedule goes with a temporal architecture and only with one")

    @property
    def output_kind(self) -> str:
        """``"metric_depth"`` (metres), ``"relative_disparity"`` (affine-invariant inverse depth, V1/V2) or
        ``"relative_depth"`` (depth up to scale, bigger = farther: DA3Mono and the any-view models)."""
        if self.arch.head in ("metric", "focal_metric"):
            return "metric_depth"
        return "relative_depth" if self.arch.head in ("depth", "multiview") else "relative_disparity"


def make_arch(
    encoder: str,
    family: Family = "v2",
    head: HeadKind = "relative",
    max_depth: float | None = None,
    layers: tuple[int, ...] | None = None,
) -> Arch:
    """Build the official architecture for an encoder size (``"vits"``, ...), family and head.

    Video Depth Anything (``"vda"``) taps the V2 layers and adds the official :class:`TemporalSpec`.
    """
    enc = ENCODERS[encoder]
    features, out_channels = HEAD_WIDTHS[encoder]
    if layers is None:
        table = V1_LAYERS if family == "v1" else V2_LAYERS
        if encoder not in table:
            raise ValueError(f"no {family} layer taps for encoder {encoder!r}")
        layers = table[encoder]
    temporal = TemporalSpec() if family == "vda" else None
    return Arch(enc, layers, features, out_channels, head, max_depth, family, temporal=temporal)


def make_zoe_arch(encoder: str, max_depth: float, zoe: ZoeConfig | None = None) -> Arch:
    """A V1 metric (ZoeDepth) architecture on any zoo encoder: the core taps the last four blocks, as the
    official metric core does (``get_intermediate_layers(x, 4)``)."""
    depth = ENCODERS[encoder].depth
    arch = make_arch(encoder, "v1", "metric", max_depth, layers=tuple(range(depth - 4, depth)))
    return dataclasses.replace(arch, zoe=zoe if zoe is not None else ZoeConfig())


V1_PRE = Preprocess(output_align_corners=False)
V2_PRE = Preprocess(output_align_corners=True)
VDA_PRE = Preprocess(output_align_corners=True, resize_dtype="float32")  # frames become float32 before the resize
VDA_WINDOWS = VideoWindows()
V1_LICENCE = "unspecified (no licence tag on the official model repo; Apache-2.0 code)"
METRIC_LICENCE = "unspecified (no licence tag on the official model repo)"
SIZE_NAMES = {"vits": "Small", "vitb": "Base", "vitl": "Large", "vitg": "Giant"}
SHORT = {"vits": "small", "vitb": "base", "vitl": "large", "vitg": "giant"}

# Published sha256 digests (V2 README / HF file pages).
_SHA256 = {
    "depth_anything_v2_vits.pth": "715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378",
    "depth_anything_v2_vitb.pth": "0d2b7002e62d39d655571c371333340bd88f67ab95050c03591555aa05645328",
    "depth_anything_vitl14.pth": "6c6a383e33e51c5fdfbf31e7ebcda943973a9e6a1cbef1564afe58d7f2e8fe63",
    # Video Depth Anything: the Git LFS digests on the official HF file pages
    "video_depth_anything_vits.pth": "13379300b739e659f076a59d52e9801bd8d38c541a7e71f73bbca4dcfb013609",
    "video_depth_anything_vitl.pth": "43df27c6b396042ba34ff7b798ab279f64d204d2e86d7a373968f8fa36d0e6fa",
}


def _v1(enc: str) -> ModelSpec:
    size = SIZE_NAMES[enc]
    hub = f"LiheYoung/depth_anything_{enc}14"
    hf = f"LiheYoung/depth-anything-{SHORT[enc]}-hf"
    space_file = f"depth_anything_{enc}14.pth"
    return ModelSpec(
        name=f"da1-{SHORT[enc]}",
        arch=make_arch(enc, "v1"),
        preprocess=V1_PRE,
        weights=(
            WeightSource("v1_hub", hub, "pytorch_model.bin", config_filename="config.json"),
            WeightSource("official", "LiheYoung/Depth-Anything", f"checkpoints/{space_file}", "space",
                         sha256=_SHA256.get(space_file)),
            WeightSource("transformers", hf, "model.safetensors", config_filename="config.json"),
        ),
        licence=V1_LICENCE,
        aliases=(hub, hf),
        description=f"Depth Anything V1 {size}: relative disparity",
    )


def _v2(enc: str) -> ModelSpec:
    size = SIZE_NAMES[enc]
    repo = f"depth-anything/Depth-Anything-V2-{size}"
    filename = f"depth_anything_v2_{enc}.pth"
    sources: tuple[WeightSource, ...] = ()
    aliases: tuple[str, ...] = ()
    if enc != "vitg":  # the Giant was announced but never released
        sources = (
            WeightSource("official", repo, filename, sha256=_SHA256.get(filename)),
            WeightSource("transformers", f"{repo}-hf", "model.safetensors", config_filename="config.json"),
        )
        aliases = (repo, f"{repo}-hf")
    return ModelSpec(
        name=f"da2-{SHORT[enc]}",
        arch=make_arch(enc, "v2"),
        preprocess=V2_PRE,
        weights=sources,
        licence="Apache-2.0" if enc == "vits" else "CC-BY-NC-4.0",
        aliases=aliases,
        description=f"Depth Anything V2 {size}: relative disparity"
        + (" (weights never released)" if enc == "vitg" else ""),
    )


def _v2_metric(enc: str, domain: Literal["indoor", "outdoor"]) -> ModelSpec:
    size = SIZE_NAMES[enc]
    dataset, max_depth = ("Hypersim", 20.0) if domain == "indoor" else ("VKITTI", 80.0)
    repo = f"depth-anything/Depth-Anything-V2-Metric-{dataset}-{size}"
    hf = f"depth-anything/Depth-Anything-V2-Metric-{domain.capitalize()}-{size}-hf"
    return ModelSpec(
        name=f"da2-metric-{domain}-{SHORT[enc]}",
        arch=make_arch(enc, "v2", "metric", max_depth),
        preprocess=V2_PRE,
        weights=(
            WeightSource("official", repo, f"depth_anything_v2_metric_{dataset.lower()}_{enc}.pth"),
            WeightSource("transformers", hf, "model.safetensors", config_filename="config.json"),
        ),
        licence=METRIC_LICENCE,
        aliases=(repo, hf),
        description=f"Depth Anything V2 {size} metric {domain} ({dataset}): depth in metres, max {max_depth:g} m",
    )


# The two official head configurations (metric_depth/zoedepth/models/zoedepth/): config_zoedepth.json, and
# config_zoedepth_kitti.json on top of it (applied only with config_version=kitti; the released files do not use it).
ZOE_PRESETS: dict[str, ZoeConfig] = {
    "softplus": ZoeConfig(),
    "normed": ZoeConfig(bin_centers_type="normed", img_size=(384, 768)),
}
# The ZoeDepth models' preprocessing: ImageNet mean/std; the pipeline pads, resizes to ``zoe.img_size`` itself and
# averages flips (depthany.inference.ZoeDepthPipeline). ``input_size`` (the network height) is only reported.
ZOE_PRE = Preprocess(input_size=ZOE_PRESETS["softplus"].img_size[0], output_align_corners=False, pipeline="zoedepth")
ZOE_LICENCE = "unspecified (no licence stated for the metric weights; Apache-2.0 code, ZoeDepth parts MIT)"
ZOE_SPACE = "LiheYoung/Depth-Anything"


def _da1_metric(domain: Literal["indoor", "outdoor"]) -> ModelSpec:
    """V1 metric (ZoeDepth) models. Both released files hold the default ``config_zoedepth.json`` head (softplus
    centres, 392x518): the official evaluation command builds that head for both and loads strictly.
    ``max_depth`` is the dataset config's (NYU 10 m, KITTI 80 m)."""
    dataset, max_depth = ("NYUv2", 10.0) if domain == "indoor" else ("KITTI", 80.0)
    filename = f"checkpoints_metric_depth/depth_anything_metric_depth_{domain}.pt"
    return ModelSpec(
        name=f"da1-metric-{domain}-large",
        arch=make_zoe_arch("vitl", max_depth),
        preprocess=ZOE_PRE,
        weights=(WeightSource("zoedepth", ZOE_SPACE, filename, "space"),),
        licence=ZOE_LICENCE,
        description=f"Depth Anything V1 Large metric {domain} (ZoeDepth head, {dataset}): depth in metres, "
                    f"max {max_depth:g} m",
    )


def _vda(enc: str, head: HeadKind) -> ModelSpec:
    """Video Depth Anything: README "Pre-trained Models" table and get_weights.sh (docs/video_depth_anything.md).

    Small is Apache-2.0 (README; HF tags of both Small repos), Base/Large CC-BY-NC-4.0 (README).
    """
    size = SIZE_NAMES[enc]
    metric = head == "metric"
    repo = f"depth-anything/{'Metric-' if metric else ''}Video-Depth-Anything-{size}"
    filename = f"{'metric_' if metric else ''}video_depth_anything_{enc}.pth"
    what = "depth in metres (unbounded)" if metric else "relative disparity"
    return ModelSpec(
        name=f"vda-{'metric-' if metric else ''}{SHORT[enc]}",
        arch=make_arch(enc, "vda", head),
        preprocess=VDA_PRE,
        weights=(WeightSource("official", repo, filename, sha256=_SHA256.get(filename)),),
        licence="Apache-2.0" if enc == "vits" else "CC-BY-NC-4.0",
        aliases=(repo,),
        description=f"Video Depth Anything {size}{' metric' if metric else ''}: temporally consistent {what}",
        video=VDA_WINDOWS,
    )


# The bundled default model is trained by depthany itself on synthetic worlds (see docs/bundled_model.md).
BUNDLED_NAME = "da2-mini"
_MINI = ModelSpec(
    name=BUNDLED_NAME,
    arch=make_arch("vitt", "v2"),
    preprocess=Preprocess(input_size=224, output_align_corners=True),  # = its training crop
    weights=(WeightSource("depthany", bundled="assets/da2-mini.safetensors"),),
    licence="Apache-2.0",
    description="depthany's own ViT-Tiny DPT trained on synthetic worlds (bundled; not for real photos)",
)

# Depth Anything 3 (ByteDance-Seed/Depth-Anything-3: configs/*.yaml, README; see docs/depth_anything_3.md).
# upper_bound_resize to 504 is the default of DepthAnything3.inference (api.py).
DA3_PRE = Preprocess(input_size=504, output_align_corners=False, resize="upper_bound_resize")
DA3_METRIC_FOCAL = 300.0  # README: metric_depth = focal * net_output / 300 (focal in pixels)
DA3_MONO_LAYERS = (4, 11, 17, 23)
# Any-view sizes: tapped blocks (out_layers), alt_start (= qknorm_start = rope_start), DualDPT features and
# out_channels. The head and camera decoder read 2 x embed dim (cat_token), the camera encoder writes embed dim.
DA3_ANYVIEW: dict[str, tuple[tuple[int, ...], int, int, tuple[int, int, int, int]]] = {
    "vits": ((5, 7, 9, 11), 4, 64, (48, 96, 192, 384)),
    "vitb": ((5, 7, 9, 11), 4, 128, (96, 192, 384, 768)),
    "vitl": ((11, 15, 19, 23), 8, 256, (256, 512, 1024, 1024)),
    "vitg": ((19, 27, 33, 39), 13, 256, (256, 512, 1024, 1024)),
}
DA3_HUB = "depth-anything"
# Official preset names (config.json "model_name" = configs/<name>.yaml) -> the zoo entry with that network.
DA3_PRESETS: dict[str, str] = {
    "da3mono-large": "da3-mono-large", "da3metric-large": "da3-metric-large", "da3-small": "da3-small",
    "da3-base": "da3-base", "da3-large": "da3-large", "da3-giant": "da3-giant",
}


def _da3_source(repo: str) -> tuple[WeightSource, ...]:
    return (WeightSource("da3", f"{DA3_HUB}/{repo}", "model.safetensors", config_filename="config.json"),)


def _da3_mono(head: Literal["depth", "focal_metric"]) -> ModelSpec:
    enc = "vitl"
    features, out_channels = HEAD_WIDTHS[enc]
    arch = Arch(ENCODERS[enc], DA3_MONO_LAYERS, features, out_channels, head, family="da3",
                metric_focal=DA3_METRIC_FOCAL if head == "focal_metric" else None)
    repo = "DA3MONO-LARGE" if head == "depth" else "DA3METRIC-LARGE"
    what = ("relative depth + sky" if head == "depth" else
            f"metric depth (m = output x focal_px / {DA3_METRIC_FOCAL:g}) + sky")
    return ModelSpec(
        name="da3-mono-large" if head == "depth" else "da3-metric-large",
        arch=arch, preprocess=DA3_PRE, weights=_da3_source(repo), licence="Apache-2.0",
        aliases=(f"{DA3_HUB}/{repo}",), description=f"Depth Anything 3 {repo.title()}: {what}",
    )


def _da3_anyview(enc: str, repo: str, name: str, note: str = "") -> ModelSpec:
    layers, alt, features, out_channels = DA3_ANYVIEW[enc]
    arch = Arch(ENCODERS[enc], layers, features, out_channels, "multiview", family="da3",
                views=ViewAttention(alt, alt, alt), gaussian_head=enc == "vitg")
    return ModelSpec(
        name=name, arch=arch, preprocess=DA3_PRE, weights=_da3_source(repo),
        licence="Apache-2.0" if enc in ("vits", "vitb") else "CC-BY-NC-4.0", aliases=(f"{DA3_HUB}/{repo}",),
        description=f"Depth Anything 3 any-view {SIZE_NAMES[enc]} ({repo}): depth, confidence, cameras{note}",
    )


_DA3: tuple[ModelSpec, ...] = (
    _da3_mono("depth"),
    _da3_mono("focal_metric"),
    _da3_anyview("vits", "DA3-SMALL", "da3-small"),
    _da3_anyview("vitb", "DA3-BASE", "da3-base"),
    # "-1.1": retrained after a training-bug fix; the README deprecates the original Large/Giant files
    _da3_anyview("vitl", "DA3-LARGE-1.1", "da3-large"),
    _da3_anyview("vitl", "DA3-LARGE", "da3-large-1.0", "; original release, deprecated upstream"),
    _da3_anyview("vitg", "DA3-GIANT-1.1", "da3-giant"),
    _da3_anyview("vitg", "DA3-GIANT", "da3-giant-1.0", "; original release, deprecated upstream"),
)

_ALL: tuple[ModelSpec, ...] = (
    *(_v1(e) for e in ("vits", "vitb", "vitl")),
    *(_v2(e) for e in ("vits", "vitb", "vitl", "vitg")),
    *(_v2_metric(e, d) for d in ("indoor", "outdoor") for e in ("vits", "vitb", "vitl")),
    *(_da1_metric(d) for d in ("indoor", "outdoor")),
    *(_vda(e, h) for h in ("relative", "metric") for e in ("vits", "vitb", "vitl")),
    _MINI,
    *_DA3,
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in _ALL}
ALIASES: dict[str, str] = {a.lower(): m.name for m in _ALL for a in m.aliases}


def list_models() -> list[str]:
    """All zoo names, in table order."""
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    """Look up a zoo name or a Hugging Face repo alias (case-insensitive).

    Raises:
        ValueError: naming the unknown model and listing the known ones.
    """
    key = name.strip()
    if key in MODELS:
        return MODELS[key]
    if key.lower() in ALIASES:
        return MODELS[ALIASES[key.lower()]]
    close = closest_names(key)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown model {name!r}; {hint}known models: {', '.join(MODELS)}")


def closest_names(name: str, n: int = 3) -> list[str]:
    """The zoo names nearest to ``name`` in spelling (against names and repo aliases, ignoring case and ``_``):
    those within 0.05 of the best similarity ratio, at most ``n``, best first; none below a ratio of 0.6."""
    key = name.strip().lower().replace("_", "-")
    candidates = {**ALIASES, **{m.lower(): m for m in MODELS}}  # spelling -> zoo name
    if key in candidates:
        return [candidates[key]]
    best: dict[str, float] = {}
    for text, model in candidates.items():
        ratio = difflib.SequenceMatcher(None, key, text).ratio()
        best[model] = max(ratio, best.get(model, 0.0))
    ranked = sorted((r, m) for m, r in best.items() if r >= 0.6)[::-1]
    return [m for r, m in ranked if r >= ranked[0][0] - 0.05][:n] if ranked else []


def preferred_source(spec: ModelSpec, name: str | None = None) -> WeightSource | None:
    """The weight source to use for ``spec``: the one whose repo was named, else the first listed."""
    if name is not None:
        for src in spec.weights:
            if src.repo_id and src.repo_id.lower() == name.strip().lower():
                return src
    return spec.weights[0] if spec.weights else None


def with_arch(spec: ModelSpec, **changes: object) -> ModelSpec:
    """A copy of ``spec`` with architecture fields replaced (used for custom and test-sized models)."""
    return dataclasses.replace(spec, arch=dataclasses.replace(spec.arch, **changes))  # type: ignore[arg-type]


def da3_preset(arch: Arch) -> str | None:
    """The official DA3 preset name (``config.json`` ``model_name``) of an architecture, None if it has none."""
    for preset, name in DA3_PRESETS.items():
        if MODELS[name].arch == arch:
            return preset
    return None
