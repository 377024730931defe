"""An independent re-implementation of the official inference scripts, for tests (OpenCV + numpy).

Written step by step from the upstream code (docs/reference/official_facts.md):

* V2 ``DepthAnythingV2.infer_image`` (DepthAnything/Depth-Anything-V2 commit
  a561b849ebae10a6f5ef49e26c83cbbcd36c71bf, ``depth_anything_v2/dpt.py`` and ``depth_anything_v2/util/transform.py``):
  ``cv2.imread`` -> BGR2RGB -> ``/ 255.0`` -> Resize(lower bound, multiple of 14, INTER_CUBIC) -> NormalizeImage
  -> PrepareForNet -> forward -> ``F.interpolate(bilinear, align_corners=True)`` to the image size;
* V1 ``run.py`` (LiheYoung/Depth-Anything commit 1d03336771fe09c5398ffdd211441e33941a97dc): the same
  preprocessing at a fixed 518, then ``F.interpolate(bilinear, align_corners=False)``.

Only the network is shared with the code under test; OpenCV is imported when a function runs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # official NormalizeImage


def official_resize_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """``Resize(width=size, height=size, keep_aspect_ratio=True, ensure_multiple_of=14,
    resize_method='lower_bound')``."""
    scale = max(size / h, size / w)

    def constrain(x: float) -> int:
        y = int(np.round(x / 14) * 14)
        return int(np.ceil(x / 14) * 14) if y < size else y

    return constrain(scale * h), constrain(scale * w)


def official_tensor(raw_bgr: np.ndarray, size: int) -> torch.Tensor:
    import cv2

    image = cv2.cvtColor(raw_bgr, cv2.COLOR_BGR2RGB) / 255.0
    nh, nw = official_resize_shape(*image.shape[:2], size)
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)
    image = (image - MEAN) / STD
    image = np.ascontiguousarray(np.transpose(image, (2, 0, 1))).astype(np.float32)
    return torch.from_numpy(image).unsqueeze(0)


def official_v2_infer_image(model: torch.nn.Module, raw_bgr: np.ndarray, input_size: int = 518) -> np.ndarray:
    h, w = raw_bgr.shape[:2]
    with torch.no_grad():
        depth = model(official_tensor(raw_bgr, input_size))
    depth = F.interpolate(depth[:, None], (h, w), mode="bilinear", align_corners=True)[0, 0]
    return depth.cpu().numpy()


def official_v1_run_py(model: torch.nn.Module, raw_bgr: np.ndarray) -> np.ndarray:
    h, w = raw_bgr.shape[:2]
    with torch.no_grad():
        depth = model(official_tensor(raw_bgr, 518))
    depth = F.interpolate(depth[None], (h, w), mode="bilinear", align_corners=False)[0, 0]
    return depth.cpu().numpy()
