"""Materials (texture + Blinn-Phong specular) and their random sampling by surface role.

Roles give plausible colour palettes and preferred texture families (grass-like ground, brick-like
buildings, wooden floors...) so images look like places; ``families`` restricts every surface to a subset
of texture families for domain-shift experiments. When a role's preferred families and the allowed ones do
not overlap, the role's palette is kept and the family is drawn from the allowed ones.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .textures import FAMILIES, RGB, Texture


@dataclass(frozen=True)
class Material:
    """A surface material.

    Attributes:
        texture: the albedo pattern.
        specular: Blinn-Phong specular coefficient in [0, 1].
        shininess: Blinn-Phong exponent (larger = smaller, sharper highlight).
    """

    texture: Texture
    specular: float = 0.0
    shininess: float = 16.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "specular", float(self.specular))
        object.__setattr__(self, "shininess", float(self.shininess))
        if not 0.0 <= self.specular <= 1.0:
            raise ValueError(f"specular must be in [0, 1], got {self.specular}")

    def to_dict(self) -> dict[str, Any]:
        return {"texture": self.texture.to_dict(), "specular": self.specular, "shininess": self.shininess}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Material:
        return cls(Texture.from_dict(d["texture"]), float(d["specular"]), float(d["shininess"]))


# role -> (hue ranges, saturation range, value range in sRGB) and preferred families.
_PALETTES: dict[str, tuple[list[tuple[float, float]], tuple[float, float], tuple[float, float]]] = {
    "any": ([(0.0, 1.0)], (0.05, 0.85), (0.2, 0.95)),
    "floor": ([(0.04, 0.12), (0.0, 1.0)], (0.05, 0.6), (0.2, 0.8)),
    "wall": ([(0.0, 1.0)], (0.0, 0.35), (0.55, 0.95)),
    "ceiling": ([(0.08, 0.15), (0.0, 1.0)], (0.0, 0.1), (0.75, 0.98)),
    "furniture": ([(0.03, 0.12), (0.0, 1.0)], (0.1, 0.8), (0.15, 0.9)),
    "ground": ([(0.17, 0.33), (0.05, 0.12), (0.0, 1.0)], (0.0, 0.6), (0.15, 0.6)),
    "building": ([(0.0, 0.1), (0.05, 0.15), (0.0, 1.0)], (0.0, 0.5), (0.3, 0.9)),
    "foliage": ([(0.18, 0.4), (0.05, 0.15)], (0.35, 0.85), (0.15, 0.6)),
    "bark": ([(0.04, 0.1)], (0.2, 0.6), (0.12, 0.4)),
    "metal": ([(0.0, 1.0)], (0.0, 0.2), (0.3, 0.85)),
    "road": ([(0.0, 1.0)], (0.0, 0.08), (0.1, 0.45)),
    "rock": ([(0.05, 0.15), (0.0, 1.0)], (0.0, 0.25), (0.25, 0.65)),
}
_PREFERRED: dict[str, tuple[str, ...]] = {
    "any": FAMILIES,
    "floor": ("checker", "stripes", "noise", "plain", "marble", "bricks"),
    "wall": ("plain", "stripes", "noise", "bricks", "gradient"),
    "ceiling": ("plain", "noise", "checker"),
    "furniture": ("plain", "stripes", "noise", "marble", "checker", "gradient"),
    "ground": ("noise", "checker", "bricks", "plain"),
    "building": ("bricks", "plain", "stripes", "noise", "checker"),
    "foliage": ("noise",),
    "bark": ("noise", "stripes"),
    "metal": ("plain", "gradient", "noise"),
    "road": ("noise", "stripes", "plain"),
    "rock": ("noise", "marble"),
}
# Typical pattern period in metres per role (log-uniform between the two).
_SCALES: dict[str, tuple[float, float]] = {
    "any": (0.05, 2.0), "floor": (0.1, 1.0), "wall": (0.1, 2.0), "ceiling": (0.3, 2.0),
    "furniture": (0.03, 0.5), "ground": (0.2, 4.0), "building": (0.15, 3.0), "foliage": (0.15, 1.0),
    "bark": (0.05, 0.3), "metal": (0.2, 2.0), "road": (0.5, 4.0), "rock": (0.1, 1.0),
}
ROLES: tuple[str, ...] = tuple(_PALETTES)


def srgb_to_linear(c: float) -> float:
    """One sRGB channel value in [0, 1] -> linear (the IEC 61966-2-1 curve)."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def sample_color(rng: np.random.Generator, role: str = "any") -> RGB:
    """A linear-RGB colour drawn from the role's palette."""
    hues, sat, val = _PALETTES[role]
    lo, hi = hues[int(rng.integers(len(hues)))]
    h = rng.uniform(lo, hi)
    rgb = colorsys.hsv_to_rgb(h % 1.0, rng.uniform(*sat), rng.uniform(*val))
    return tuple(srgb_to_linear(x) for x in rgb)  # type: ignore[return-value]


def _related(rng: np.random.Generator, base: RGB, spread: float) -> RGB:
    """A colour near ``base``: scaled brightness and a little hue noise."""
    k = math.exp(rng.normal(0, spread))
    return tuple(float(np.clip(c * k * math.exp(rng.normal(0, spread / 3)), 0, 1)) for c in base)  # type: ignore


def sample_material(rng: np.random.Generator, role: str = "any",
                    families: tuple[str, ...] = FAMILIES) -> Material:
    """A random material for a surface role.

    Args:
        rng: the sample's generator (consumed deterministically).
        role: one of ``ROLES``; sets palette, pattern size and preferred texture families.
        families: allowed texture families (non-empty subset of ``FAMILIES``).

    Raises:
        ValueError: unknown ``role`` or empty/unknown ``families``.
    """
    if role not in _PALETTES:
        raise ValueError(f"unknown material role {role!r}; expected one of {', '.join(ROLES)}")
    if not families or any(f not in FAMILIES for f in families):
        raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {families}")
    choices = [f for f in _PREFERRED[role] if f in families] or list(families)
    family = choices[int(rng.integers(len(choices)))]
    c0 = sample_color(rng, role)
    # Second colour: usually a variation of the first (natural materials), sometimes a contrasting one.
    c1 = _related(rng, c0, 0.5) if rng.random() < 0.6 else sample_color(rng, role)
    c2 = _related(rng, c0, 0.3) if rng.random() < 0.5 else sample_color(rng, "any")
    lo, hi = _SCALES[role]
    scale = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    aligned = role in ("wall", "building", "bark") or rng.random() < 0.5
    angle = 0.0 if aligned else float(rng.uniform(0, math.pi))
    texture = Texture(family, (c0, c1, c2), scale, angle, int(rng.integers(1 << 30)),
                      grime=float(rng.uniform(0.05, 0.35)) if rng.random() < 0.6 else 0.0,
                      duty=float(rng.uniform(0.05, 0.15)) if family == "bricks" else float(rng.uniform(0.2, 0.8)),
                      aspect=float(rng.choice([1.0, 2.0, 2.0, 3.0, 4.0])))
    glossy = role in ("metal", "floor", "furniture") and rng.random() < 0.5
    specular = float(rng.uniform(0.2, 0.7)) if glossy else float(rng.uniform(0.0, 0.08))
    shininess = float(math.exp(rng.uniform(math.log(8), math.log(160))))
    return Material(texture, specular, shininess)
