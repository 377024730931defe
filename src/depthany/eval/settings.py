"""Per-dataset evaluation settings: depth range, crop, mask semantics and fit resolution.

Each dataset reader says which settings the reference implementations use for it, separately for the
relative (affine-invariant, Marigold-style) protocols and the metric (ZoeDepth-style) protocol. Users can
override any field; the settings actually used are stored with every result.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from .crops import CROP_ORDERS, CROPS

MaskMode = Literal["range", "mask_only", "range_and_mask"]
MASK_MODES: tuple[str, ...] = ("range", "mask_only", "range_and_mask")
Family = Literal["relative", "metric"]


@dataclass(frozen=True)
class EvalSettings:
    """How ground truth becomes the set of evaluated pixels, and how predictions are clipped.

    Attributes:
        min_depth: metres; GT must be strictly greater (``gt > min_depth``). Also the lower prediction clip.
        max_depth: metres (may be ``inf``); GT must be strictly smaller. Also the upper prediction clip.
        crop: evaluation crop, one of :data:`depthany.eval.crops.CROPS`.
        crop_order: KITTI only, ``"kb_then_fraction"`` (ZoeDepth/Marigold) or ``"fraction_on_full"`` (BTS).
        mask_mode: ``"range"``: the depth range only (a mask file is ignored, as ZoeDepth does);
            ``"mask_only"``: the dataset's mask file only, no range filter (Marigold on DIODE);
            ``"range_and_mask"``: both (RGB-D folders, file lists with masks). ``gt > 0`` is always required.
        alignment_max_res: fit scale/shift on a nearest-downsampled copy whose longer side is at most this
            (Marigold: 1024 for ETH3D); metrics stay at full resolution.
        alignment_downsample: ``"width"`` (Marigold-exact, see :func:`depthany.eval.align.downsample_for_fit`)
            or ``"both"``.
        source: where these numbers come from (reference file), stored with results.
    """

    min_depth: float
    max_depth: float
    crop: str = "none"
    crop_order: str = "kb_then_fraction"
    mask_mode: str = "range_and_mask"
    alignment_max_res: int | None = None
    alignment_downsample: str = "width"
    source: str = ""

    def __post_init__(self) -> None:
        if not (self.min_depth >= 0 and math.isfinite(self.min_depth)):
            raise ValueError(f"min_depth must be a finite number >= 0, got {self.min_depth}")
        if not self.max_depth > self.min_depth:
            raise ValueError(f"max_depth ({self.max_depth}) must be greater than min_depth ({self.min_depth})")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.crop_order not in CROP_ORDERS:
            raise ValueError(f"crop_order must be one of {', '.join(CROP_ORDERS)}, got {self.crop_order!r}")
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {', '.join(MASK_MODES)}, got {self.mask_mode!r}")
        if self.alignment_max_res is not None and self.alignment_max_res < 1:
            raise ValueError(f"alignment_max_res must be >= 1, got {self.alignment_max_res}")
        if self.alignment_downsample not in ("width", "both"):
            raise ValueError(f"alignment_downsample must be 'width' or 'both', got {self.alignment_downsample!r}")

    def replace(self, **changes: Any) -> EvalSettings:
        """A copy with the given non-None fields changed (``None`` means "keep")."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            changes.setdefault("source", self.source + " (overridden: " + ", ".join(sorted(changes)) + ")")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["max_depth"] = None if math.isinf(self.max_depth) else self.max_depth  # JSON has no inf
        d["max_depth_is_inf"] = math.isinf(self.max_depth)
        return d
