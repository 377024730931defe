"""DDAD (Dense Depth for Autonomous Driving), front-camera validation frames.

Two flat layouts are read (the full DGP-format release is 257 GB and is not parsed here)::

    root/<id>_gt.png      uint16, metres * 256, 0 = none   (the official challenge ``gt_val.zip``)
    root/<id>_depth.npy   (H, W) float32 metres             (ZoeDepth's pre-exported folder)
    root/<id>_rgb.png     the matching image (also <id>.png / <id>.jpg), here or under ``image_root``

Sample ids are ``<id>``. The official challenge evaluates ``0 < d < 200`` m with median scaling; ZoeDepth's
config uses ``(1e-3, 80)`` with the Garg crop. Which set, cap and crop DA used is not published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_npy_depth, read_png16, read_rgb

DDAD_SCALE = 256.0
GT_SUFFIXES = ("_gt.png", "_depth.npy", "_depth.png")


class DDAD(EvalDataset):
    """DDAD reader (module docstring). ``split`` is a label (``"val"``)."""

    name = "ddad"

    def __init__(self, root: str | Path, split: str = "val", image_root: str | Path | None = None) -> None:
        super().__init__(root, split)
        self.image_root = Path(image_root) if image_root else self.root
        self._gt: list[Path] = []
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and any(p.name.endswith(s) for s in GT_SUFFIXES):
                self._gt.append(p)
        if not self._gt:
            raise DatasetError(f"ddad: no *_gt.png or *_depth.npy files under {self.root}")
        self.ids = [self._stem(p) for p in self._gt]

    def _stem(self, p: Path) -> str:
        rel = str(p.relative_to(self.root))
        for s in GT_SUFFIXES:
            if rel.endswith(s):
                return rel[: -len(s)]
        raise AssertionError(rel)  # unreachable: only files with these suffixes are indexed

    def _rgb_path(self, sid: str) -> Path:
        for suffix in ("_rgb.png", "_rgb.jpg", ".png", ".jpg"):
            p = self.image_root / f"{sid}{suffix}"
            if p.is_file():
                return p
        raise DatasetError(f"ddad: no image for {sid} under {self.image_root} (tried {sid}_rgb.png, .png, .jpg)")

    def load(self, index: int) -> EvalSample:
        gt = self._gt[index]
        depth = read_npy_depth(gt) if gt.suffix == ".npy" else read_png16(gt, DDAD_SCALE)
        sid = self.ids[index]
        return EvalSample(sid, depth, lambda: read_rgb(self._rgb_path(sid)), meta={"depth": str(gt)})

    def settings(self, family: Family) -> EvalSettings:
        if family == "metric":
            return EvalSettings(1e-3, 80.0, "kitti_garg", mask_mode="range",
                                source="ZoeDepth config 'ddad': (1e-3, 80), garg_crop")
        return EvalSettings(0.0, 200.0, "none", mask_mode="range",
                            source="official DDAD challenge range (0, 200); DA's DDAD setting is unpublished")

    def options(self) -> dict[str, Any]:
        return {"image_root": str(self.image_root)}
