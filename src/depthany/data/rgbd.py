"""depthany's RGB-D folder format: the one on-disk layout that synthesis writes and training/evaluation read.

::

    root/
      dataset.json        {"format": "depthany-rgbd", "version": 1, "depth_encoding": "png16" | "npy",
                           "png16_scale": 256.0, ...generator info}
      rgb/<stem>.png      (H, W, 3) uint8 RGB (.png or .jpg)
      depth/<stem>.png    uint16, depth in metres = value / png16_scale, 0 = invalid      (png16 encoding)
      depth/<stem>.npy    (H, W) float32 metres; non-finite or <= 0 = invalid             (npy encoding)
      mask/<stem>.png     optional (H, W) uint8, nonzero = valid (ANDed with depth validity)
      labels/<stem>.png   optional (H, W) uint8 semantic class indices, 255 = no label; the class table
                          (names, colours) is ``dataset.json["semantic"]`` (see depthany.data.classes)
      dynamic/<stem>.png  optional (H, W) uint8, 255 = the pixel shows a moving object (sequences)
      meta/<stem>.json    optional {"intrinsics": [fx, fy, cx, cy] (pixels), "scene": {...}}
      splits/<name>.txt   optional, one stem per line

Depth is planar (z along the optical axis), in metres. See docs/rgbd_format.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .classes import ClassTable

FORMAT_NAME = "depthany-rgbd"
FORMAT_VERSION = 1


@dataclass
class RGBDSample:
    """One sample.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 metres (planar z); 0 where invalid.
        valid: (H, W) bool.
        intrinsics: (fx, fy, cx, cy) in pixels, or None.
        stem: sample id.
        meta: the per-sample JSON (scene description...).
        labels: (H, W) uint8 semantic class indices (255 = no label), or None when the folder has none.
    """

    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    intrinsics: tuple[float, float, float, float] | None
    stem: str
    meta: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None


def png16_scale_for(max_depth: float) -> float:
    """Largest power-of-two scale (units per metre, <= 1000) whose uint16 range holds ``max_depth`` metres."""
    scale = 1000.0
    while scale > 1 and max_depth * scale > 65535:
        scale /= 2
    return scale


class RGBDWriter:
    """Writes samples into an RGB-D folder; ``close()`` (or the context manager) writes ``dataset.json``."""

    def __init__(self, root: str | Path, depth_encoding: str = "png16", png16_scale: float = 256.0,
                 rgb_format: str = "png", info: dict[str, Any] | None = None) -> None:
        if depth_encoding not in ("png16", "npy"):
            raise ValueError(f"depth_encoding must be 'png16' or 'npy', got {depth_encoding!r}")
        if rgb_format not in ("png", "jpg"):
            raise ValueError(f"rgb_format must be 'png' or 'jpg', got {rgb_format!r}")
        self.root = Path(root)
        self.depth_encoding = depth_encoding
        self.png16_scale = float(png16_scale)
        self.rgb_format = rgb_format
        self.info = dict(info or {})
        for sub in ("rgb", "depth", "mask", "meta"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def write(self, stem: str, rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray | None = None,
              intrinsics: tuple[float, float, float, float] | None = None,
              meta: dict[str, Any] | None = None, labels: np.ndarray | None = None,
              dynamic: np.ndarray | None = None) -> None:
        """Write one sample. ``depth``: (H, W) metres; invalid pixels are stored as 0.

        ``labels``: optional (H, W) uint8 semantic class indices, written to ``labels/<stem>.png``.
        ``dynamic``: optional (H, W) bool, the pixels showing a moving object, written to ``dynamic/<stem>.png``
        (0 / 255).
        """
        if rgb.shape[:2] != depth.shape:
            raise ValueError(f"{stem}: rgb {rgb.shape[:2]} and depth {depth.shape} sizes differ")
        if labels is not None and (labels.shape != depth.shape or labels.dtype != np.uint8):
            raise ValueError(f"{stem}: labels must be (H, W) uint8 like the depth {depth.shape}, "
                             f"got {labels.shape} {labels.dtype}")
        if dynamic is not None and dynamic.shape != depth.shape:
            raise ValueError(f"{stem}: dynamic mask {dynamic.shape} and depth {depth.shape} sizes differ")
        ok = np.isfinite(depth) & (depth > 0)
        if valid is not None:
            ok &= valid.astype(bool)
        d = np.where(ok, depth, 0).astype(np.float32)
        if self.rgb_format == "png":
            Image.fromarray(rgb).save(self.root / "rgb" / f"{stem}.png", compress_level=1)
        else:
            Image.fromarray(rgb).save(self.root / "rgb" / f"{stem}.jpg", quality=95)
        if self.depth_encoding == "png16":
            q = np.round(d.astype(np.float64) * self.png16_scale)
            if q.max(initial=0) > 65535:
                raise ValueError(f"{stem}: depth {d.max():.1f} m overflows png16 at scale {self.png16_scale}")
            Image.fromarray(q.astype(np.uint16)).save(self.root / "depth" / f"{stem}.png", compress_level=1)
        else:
            np.save(self.root / "depth" / f"{stem}.npy", d)
        if valid is not None:
            Image.fromarray((ok * 255).astype(np.uint8)).save(self.root / "mask" / f"{stem}.png")
        if labels is not None:
            (self.root / "labels").mkdir(exist_ok=True)
            Image.fromarray(labels).save(self.root / "labels" / f"{stem}.png", compress_level=1)
        if dynamic is not None:
            (self.root / "dynamic").mkdir(exist_ok=True)
            Image.fromarray((dynamic.astype(bool) * 255).astype(np.uint8)).save(self.root / "dynamic" / f"{stem}.png")
        m = dict(meta or {})
        if intrinsics is not None:
            m["intrinsics"] = [float(v) for v in intrinsics]
        (self.root / "meta" / f"{stem}.json").write_text(json.dumps(m))

    def close(self) -> None:
        info = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "depth_encoding": self.depth_encoding,
                "png16_scale": self.png16_scale, "depth_unit": "m", "depth_kind": "planar_z", **self.info}
        (self.root / "dataset.json").write_text(json.dumps(info, indent=2))

    def __enter__(self) -> RGBDWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RGBDFolder:
    """Random-access reader for an RGB-D folder.

    Args:
        root: the folder.
        split: name of ``splits/<split>.txt`` to restrict to, or None for every sample.

    Raises:
        ValueError: not an RGB-D folder (missing ``dataset.json`` / ``rgb/``), naming the path.
    """

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        self.root = Path(root)
        info_path = self.root / "dataset.json"
        if not info_path.exists() or not (self.root / "rgb").is_dir():
            raise ValueError(f"{self.root}: not a depthany RGB-D folder (needs dataset.json and rgb/)")
        self.info = json.loads(info_path.read_text())
        if self.info.get("format") != FORMAT_NAME:
            raise ValueError(f"{info_path}: format is {self.info.get('format')!r}, expected {FORMAT_NAME!r}")
        self.png16_scale = float(self.info.get("png16_scale", 256.0))
        self.classes: ClassTable | None = None
        if "semantic" in self.info:
            self.classes = ClassTable.from_dict(self.info["semantic"], f"{info_path}: semantic")
        if split is not None:
            split_file = self.root / "splits" / f"{split}.txt"
            if not split_file.exists():
                raise ValueError(f"{self.root}: no split {split!r} (missing {split_file})")
            self.stems = [s.strip() for s in split_file.read_text().splitlines() if s.strip()]
        else:
            self.stems = sorted(p.stem for p in (self.root / "rgb").iterdir() if p.suffix in (".png", ".jpg"))

    def __len__(self) -> int:
        return len(self.stems)

    def rgb_path(self, stem: str) -> Path:
        for ext in (".png", ".jpg"):
            p = self.root / "rgb" / f"{stem}{ext}"
            if p.exists():
                return p
        raise FileNotFoundError(f"{self.root}: no rgb image for sample {stem!r}")

    def read_depth(self, stem: str) -> np.ndarray:
        """(H, W) float32 metres, 0 where invalid."""
        png, npy = self.root / "depth" / f"{stem}.png", self.root / "depth" / f"{stem}.npy"
        if png.exists():
            return (np.asarray(Image.open(png), dtype=np.float64) / self.png16_scale).astype(np.float32)
        if npy.exists():
            d = np.load(npy).astype(np.float32)
            return np.where(np.isfinite(d) & (d > 0), d, 0).astype(np.float32)
        raise FileNotFoundError(f"{self.root}: no depth for sample {stem!r}")

    @property
    def has_labels(self) -> bool:
        """True when the folder declares a class table (``dataset.json["semantic"]``) and has ``labels/``."""
        return self.classes is not None and (self.root / "labels").is_dir()

    def read_labels(self, stem: str) -> np.ndarray | None:
        """(H, W) uint8 class indices of sample ``stem`` (255 = no label), or None for a folder without labels.

        Raises:
            FileNotFoundError: the folder has labels but not for this sample.
            ValueError: the label file is not a single-channel 8-bit image.
        """
        if not self.has_labels:
            return None
        path = self.root / "labels" / f"{stem}.png"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: no label image for sample {stem!r} ({path})")
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise ValueError(f"{path}: expected an 8-bit single-channel label PNG, got mode {im.mode!r}")
            return np.asarray(im, dtype=np.uint8).copy()

    @property
    def has_dynamic(self) -> bool:
        """True when the folder has ``dynamic/`` masks (sequences with moving objects)."""
        return (self.root / "dynamic").is_dir()

    def read_dynamic(self, stem: str) -> np.ndarray | None:
        """(H, W) bool, True where sample ``stem`` shows a moving object; None for a folder without masks.

        Raises:
            FileNotFoundError: the folder has masks but not for this sample.
        """
        if not self.has_dynamic:
            return None
        path = self.root / "dynamic" / f"{stem}.png"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: no dynamic mask for sample {stem!r} ({path})")
        with Image.open(path) as im:
            return np.asarray(im) > 0

    def __getitem__(self, i: int) -> RGBDSample:
        stem = self.stems[i]
        rgb = np.asarray(Image.open(self.rgb_path(stem)).convert("RGB"))
        depth = self.read_depth(stem)
        valid = depth > 0
        mask_path = self.root / "mask" / f"{stem}.png"
        if mask_path.exists():
            valid &= np.asarray(Image.open(mask_path)) > 0
        meta_path = self.root / "meta" / f"{stem}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        intr = meta.get("intrinsics")
        return RGBDSample(rgb, np.where(valid, depth, 0).astype(np.float32), valid,
                          tuple(intr) if intr else None, stem, meta, self.read_labels(stem))
