"""A complete, JSON-serialisable scene: camera, shapes, materials, lights, environment and sensor settings.

``Scene.to_dict()`` is what the generator stores in each sample's ``meta/<stem>.json`` under ``"scene"``;
``Scene.from_dict()`` rebuilds the identical scene, so any sample can be re-rendered (or edited and
re-rendered) from its metadata alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .camera import Camera
from .labels import check_label
from .materials import Material
from .shapes import Shape, shape_from_dict, shape_to_dict
from .textures import RGB

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Light:
    """A light source with hard shadows.

    Attributes:
        kind: "sun" (directional, at infinity) or "point".
        vector: for "sun", the unit direction *towards* the sun; for "point", the position in metres.
        color: linear-RGB colour.
        intensity: "sun": irradiance on a surface facing it; "point": intensity, so irradiance at distance r
            metres is intensity / r**2.
    """

    kind: Literal["sun", "point"]
    vector: Vec3
    color: RGB = (1.0, 1.0, 1.0)
    intensity: float = 1.0

    def __post_init__(self) -> None:
        _python_numbers(self)
        if self.kind not in ("sun", "point"):
            raise ValueError(f"light kind must be 'sun' or 'point', got {self.kind!r}")
        if self.kind == "sun":
            v = np.asarray(self.vector, float)
            length = float(np.linalg.norm(v))
            if not length > 0:
                raise ValueError(f"sun direction must be non-zero, got {self.vector}")
            if abs(length - 1.0) > 1e-12:  # leave unit vectors bit-exact, so JSON round trips are exact
                v = v / length
            object.__setattr__(self, "vector", tuple(float(x) for x in v))


@dataclass(frozen=True)
class Environment:
    """Sky, ambient light and fog.

    Attributes:
        zenith, horizon: linear-RGB sky radiance straight up and at the horizon.
        ambient: linear-RGB ambient radiance from above (the sky or a ceiling's bounce light).
        ground_ambient: linear-RGB ambient radiance from below (bounce light off the ground or floor).
        clouds: cloud cover in [0, 1] (0 = clear sky).
        cloud_seed: noise seed of the clouds.
        fog_density: extinction per metre of ray length (0 = no fog); the fog colour is ``horizon``.
    """

    zenith: RGB = (0.25, 0.45, 0.9)
    horizon: RGB = (0.7, 0.8, 0.95)
    ambient: RGB = (0.2, 0.22, 0.25)
    ground_ambient: RGB = (0.08, 0.08, 0.07)
    clouds: float = 0.0
    cloud_seed: int = 0
    fog_density: float = 0.0

    def __post_init__(self) -> None:
        _python_numbers(self)


@dataclass(frozen=True)
class Sensor:
    """Exposure, tone curve and sensor imperfections applied to the linear image.

    Attributes:
        key: target geometric-mean brightness after exposure (auto-exposure), linear.
        exposure_bias: extra exposure in stops on top of auto-exposure (negative = darker).
        gamma: display gamma; the encoded value is linear ** (1 / gamma).
        white_balance: per-channel gains (R, G, B).
        vignette: fractional darkening at the image corners, in [0, 1).
        blur: Gaussian blur sigma in pixels (lens softness); 0 = none.
        noise: Gaussian read-noise sigma on the [0, 1] output scale; shot noise grows as sqrt(value).
        seed: seed of the noise pattern.
    """

    key: float = 0.18
    exposure_bias: float = 0.0
    gamma: float = 2.2
    white_balance: RGB = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _python_numbers(self)
        if not self.gamma > 0 or not self.key > 0:
            raise ValueError(f"sensor gamma and key must be positive, got gamma={self.gamma}, key={self.key}")


@dataclass
class Scene:
    """Everything needed to render one image.

    Attributes:
        camera: the camera.
        shapes: primitives; a pixel's ``shape_id`` in the rendering indexes this list.
        materials: ``shape.material`` indexes this list.
        lights: light sources (each casts shadows against every shape).
        environment: sky, ambient light, fog.
        sensor: exposure and sensor model.
        max_depth: planar depths beyond this (metres) are rendered but labelled invalid.
        groups: shape-index groups culled together by a bounding sphere when tracing shadow rays
            (a tree's leaves, a table's legs); shapes in no group are culled one by one.
        info: free-form provenance (seed, sample index, generator kind and version).
        labels: the semantic class of each shape (names in ``synth.labels.SYNTH_CLASSES``), or empty for
            scenes made before classes existed (their renderings have no label image).
    """

    camera: Camera
    shapes: list[Shape]
    materials: list[Material]
    lights: list[Light] = field(default_factory=list)
    environment: Environment = field(default_factory=Environment)
    sensor: Sensor = field(default_factory=Sensor)
    max_depth: float = 100.0
    groups: list[list[int]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.labels:
            if len(self.labels) != len(self.shapes):
                raise ValueError(f"scene has {len(self.shapes)} shapes but {len(self.labels)} labels")
            for name in self.labels:
                check_label(name)
        for i, s in enumerate(self.shapes):
            if not 0 <= s.material < len(self.materials):
                raise ValueError(f"shape {i} uses material {s.material}, but the scene has "
                                 f"{len(self.materials)} materials")
        grouped = [i for g in self.groups for i in g]
        if any(not 0 <= i < len(self.shapes) for i in grouped) or len(set(grouped)) != len(grouped):
            raise ValueError("groups must hold distinct shape indices within range")
        if not self.max_depth > 0:
            raise ValueError(f"max_depth must be positive, got {self.max_depth}")

    def shadow_groups(self) -> list[list[int]]:
        """``groups`` plus one singleton group per ungrouped shape."""
        grouped = {i for g in self.groups for i in g}
        return [list(g) for g in self.groups] + [[i] for i in range(len(self.shapes)) if i not in grouped]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (lists and numbers only)."""
        return {"camera": self.camera.to_dict(), "shapes": [shape_to_dict(s) for s in self.shapes],
                "materials": [m.to_dict() for m in self.materials],
                "lights": [_lists(asdict(light)) for light in self.lights],
                "environment": _lists(asdict(self.environment)), "sensor": _lists(asdict(self.sensor)),
                "max_depth": self.max_depth, "groups": [list(g) for g in self.groups], "info": dict(self.info),
                **({"labels": list(self.labels)} if self.labels else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        """Inverse of :meth:`to_dict`."""
        return cls(Camera.from_dict(d["camera"]), [shape_from_dict(s) for s in d["shapes"]],
                   [Material.from_dict(m) for m in d["materials"]],
                   [Light(**_tuples(x)) for x in d["lights"]], Environment(**_tuples(d["environment"])),
                   Sensor(**_tuples(d["sensor"])), float(d["max_depth"]), [list(g) for g in d["groups"]],
                   dict(d.get("info", {})), [str(x) for x in d.get("labels", [])])


def _python_numbers(obj: Any) -> None:
    """Turn a frozen dataclass's numpy scalars into Python floats/ints (tuples for vectors), so float32
    shading arithmetic is not promoted and a scene rebuilt from JSON renders the same bits."""
    for name, value in vars(obj).items():
        if isinstance(value, (tuple, list, np.ndarray)):
            value = tuple(float(x) for x in value)
        elif isinstance(value, (bool, str)):
            continue
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        else:
            value = float(value)
        object.__setattr__(obj, name, value)


def _lists(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
