"""The model table: every number that defines a Depth Anything model lives here and nowhere else.

One frozen :class:`ModelSpec` per model name says what the network is (:class:`Arch`), how images are
prepared for it (:class:`Preprocess`), where its weights come from (:class:`WeightSource`) and under which
licence they are published. Facts come from the official repositories (see ``docs/models.md``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Literal

Family = Literal["v1", "v2"]
HeadKind = Literal["relative", "metric"]
FfnKind = Literal["mlp", "swiglu"]
WeightFormat = Literal["official", "v1_hub", "transformers", "depthany", "zoedepth"]
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
class Arch:
    """What the network is: encoder, tapped layers, decoder widths and output head.

    ``family`` only changes the top-level forward: V1 resizes the head output to the input size and applies
    a ReLU (both no-ops numerically), V2 relative applies a ReLU, V2 metric multiplies the sigmoid by
    ``max_depth`` (metres).

    ``zoe`` set: a V1 metric model, the ZoeDepth head (:class:`ZoeConfig`) on a relative V1 Depth Anything
    ("the core": encoder and DPT decoder as described by the other fields). Such an arch has ``head="metric"``
    (it outputs metres) and ``family="v1"``; ``max_depth`` is ZoeDepth's ``max_depth``.
    """

    encoder: EncoderSpec
    layers: tuple[int, ...]
    features: int
    out_channels: tuple[int, int, int, int]
    head: HeadKind = "relative"
    max_depth: float | None = None
    family: Family = "v2"
    zoe: ZoeConfig | None = None

    def __post_init__(self) -> None:
        if len(self.layers) != 4 or any(not 0 <= i < self.encoder.depth for i in self.layers):
            raise ValueError(f"layers must be 4 block indices in [0, {self.encoder.depth}), got {self.layers}")
        if self.zoe is not None and (self.head != "metric" or self.family != "v1"):
            raise ValueError("a ZoeDepth arch (zoe set) is a V1 metric model: head='metric', family='v1'")
        if self.head == "metric" and not self.max_depth:
            raise ValueError("a metric head needs max_depth (metres)")
        if self.head not in ("relative", "metric"):
            raise ValueError(f"head must be 'relative' or 'metric', got {self.head!r}")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes network input, and how the output returns to the image size.

    Lower-bound resize so both sides are >= ``input_size`` and multiples of ``multiple`` (bicubic, a=-0.75,
    no antialiasing, on the float image), then ``(x - mean) / std``. The output is resized back with
    bilinear interpolation; V2 scripts use ``align_corners=True``, V1 scripts ``False``.

    ``pipeline`` names the pre/post-processing code that applies these numbers (an entry of
    :data:`depthany.inference.PIPELINES`); families with another recipe register their own.
    """

    input_size: int = INPUT_SIZE
    multiple: int = PATCH_SIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output_align_corners: bool = True
    pipeline: str = "depth_anything"


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

    @property
    def output_kind(self) -> str:
        """``"metric_depth"`` (metres) or ``"relative_disparity"`` (affine-invariant inverse depth)."""
        return "metric_depth" if self.arch.head == "metric" else "relative_disparity"


def make_arch(
    encoder: str,
    family: Family = "v2",
    head: HeadKind = "relative",
    max_depth: float | None = None,
    layers: tuple[int, ...] | None = None,
) -> Arch:
    """Build the official architecture for an encoder size (``"vits"``, ...), family and head."""
    enc = ENCODERS[encoder]
    features, out_channels = HEAD_WIDTHS[encoder]
    if layers is None:
        table = V1_LAYERS if family == "v1" else V2_LAYERS
        if encoder not in table:
            raise ValueError(f"no {family} layer taps for encoder {encoder!r}")
        layers = table[encoder]
    return Arch(enc, layers, features, out_channels, head, max_depth, family)


def make_zoe_arch(encoder: str, max_depth: float, zoe: ZoeConfig | None = None) -> Arch:
    """A V1 metric (ZoeDepth) architecture on any zoo encoder: the core taps the last four blocks, as the
    official metric core does (``get_intermediate_layers(x, 4)``)."""
    depth = ENCODERS[encoder].depth
    arch = make_arch(encoder, "v1", "metric", max_depth, layers=tuple(range(depth - 4, depth)))
    return dataclasses.replace(arch, zoe=zoe if zoe is not None else ZoeConfig())


V1_PRE = Preprocess(output_align_corners=False)
V2_PRE = Preprocess(output_align_corners=True)
V1_LICENCE = "unspecified (no licence tag on the official model repo; Apache-2.0 code)"
METRIC_LICENCE = "unspecified (no licence tag on the official model repo)"
SIZE_NAMES = {"vits": "Small", "vitb": "Base", "vitl": "Large", "vitg": "Giant"}
SHORT = {"vits": "small", "vitb": "base", "vitl": "large", "vitg": "giant"}

# Published sha256 digests (V2 README / HF file pages).
_SHA256 = {
    "depth_anything_v2_vits.pth": "715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378",
    "depth_anything_v2_vitb.pth": "0d2b7002e62d39d655571c371333340bd88f67ab95050c03591555aa05645328",
    "depth_anything_vitl14.pth": "6c6a383e33e51c5fdfbf31e7ebcda943973a9e6a1cbef1564afe58d7f2e8fe63",
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

_ALL: tuple[ModelSpec, ...] = (
    *(_v1(e) for e in ("vits", "vitb", "vitl")),
    *(_v2(e) for e in ("vits", "vitb", "vitl", "vitg")),
    *(_v2_metric(e, d) for d in ("indoor", "outdoor") for e in ("vits", "vitb", "vitl")),
    *(_da1_metric(d) for d in ("indoor", "outdoor")),
    _MINI,
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
