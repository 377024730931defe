"""Periodic validation during training: AbsRel and delta1 against ground-truth depth.

Relative models are judged the way zero-shot benchmarks judge them: the prediction (disparity) is aligned to
the ground-truth disparity 1/depth by least-squares scale and shift on the valid pixels
(:func:`depthany.align.fit_scale_shift`), turned back into depth and clipped to the image's ground-truth
depth range; metric models are compared directly in metres. Metrics are :mod:`depthany.eval.metrics`,
computed per image and averaged over images. Images are shared out over processes and the sums all-reduced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import zoo
from ..align import AlignmentError, fit_scale_shift
from ..data.rgbd import RGBDFolder
from ..eval.metrics import abs_rel, delta
from ..inference import pipeline_for
from ..runtime.dist import DistEnv, all_reduce_sum
from .config import RecipeError, ValCfg


def relative_errors(pred_disp: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(AbsRel, delta1) of a relative disparity map after scale-and-shift alignment in disparity space.

    Args:
        pred_disp: (H, W) predicted disparity (any scale and shift).
        gt_depth: (H, W) ground-truth depth, metres.
        valid: (H, W) bool, at least two pixels.
    """
    gt = gt_depth[valid].astype(np.float64)
    p = pred_disp[valid].astype(np.float64)
    target = 1.0 / gt
    try:
        s, t = fit_scale_shift(p, target)
        aligned = s * p + t
    except AlignmentError:  # a constant prediction: the best affine fit is the mean target
        aligned = np.full_like(target, target.mean())
    aligned = np.clip(aligned, 1.0 / gt.max(), 1.0 / gt.min())
    depth = 1.0 / aligned
    return abs_rel(gt, depth), delta(gt, depth, 1)


def metric_errors(pred_depth: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(AbsRel, delta1) of a metric depth map (metres), no alignment; predictions floored at 1 mm."""
    gt = gt_depth[valid].astype(np.float64)
    depth = np.maximum(pred_depth[valid].astype(np.float64), 1e-3)
    return abs_rel(gt, depth), delta(gt, depth, 1)


class Validator:
    """Validation set of a recipe; ``run`` evaluates a model on this process's share of the images.

    Raises:
        RecipeError: the folder or split cannot be read (naming ``data.val``).
    """

    def __init__(self, cfg: ValCfg, spec: zoo.ModelSpec, default_size: int) -> None:
        assert cfg.path is not None
        try:
            self.folder = RGBDFolder(cfg.path, cfg.split)
        except ValueError as e:
            raise RecipeError(f"data.val.path: {e}") from None
        n = len(self.folder)
        self.count = min(n, cfg.max_images) if cfg.max_images else n
        if self.count == 0:
            raise RecipeError(f"data.val.path: {cfg.path} holds no samples")
        self.spec = spec
        if spec.arch.zoe is not None:
            # ZoeDepth: the official trainer's validation (evaluate.py's resize of the network output to the GT,
            # no padding, no flip) at the head's own network size unless data.val.input_size says otherwise
            self.pipeline = pipeline_for(spec, cfg.input_size, mode="evaluate", flip=False)
        else:
            self.pipeline = pipeline_for(spec, cfg.input_size or default_size)  # the predictor's own path and budget
        self.size = self.pipeline.input_size

    @torch.no_grad()
    def run(self, model: nn.Module, env: DistEnv,
            autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
            ) -> dict[str, float]:
        """Mean ``abs_rel`` and ``delta1`` over the validation images (and ``images``: how many counted).

        A collective under DDP: every process must call it. ``autocast`` makes the precision context.
        """
        was_training = model.training
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        metric = self.spec.arch.head == "metric"
        for i in range(env.rank, self.count, env.world):
            s = self.folder[i]
            if s.valid.sum() < 2:
                continue

            def network(x: torch.Tensor) -> torch.Tensor:
                with autocast():
                    return model(x.to(env.device))

            pred = self.pipeline.run(network, s.rgb).numpy()
            errs = metric_errors(pred, s.depth, s.valid) if metric else relative_errors(pred, s.depth, s.valid)
            sums += torch.tensor([errs[0], errs[1], 1.0], dtype=torch.float64)
        model.train(was_training)
        sums = all_reduce_sum(sums, env)
        n = max(sums[2].item(), 1.0)
        return {"abs_rel": sums[0].item() / n, "delta1": sums[1].item() / n, "images": int(sums[2].item())}

    @staticmethod
    def line(record: dict[str, Any]) -> str:
        """The progress line of a ``val`` record."""
        return (f"val step {record['step']}: abs_rel {record['abs_rel']:.4f}  delta1 {record['delta1']:.4f}  "
                f"({record['images']} images)")
