"""Procedural texture families evaluated in surface coordinates (metres), with analytic anti-aliasing.

A texture maps surface coordinates (u, v) in metres to a linear-RGB albedo. Because (u, v) are physical
lengths on the surface, a pattern's image shrinks with distance and foreshortens with slant exactly as
real surface markings do: the texture-gradient depth cue comes for free.

Each family also receives the pixel ``footprint`` on the surface (metres per pixel). Stripes, checkers
and brick mortar are box-filtered exactly over it; noise octaves and per-brick variation finer than a
pixel fade to their mean. Distant surfaces therefore blur to their average colour instead of aliasing.

Families (``FAMILIES``): plain, gradient, noise, stripes, checker, bricks, marble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .noise import fbm, hash2

FAMILIES: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checker", "bricks", "marble")

RGB = tuple[float, float, float]


def _square_integral(x: np.ndarray, duty: float) -> np.ndarray:
    """Integral from 0 to x of the unit-period square wave that is 1 on [0, duty) of each period."""
    fl = np.floor(x)
    return fl * np.float32(duty) + np.minimum(x - fl, np.float32(duty))


def filtered_square(x: np.ndarray, width: np.ndarray, duty: float = 0.5) -> np.ndarray:
    """Square wave (1 on [0, duty) of each unit period) box-filtered over ``width`` periods; float32 [0, 1].

    Exact: the difference of the wave's integral at the two ends of the filter window, divided by its width.
    """
    w = np.maximum(width, np.float32(1e-4))
    return (_square_integral(x + w / 2, duty) - _square_integral(x - w / 2, duty)) / w


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend colours a, b of shape (3, 1) by weights t (...) -> (3, ...)."""
    return a + (b - a) * t[None]


@dataclass(frozen=True)
class Texture:
    """A procedural texture.

    Attributes:
        family: one of ``FAMILIES``.
        colors: three linear-RGB colours in [0, 1]; families use the first two, some the third as accent.
        scale: pattern period in metres (stripe pair, checker pair, brick height, noise feature size).
        angle: rotation of the pattern in the surface, radians.
        seed: integer seed of the noise and per-brick colour variation.
        grime: strength in [0, 1) of a large-scale brightness variation laid over every family.
        duty: fraction of the period in colour 0 (stripes) or mortar width as a fraction of the brick
            height (bricks).
        aspect: brick width / height.
    """

    family: str
    colors: tuple[RGB, RGB, RGB]
    scale: float = 1.0
    angle: float = 0.0
    seed: int = 0
    grime: float = 0.0
    duty: float = 0.5
    aspect: float = 2.0

    def __post_init__(self) -> None:
        # Python numbers only: numpy float64 scalars would promote the float32 arithmetic.
        object.__setattr__(self, "colors", tuple(tuple(float(x) for x in c) for c in self.colors))
        for name in ("scale", "angle", "grime", "duty", "aspect"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "seed", int(self.seed))
        if len(self.colors) != 3 or any(len(c) != 3 for c in self.colors):
            raise ValueError(f"texture colors must be three RGB triples, got {self.colors}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown texture family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if not self.scale > 0:
            raise ValueError(f"texture scale must be positive, got {self.scale}")

    def evaluate(self, u: np.ndarray, v: np.ndarray, footprint: np.ndarray | float = 0.0) -> np.ndarray:
        """Albedo at surface coordinates.

        Args:
            u, v: (...) float32 surface coordinates in metres.
            footprint: (...) or scalar, size of one pixel on the surface in metres.

        Returns:
            (3, ...) float32 linear RGB in [0, 1].
        """
        c, s = np.float32(math.cos(self.angle)), np.float32(math.sin(self.angle))
        inv = np.float32(1.0 / self.scale)
        x = (c * u - s * v) * inv
        y = (s * u + c * v) * inv
        fp = np.asarray(footprint, np.float32) * inv  # footprint in pattern periods
        cols = [np.asarray(col, np.float32).reshape((3,) + (1,) * np.ndim(u)) for col in self.colors]
        out = getattr(self, f"_{self.family}")(x, y, fp, *cols)
        if self.grime > 0:
            g = fbm(u * np.float32(0.37), v * np.float32(0.37), self.seed + 17, 3,
                    np.asarray(footprint, np.float32) * np.float32(0.37))
            out = out * (np.float32(1 - self.grime) + np.float32(2 * self.grime) * g)[None]
        return np.clip(out, 0, 1).astype(np.float32)

    # One method per family: (x, y) in pattern periods, fp = pixel footprint in periods, c0..c2 (3, 1...).

    def _plain(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        return np.broadcast_to(c0, (3,) + np.shape(x)).astype(np.float32)

    def _gradient(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        tri = np.abs((x - np.floor(x)) * 2 - 1)  # 1 -> 0 -> 1 over a period: no seams
        t = tri * tri * (3 - 2 * tri)
        return _mix(c0, c1, t)

    def _noise(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        n = fbm(x, y, self.seed, 5, fp)
        base = _mix(c0, c1, n)
        accent = np.clip((n - np.float32(0.72)) * 6, 0, 1)
        return _mix(base, c2, accent)

    def _stripes(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        return _mix(c1, c0, filtered_square(x, fp, self.duty))

    def _checker(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        # Box filtering is separable, so the filtered XOR of two square waves is exact.
        a, b = filtered_square(x, fp), filtered_square(y, fp)
        return _mix(c0, c1, a + b - 2 * a * b)

    def _bricks(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        # y counts brick rows (height = 1 period); x is shifted by half a brick on odd rows.
        aspect = float(self.aspect)
        row = np.floor(y)
        xs = x / np.float32(aspect) + np.float32(0.5) * (row.astype(np.int64) & 1)
        col = np.floor(xs)
        mortar = min(max(self.duty, 0.02), 0.4)
        brick_v = filtered_square(y, fp, 1 - mortar)
        brick_u = filtered_square(xs, fp / np.float32(aspect), 1 - mortar / aspect)
        jitter = hash2(col.astype(np.int64), row.astype(np.int64), self.seed) - np.float32(0.5)
        jitter *= np.clip(np.float32(1.5) - 2 * fp, 0, 1)  # per-brick variation fades under a pixel
        brick = _mix(c0, c2, np.clip(jitter * np.float32(0.8) + np.float32(0.2), 0, 1))
        brick = brick * (np.float32(1) + np.float32(0.25) * jitter)[None]
        return _mix(c1, brick, brick_u * brick_v)

    def _marble(self, x: np.ndarray, y: np.ndarray, fp: np.ndarray, c0: Any, c1: Any, c2: Any) -> np.ndarray:
        n = fbm(x * np.float32(0.5), y * np.float32(0.5), self.seed, 4, fp * np.float32(0.5))
        vein = np.float32(0.5) + np.float32(0.5) * np.sin(np.float32(2 * math.pi) * (x + np.float32(3) * n))
        vein = vein ** 6 * np.clip(np.float32(1.5) - 2 * fp, 0, 1)  # veins a period wide fade under a pixel
        return _mix(c0, c1, vein)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "colors": [list(c) for c in self.colors], "scale": self.scale,
                "angle": self.angle, "seed": self.seed, "grime": self.grime, "duty": self.duty,
                "aspect": self.aspect}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Texture:
        colors = tuple(tuple(float(x) for x in c) for c in d["colors"])
        return cls(d["family"], colors, float(d["scale"]), float(d["angle"]),  # type: ignore[arg-type]
                   int(d["seed"]), float(d["grime"]), float(d["duty"]), float(d["aspect"]))


def parse_families(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"noise,stripes"`` (or a list) -> validated tuple of family names; None or "all" -> every family.

    Raises:
        ValueError: naming any unknown family.
    """
    if spec is None:
        return FAMILIES
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return FAMILIES
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        what = f"unknown texture famil{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)}" if bad else "no family"
        raise ValueError(f"{what} in {spec!r}; choose from {', '.join(FAMILIES)}")
    return tuple(dict.fromkeys(names))
