"""Synthetic RGB-D worlds: a vectorised numpy ray caster for procedural indoor and outdoor scenes with
exact planar depth, and a resumable, multi-process dataset generator (``depthany synth``).

::

    from depthany.synth import WorldConfig, make_scene, render, generate

    scene = make_scene(seed=0, index=7, config=WorldConfig(256, 256, "outdoor"))
    view = render(scene)            # view.rgb (H, W, 3) uint8, view.depth (H, W) float32 metres, view.valid
    generate("data/synth", count=1000, config=WorldConfig(256, 256), workers=2)

See docs/synthetic.md.
"""

from .camera import Camera, focal_from_fov
from .dataset import GenerateReport, generate, iter_samples
from .materials import Material
from .render import Rendering, render
from .scene import Environment, Light, Scene, Sensor
from .shapes import Box, Cylinder, Plane, Sphere
from .textures import FAMILIES, Texture, parse_families
from .worlds import KINDS, WorldConfig, make_scene, sample_rng

__all__ = ["FAMILIES", "KINDS", "Box", "Camera", "Cylinder", "Environment", "GenerateReport", "Light", "Material",
           "Plane", "Rendering", "Scene", "Sensor", "Sphere", "Texture", "WorldConfig", "focal_from_fov", "generate",
           "iter_samples", "make_scene", "parse_families", "render", "sample_rng"]
