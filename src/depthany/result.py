"""The typed result of a depth prediction: what the numbers are, in which unit, from which model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

OutputKind = Literal["relative_disparity", "metric_depth"]


@dataclass
class DepthResult:
    """One prediction at the original image size.

    Attributes:
        values: (H, W) float32. For ``kind == "relative_disparity"``: affine-invariant inverse depth (bigger =
            nearer, unknown scale and shift, no unit). For ``kind == "metric_depth"``: depth in metres along
            the optical axis.
        kind: what ``values`` holds.
        model: zoo name (or a description of the weights) that produced it.
        image_size: (H, W) of the input image, in pixels.
        network_size: (h, w) the network ran at, in pixels (multiples of 14).
        source: where the image came from (a path), when known.
        meta: free-form provenance (input size, precision, device, weights file, intrinsics...).
    """

    values: np.ndarray
    kind: OutputKind
    model: str
    image_size: tuple[int, int]
    network_size: tuple[int, int]
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str | None:
        """``"m"`` for metric depth; ``None`` for relative disparity (no unit)."""
        return "m" if self.kind == "metric_depth" else None

    @property
    def is_metric(self) -> bool:
        return self.kind == "metric_depth"

    @property
    def depth(self) -> np.ndarray:
        """(H, W) float32 depth in metres. Only defined for metric results.

        Raises:
            ValueError: for relative disparity, whose inverse has an unknown scale and shift; calibrate it
                first (``depthany calibrate`` / :mod:`depthany.geometry.calibrate`).
        """
        if not self.is_metric:
            raise ValueError(
                "this result is relative disparity (unknown scale and shift), not metric depth; "
                "use a metric model or calibrate it with known distances first"
            )
        return self.values

    @property
    def disparity(self) -> np.ndarray:
        """(H, W) float32 relative disparity, or 1/depth (1/m) for metric results (0 where depth is 0)."""
        if not self.is_metric:
            return self.values
        with np.errstate(divide="ignore"):
            inv = np.where(self.values > 0, 1.0 / np.maximum(self.values, 1e-12), 0.0)
        return inv.astype(np.float32)

    def describe(self) -> str:
        """One line saying what the numbers are."""
        v = self.values
        what = "metric depth [m]" if self.is_metric else "relative disparity (bigger = nearer, no unit)"
        return (f"{self.model}: {what}, {v.shape[1]}x{v.shape[0]} px, range "
                f"{float(np.nanmin(v)):.4g}..{float(np.nanmax(v)):.4g}, network {self.network_size[1]}x"
                f"{self.network_size[0]}")
