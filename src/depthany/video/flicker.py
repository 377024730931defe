"""Measuring flicker, and test sequences where the true depth does not change.

Flicker index: the mean absolute frame-to-frame change of the *normalised* maps, the [0, 1] positions on the
colour map that the viewer sees as colours, averaged over pixels and consecutive frame pairs. On a static
camera looking at a static scene the true depth does not change, so every bit of it is flicker or noise. 0.01
means that colours move by 1% of the colour map per frame on average. The *global* index takes the median
change instead of the mean absolute one: it counts only changes that move the whole picture (flicker proper)
and not independent pixel noise. The *relative* index divides the mean change by the pictures' contrast (mean
spatial standard deviation of the normalised map): a narrow colour range shows the same pixel noise larger,
and the relative index does not reward a washed-out picture for hiding it.

:func:`static_sequence` renders one synthetic world from a fixed camera ``n`` times with a different sensor
exposure, white balance and noise per frame (an auto-exposing camera): the pictures change, the depth does
not. :class:`SimulatedRelativeModel` stands in for a real relative model on such a sequence: it returns the
true disparity under a per-frame random affine map (the scale and shift every relative model re-estimates per
frame), plus pixel noise and sparse outliers (spikes at edges and in the sky that a real model shows and that
decide a per-frame min/max).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


class FlickerMeter:
    """Accumulate the flicker index of a stream of normalised maps.

    Feed (H, W) maps in [0, 1] (NaN = no value) with :meth:`add`. Over pixels valid in both of two
    consecutive maps, :attr:`value` is the mean absolute change and :attr:`global_value` the absolute median
    change (the part of the change that moves the whole picture, i.e. flicker without pixel noise), each
    averaged over frame pairs (NaN before two frames).
    """

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._sum = 0.0
        self._global = 0.0
        self._contrast = 0.0
        self.frames = 0
        self.pairs = 0

    def add(self, normalised: np.ndarray) -> None:
        cur = np.asarray(normalised, dtype=np.float32)
        finite = cur[np.isfinite(cur)]
        if finite.size:
            self._contrast += float(finite.std())
            self.frames += 1
        if self._prev is not None and self._prev.shape == cur.shape:
            diff = cur - self._prev
            diff = diff[np.isfinite(diff)]
            if diff.size:
                self._sum += float(np.abs(diff).mean())
                self._global += abs(float(np.median(diff)))
                self.pairs += 1
        self._prev = cur.copy()

    @property
    def value(self) -> float:
        """Mean absolute frame-to-frame change, in colour-map fractions per frame."""
        return self._sum / self.pairs if self.pairs else float("nan")

    @property
    def global_value(self) -> float:
        """Mean absolute median frame-to-frame change (whole-picture flicker)."""
        return self._global / self.pairs if self.pairs else float("nan")

    @property
    def contrast(self) -> float:
        """Mean spatial standard deviation of the maps: how much of the colour map a frame uses."""
        return self._contrast / self.frames if self.frames else float("nan")

    @property
    def relative_value(self) -> float:
        """:attr:`value` / :attr:`contrast`: change per frame relative to the picture's own contrast, which
        compares normalisations that stretch the same map differently (a narrow range shows noise larger)."""
        return self.value / self.contrast if self.contrast > 0 else float("nan")


def flicker_index(maps: Iterable[np.ndarray]) -> float:
    """Flicker index of a sequence of (H, W) normalised maps in [0, 1] (see :class:`FlickerMeter`)."""
    meter = FlickerMeter()
    for m in maps:
        meter.add(m)
    return meter.value


@dataclass
class StaticSequence:
    """Frames of a still scene seen by a still camera.

    Attributes:
        frames: list of (H, W, 3) uint8 RGB, one per exposure.
        depth: (H, W) float32 planar depth in metres (inf for sky), the same for every frame.
        valid: (H, W) bool where depth is finite and within the scene's range.
    """

    frames: list[np.ndarray]
    depth: np.ndarray
    valid: np.ndarray

    @property
    def disparity(self) -> np.ndarray:
        """(H, W) float32 1/depth in 1/m, 0 where invalid (sky)."""
        with np.errstate(divide="ignore"):
            return np.where(self.valid, 1.0 / self.depth, 0.0).astype(np.float32)


def static_sequence(n: int, height: int = 96, width: int = 128, seed: int = 0, kind: str = "indoor",
                    exposure_jitter: float = 0.35, noise: float = 0.02) -> StaticSequence:
    """Render one synthetic world once and expose it ``n`` times with per-frame sensor changes.

    Per frame: exposure bias ~ N(0, ``exposure_jitter``) stops, white balance gains ~ exp(N(0, 0.04)), sensor
    noise sigma ``noise`` with a fresh seed. Geometry, camera and lighting are identical in every frame.
    """
    from ..synth.raycast import trace
    from ..synth.sensor import expose
    from ..synth.shading import shade
    from ..synth.worlds import WorldConfig, make_scene

    scene = make_scene(seed, 0, WorldConfig(width, height, kind))
    rays = scene.camera.ray_directions()
    depth, shape_id = trace(scene.camera, scene.shapes, rays)
    radiance = shade(scene, depth, shape_id, rays)
    rng = np.random.default_rng(seed + 1)
    frames = []
    for i in range(n):
        r, g, b = (float(np.exp(rng.normal(0, 0.04))) for _ in range(3))
        sensor = dataclasses.replace(scene.sensor, exposure_bias=float(rng.normal(0, exposure_jitter)),
                                     white_balance=(r, g, b), noise=noise, seed=seed * 100_003 + i)
        frames.append(expose(radiance, sensor))
    valid = np.isfinite(depth) & (depth <= np.float32(scene.max_depth))
    return StaticSequence(frames, depth.astype(np.float32), valid)


def moving_sequence(n: int, height: int = 96, width: int = 128, seed: int = 0, kind: str = "indoor",
                    step: tuple[float, float, float] = (0.02, 0.03, 0.0), yaw_step: float = 0.004
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render one synthetic world from a camera that moves ``step`` metres (world x, y, z) and turns
    ``yaw_step`` radians per frame. Returns ``n`` (rgb (H, W, 3) uint8, planar depth (H, W) float32 metres)."""
    from ..synth.render import render
    from ..synth.worlds import WorldConfig, make_scene

    scene = make_scene(seed, 0, WorldConfig(width, height, kind))
    cam = scene.camera
    out = []
    for i in range(n):
        x, y, z = (float(p + i * d) for p, d in zip(cam.position, step))
        pos = (x, y, z)
        moved = dataclasses.replace(scene, camera=dataclasses.replace(cam, position=pos, yaw=cam.yaw + i * yaw_step))
        r = render(moved)
        out.append((r.rgb, r.depth.astype(np.float32)))
    return out


class SimulatedRelativeModel:
    """Per-frame outputs of an imperfect relative model, from the true disparity.

    Frame t returns ``s_t * disparity + t_t + noise + spikes`` where ``log s_t ~ N(0, scale_jitter)``,
    ``t_t ~ N(0, shift_jitter * spread)``, ``noise ~ N(0, noise * spread)`` per pixel and a fraction
    ``spike_fraction`` of pixels gets ``+-U(0, spike * spread)``; ``spread`` is the 1..99th percentile span of
    the true disparity. With ``spike=0`` and ``noise=0`` a per-frame min/max normalisation would remove the
    affine change exactly; the spikes are what make it flicker, as in real outputs.
    """

    def __init__(self, disparity: np.ndarray, seed: int = 0, scale_jitter: float = 0.1, shift_jitter: float = 0.05,
                 noise: float = 0.01, spike_fraction: float = 0.002, spike: float = 0.3) -> None:
        self.disparity = np.asarray(disparity, dtype=np.float64)
        lo, hi = np.percentile(self.disparity, [1, 99])
        self.spread = float(hi - lo) or 1.0
        self.rng = np.random.default_rng(seed)
        self.scale_jitter, self.shift_jitter, self.noise = scale_jitter, shift_jitter, noise
        self.spike_fraction, self.spike = spike_fraction, spike

    def __call__(self, disparity: np.ndarray | None = None) -> np.ndarray:
        """The next frame's (H, W) float32 prediction (of ``disparity`` if given: a moving camera)."""
        d = self.disparity if disparity is None else np.asarray(disparity, dtype=np.float64)
        s = float(np.exp(self.rng.normal(0, self.scale_jitter)))
        t = float(self.rng.normal(0, self.shift_jitter * self.spread))
        out = s * d + t + self.rng.normal(0, self.noise * self.spread, d.shape)
        spikes = self.rng.random(d.shape) < self.spike_fraction
        out[spikes] += self.rng.uniform(-self.spike, self.spike, int(spikes.sum())) * self.spread
        return out.astype(np.float32)
