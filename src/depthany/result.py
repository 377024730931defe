"""The typed results of depth predictions: what the numbers are, in which unit, from which model.

Three kinds of single-image values (:data:`OutputKind`):

``relative_disparity``
    Depth Anything V1/V2 and Video Depth Anything relative models: affine-invariant inverse depth, bigger =
    nearer, unknown scale and shift, no unit.
``relative_depth``
    DA3Mono: depth up to an unknown scale, bigger = farther, no unit (0 stays at the camera: no shift).
``metric_depth``
    metric models (V1/V2 metric, ZoeDepth, DA3Metric with a focal length): z-depth in metres.

:class:`MultiViewResult` holds the any-view Depth Anything 3 output for a set of views of one scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

OutputKind = Literal["relative_disparity", "relative_depth", "metric_depth"]
OUTPUT_KINDS: tuple[str, ...] = ("relative_disparity", "relative_depth", "metric_depth")
DEPTH_KINDS: tuple[str, ...] = ("relative_depth", "metric_depth")  # values grow with distance


@dataclass
class DepthResult:
    """One prediction at the original image size.

    Attributes:
        values: (H, W) float32, at the image's size (or at the network's processing size when the model ran with
            ``resolution="network"``, Depth Anything 3). For ``kind == "relative_disparity"``: affine-invariant
            inverse depth (bigger = nearer, unknown scale and shift, no unit). For ``"relative_depth"``: depth up
            to an unknown scale (bigger = farther, no unit). For ``"metric_depth"``: depth in metres along the
            optical axis.
        kind: what ``values`` holds.
        model: zoo name (or a description of the weights) that produced it.
        image_size: (H, W) of the input image, in pixels.
        network_size: (h, w) the network ran at, in pixels (multiples of 14).
        source: where the image came from (a path), when known.
        meta: free-form provenance (input size, precision, device, weights file, intrinsics...); per-image extra
            outputs under ``meta["extras"]`` (Depth Anything 3: ``"sky"``, an (h, w) bool sky mask the size of
            ``values``).
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
        """``"m"`` for metric depth; ``None`` for relative disparity and relative depth (no unit)."""
        return "m" if self.kind == "metric_depth" else None

    @property
    def is_metric(self) -> bool:
        """True for depth in metres."""
        return self.kind == "metric_depth"

    @property
    def is_depth(self) -> bool:
        """True when ``values`` grow with distance (metric or relative depth); False for disparity."""
        return self.kind in DEPTH_KINDS

    @property
    def sky(self) -> np.ndarray | None:
        """(h, w) bool sky mask of the size of ``values`` (Depth Anything 3 mono/metric), else None."""
        sky = (self.meta.get("extras") or {}).get("sky")
        return None if sky is None else np.asarray(sky, dtype=bool)

    @property
    def depth(self) -> np.ndarray:
        """(H, W) float32 depth: metres for metric results, depth up to an unknown scale for relative depth.

        Raises:
            ValueError: for relative disparity, whose inverse has an unknown scale *and shift* (no depth map at
                all until calibrated: ``depthany calibrate`` / :mod:`depthany.geometry.calibrate`).
        """
        if not self.is_depth:
            raise ValueError(
                "this result is relative disparity (unknown scale and shift), not depth; "
                "use a metric model or calibrate it with known distances first"
            )
        return self.values

    @property
    def disparity(self) -> np.ndarray:
        """(H, W) float32 inverse depth: the values of a relative-disparity result; 1/depth for depth kinds (1/m
        for metric depth, up to scale for relative depth), 0 where depth is <= 0."""
        if not self.is_depth:
            return self.values
        with np.errstate(divide="ignore"):
            inv = np.where(self.values > 0, 1.0 / np.maximum(self.values, 1e-12), 0.0)
        return inv.astype(np.float32)

    def describe(self) -> str:
        """One line saying what the numbers are."""
        v = self.values
        what = {"metric_depth": "metric depth [m]",
                "relative_depth": "relative depth (bigger = farther, unknown scale, no unit)",
                }.get(self.kind, "relative disparity (bigger = nearer, no unit)")
        return (f"{self.model}: {what}, {v.shape[1]}x{v.shape[0]} px, range "
                f"{float(np.nanmin(v)):.4g}..{float(np.nanmax(v)):.4g}, network {self.network_size[1]}x"
                f"{self.network_size[0]}")


@dataclass
class MultiViewResult:
    """N views of one scene through an any-view Depth Anything 3 model (``depthany multiview``).

    All views share one world frame (the model's, trained to be the reference view's camera) and one unknown scale: depths and camera
    translations are relative (no unit) but consistent across the views.

    Attributes:
        depth: (N, h, w) float32 z-depth of each view (bigger = farther), scene scale.
        conf: (N, h, w) float32 confidence (>= 1, bigger = more confident).
        extrinsics: (N, 3, 4) float32 world-to-camera ``[R | t]`` (OpenCV camera axes: x right, y down, z
            forward); ``x_cam = R @ x_world + t``.
        intrinsics: (N, 3, 3) float32 pinhole intrinsics in pixels of the ``(h, w)`` maps.
        names: N view names (file names, or ``view<i>``).
        image_sizes: N (H, W) sizes of the input images.
        network_size: (h', w') the network ran at (processing resolution, multiples of 14).
        resolution: ``"network"`` (maps at the processing resolution, exactly the official output) or ``"image"``
            (each view's maps resized to its image; ``h, w`` then differ per view only if the images do).
        reference: index of the reference view (world frame).
        model: zoo name of the model.
        images: (N, h, w, 3) uint8 each view's picture at the maps' resolution (network: the official
            ``processed_images``, the colours of the exports; image: the images as read), or None.
        sky: (N, h, w) bool sky masks when the model predicts sky, else None (the any-view models do not).
        meta: provenance.
    """

    depth: np.ndarray
    conf: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    names: list[str]
    image_sizes: list[tuple[int, int]]
    network_size: tuple[int, int]
    resolution: str
    reference: int
    model: str
    images: np.ndarray | None = None
    sky: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"relative_depth"``: depth up to the scene's unknown scale."""
        return "relative_depth"

    @property
    def unit(self) -> str | None:
        """None: the scene's scale is unknown (one scale shared by every view and the camera translations)."""
        return None

    def __len__(self) -> int:
        return int(self.depth.shape[0])

    @property
    def camera_to_world(self) -> np.ndarray:
        """(N, 4, 4) float64 camera-to-world poses (the inverses of ``extrinsics``)."""
        n = len(self)
        w2c = np.tile(np.eye(4), (n, 1, 1))
        w2c[:, :3, :4] = self.extrinsics
        return np.linalg.inv(w2c)
