"""Semantic classes of the synthetic worlds and the per-pixel label image.

Every primitive a world builder adds carries the name of what it is part of (the whole tree, trunk and crown,
is ``tree``; a table's top and legs are ``table``; the things standing on it are ``clutter``). The renderer
knows which primitive each pixel's ray hits (``shape_id``), so the label of every pixel is exact, like the
depth: no annotation, no anti-aliasing, one class per pixel. Rays that hit nothing are ``sky``.

Colours follow Cityscapes / ADE20K where a class has an obvious counterpart (road, sidewalk, building,
vegetation, sky, wall, floor, ...), so pictures look familiar.
"""

from __future__ import annotations

import numpy as np

from ..data.classes import ClassTable, make_table

SKY = "sky"
SEMANTIC_VERSION = 1  # bump when classes are added, removed or reordered

SYNTH_CLASSES: ClassTable = make_table("synth", [
    # outdoor
    (SKY, (70, 130, 180)),
    ("ground", (152, 251, 152)),  # the outdoor ground plane (grass, dirt, paving)
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),  # raised pavements along a street
    ("building", (70, 70, 70)),
    ("tree", (107, 142, 35)),  # trunk and crown
    ("bush", (0, 190, 60)),
    ("rock", (130, 95, 60)),
    ("hill", (100, 120, 90)),  # distant hills on the horizon (their depth is beyond max_depth)
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),  # street lamps and outdoor poles
    ("car", (0, 0, 142)),
    ("crate", (255, 160, 60)),  # boxes standing on open land
    # indoor
    ("floor", (80, 50, 50)),
    ("wall", (120, 120, 120)),
    ("ceiling", (120, 120, 80)),
    ("wall_decor", (255, 6, 51)),  # doors, pictures, windows: thin slabs on a wall
    ("skirting", (200, 200, 255)),
    ("table", (255, 6, 82)),
    ("chair", (204, 70, 3)),
    ("shelf", (255, 7, 71)),
    ("cabinet", (224, 5, 255)),  # also beds and sofas (closed blocks)
    ("lamp", (224, 255, 8)),  # floor lamps: pole, base and shade
    ("ball", (255, 0, 255)),
    ("column", (255, 8, 41)),
    ("bin", (0, 255, 255)),
    ("box", (255, 255, 0)),  # stacked boxes on the floor
    ("plant", (204, 255, 4)),  # pot and leaves
    ("clutter", (0, 102, 200)),  # small things on tables and shelves
])
CLASS_NAMES: frozenset[str] = frozenset(SYNTH_CLASSES.names)


def check_label(name: str) -> str:
    """``name`` if it is a synthetic class, else ``ValueError`` (a world builder used an unknown class)."""
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown synthetic class {name!r}; known: {', '.join(SYNTH_CLASSES.names)}")
    return name


def label_image(shape_id: np.ndarray, shape_labels: list[str]) -> np.ndarray:
    """Per-pixel class indices from the visible primitive of each pixel.

    Args:
        shape_id: (H, W) int32 index of the primitive hit by each pixel's ray, -1 where nothing is hit.
        shape_labels: the class name of each primitive (``Scene.labels``).

    Returns:
        (H, W) uint8 indices into :data:`SYNTH_CLASSES`; ``sky`` where ``shape_id`` is -1.
    """
    lut = np.array([SYNTH_CLASSES.index(n) for n in shape_labels] + [SYNTH_CLASSES.index(SKY)], np.uint8)
    if shape_id.size and (shape_id.max(initial=-1) >= len(shape_labels) or shape_id.min(initial=0) < -1):
        raise ValueError(f"shape ids out of range for {len(shape_labels)} labelled shapes")
    return lut[shape_id]  # index -1 picks the last entry: sky
