"""Which world a sample shows: ``WorldConfig`` and ``make_scene(seed, index, config)``.

Sample ``index`` of a run with ``seed`` draws everything from one generator seeded with (seed, index),
so it is the same scene whatever the number of worker processes or the order samples are made in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .indoor import indoor_scene
from .outdoor import outdoor_scene
from .scene import Scene
from .textures import FAMILIES, parse_families

KINDS: tuple[str, ...] = ("indoor", "outdoor", "mixed")
DEFAULT_MAX_DEPTH = {"indoor": 20.0, "outdoor": 200.0, "mixed": 200.0}
GENERATOR_VERSION = 1  # bump when the same (seed, index, config) would render differently


@dataclass(frozen=True)
class WorldConfig:
    """What to render.

    Attributes:
        width, height: image size in pixels.
        kind: "indoor", "outdoor" or "mixed" (each sample indoor with probability ``indoor_fraction``).
        families: allowed texture families (subset of ``FAMILIES``).
        max_depth: planar depth in metres beyond which pixels are labelled invalid; None = 20 for indoor,
            200 otherwise.
        indoor_fraction: share of indoor samples when ``kind`` is "mixed".
        clean: no fog, sensor noise, lens blur or vignetting (exposure, gamma and white balance still
            vary). The random stream is unchanged, so sample i shows the same scene with or without it.
    """

    width: int = 256
    height: int = 256
    kind: str = "mixed"
    families: tuple[str, ...] = FAMILIES
    max_depth: float | None = None
    indoor_fraction: float = 0.5
    clean: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"size must be at least 8x8 pixels, got {self.width}x{self.height}")
        object.__setattr__(self, "families", parse_families(self.families))
        if self.max_depth is not None and not self.max_depth > 0:
            raise ValueError(f"max_depth must be positive, got {self.max_depth}")
        if not 0.0 <= self.indoor_fraction <= 1.0:
            raise ValueError(f"indoor_fraction must be in [0, 1], got {self.indoor_fraction}")

    @property
    def depth_limit(self) -> float:
        """``max_depth`` with the per-kind default filled in (metres)."""
        return self.max_depth if self.max_depth is not None else DEFAULT_MAX_DEPTH[self.kind]


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` in a run with ``seed`` (both non-negative integers)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def make_scene(seed: int, index: int, config: WorldConfig) -> Scene:
    """The scene of sample ``index`` of a run with ``seed``: a pure function of its arguments."""
    rng = sample_rng(seed, index)
    kind = config.kind
    if kind == "mixed":
        kind = "indoor" if rng.random() < config.indoor_fraction else "outdoor"
    build = indoor_scene if kind == "indoor" else outdoor_scene
    scene = build(rng, config.width, config.height, config.families, config.depth_limit)
    if config.clean:
        scene.environment = replace(scene.environment, fog_density=0.0)
        scene.sensor = replace(scene.sensor, noise=0.0, blur=0.0, vignette=0.0)
    scene.info = {"generator": "depthany.synth", "version": GENERATOR_VERSION, "seed": seed, "index": index,
                  "kind": kind, "families": list(config.families), "clean": config.clean}
    return scene
