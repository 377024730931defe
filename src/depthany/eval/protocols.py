"""Named evaluation protocols: how one prediction is masked, aligned, clipped and scored against GT.

Every number depthany reports carries one of these ids. They reproduce *released reference code*; none is
claimed to be the (never released) Depth Anything zero-shot protocol. See docs/evaluation.md.

================================  ==========  ===========  =========  ==============================================
id                                fit         fit space    metrics    reference
================================  ==========  ===========  =========  ==============================================
``marigold_depth_lsq``            lstsq s,t   depth        depth      Marigold ``eval.py --alignment least_square``
``disparity_lsq_eval_depth``      lstsq s,t   disparity    depth      Marigold ``least_square_disparity``; VDA eval
``disparity_lsq_eval_disparity``  lstsq s,t   disparity    disparity  DA authors' statement (V1 issue #174) [A]
``median_scaling``                median      depth        depth      ZoeDepth/Monodepth2-style median scaling
``zoedepth_metric``               none        depth        depth      ZoeDepth ``evaluate.py`` + ``compute_metrics``
================================  ==========  ===========  =========  ==============================================

Per image (Marigold ``eval.py`` order for the least-squares protocols):

1. ``valid = (gt > min_depth) & (gt < max_depth)`` (strict) ``& crop`` (mask semantics: :class:`EvalSettings`).
2. Fit on ``valid`` (depth space) or ``valid & gt > 0 & pred > 0`` (disparity space, target ``1 / gt``),
   optionally on a nearest-downsampled copy (``alignment_max_res``); apply to the full prediction.
3. Disparity fits: ``disp = clip(disp, 1e-3, None)``; ``depth = 1 / disp`` (so depth <= 1000).
4. ``depth = clip(depth, min_depth, max_depth)``; then ``depth = clip(depth, 1e-6, None)``.
5. Metrics on ``valid`` in depth space, or on ``1 / gt`` vs ``1 / depth`` for the disparity-metric protocol
   (the same clipping expressed in disparity: its own clipping details were never published).

``zoedepth_metric`` and ``median_scaling`` clip in ZoeDepth's order: ``< min -> min``, ``> max -> max``,
``inf -> max``, ``nan -> min`` (median scaling first, then clipping). For finite values that equals
Marigold's ``np.clip``; depthany uses it for non-finite values in every protocol and excludes them from the
fit (Marigold would propagate NaN into the image's metrics). Every protocol ends with ``depth >= 1e-6``,
which only matters when ``min_depth`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..align import AlignmentError, median_scale
from . import metrics as metrics_mod
from .align import fit_affine_masked
from .crops import crop_mask
from .settings import EvalSettings, Family

PredKind = Literal["depth", "disparity"]
DISPARITY_FLOOR = 1e-3  # Marigold: clip aligned disparity before inverting (depth <= 1000)
DEPTH_FLOOR = 1e-6  # Marigold: final clip so log/ratio metrics are defined


class SkipSample(ValueError):
    """This sample cannot be scored (no valid pixels, nothing to fit on); the run counts it and goes on."""


@dataclass(frozen=True)
class Protocol:
    """A documented recipe (module docstring). ``family`` selects the dataset settings it uses."""

    id: str
    family: Family
    alignment: Literal["lsq", "median", "none"]
    fit_space: PredKind
    metric_space: PredKind
    flip_tta: bool
    summary: str
    reference: str


PROTOCOLS: dict[str, Protocol] = {p.id: p for p in (
    Protocol("marigold_depth_lsq", "relative", "lsq", "depth", "depth", False,
             "least-squares scale and shift in depth space; metrics on depth",
             "Marigold script/depth/eval.py --alignment least_square, src/util/alignment.py"),
    Protocol("disparity_lsq_eval_depth", "relative", "lsq", "disparity", "depth", False,
             "least-squares scale and shift in disparity space, inverted to depth; metrics on depth",
             "Marigold eval.py --alignment least_square_disparity; Video-Depth-Anything benchmark/eval/eval.py"),
    Protocol("disparity_lsq_eval_disparity", "relative", "lsq", "disparity", "disparity", False,
             "least-squares scale and shift in disparity space; metrics on disparity (clipping as the depth "
             "variant, expressed in disparity)",
             "DA-V1 author, LiheYoung/Depth-Anything#174: 'we evaluate ... in the disparity space'; no code"),
    Protocol("median_scaling", "metric", "median", "depth", "depth", False,
             "scale by median(gt) / median(pred) on valid pixels, then ZoeDepth clipping; metrics on depth",
             "ZoeDepth-family compute_metrics median variant; Monodepth2 evaluate_depth.py"),
    Protocol("zoedepth_metric", "metric", "none", "depth", "depth", True,
             "no alignment (metric depth); horizontal-flip test-time averaging; ZoeDepth clipping and crops",
             "ZoeDepth evaluate.py::infer + zoedepth/utils/misc.py::compute_metrics (also DA-V1 metric_depth)"),
)}


def get_protocol(protocol_id: str) -> Protocol:
    """Look a protocol up by id.

    Raises:
        ValueError: unknown id, listing the known ones.
    """
    if protocol_id not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol_id!r}")
    return PROTOCOLS[protocol_id]


def check_compatible(protocol: Protocol, pred_kind: str) -> None:
    """Refuse combinations that would produce meaningless numbers.

    Relative disparity has an unknown shift, so it cannot be turned into depth before alignment: the depth
    protocols (``marigold_depth_lsq``, ``median_scaling``, ``zoedepth_metric``) need depth predictions.

    Raises:
        ValueError: naming the protocol, the prediction kind and what to use instead.
    """
    if pred_kind not in ("depth", "disparity"):
        raise ValueError(f"prediction kind must be 'depth' or 'disparity', got {pred_kind!r}")
    if pred_kind == "disparity" and protocol.fit_space == "depth":
        hint = ("a metric model (or --pred-kind depth for saved metric depth)" if protocol.alignment == "none"
                else "disparity_lsq_eval_depth or disparity_lsq_eval_disparity")
        raise ValueError(f"protocol {protocol.id} aligns/scores depth, but the predictions are relative disparity "
                         f"(unknown shift, not invertible to depth); use {hint}")


@dataclass
class SampleScore:
    """Scores of one image.

    Attributes:
        metrics: name -> value (see :data:`depthany.eval.metrics.METRICS`), in the protocol's metric space.
        n_valid: evaluated pixels.
        n_fit: pixels the scale/shift was fitted on (after any downsampling); 0 without alignment.
        scale, shift: the fitted alignment (None without alignment; shift 0 for median scaling).
        degenerate_fit: the prediction was constant on the fit pixels (minimum-norm lstsq solution used).
        n_nonfinite: non-finite prediction values among the valid pixels (clipped, see module docstring).
    """

    metrics: dict[str, float]
    n_valid: int
    n_fit: int = 0
    scale: float | None = None
    shift: float | None = None
    degenerate_fit: bool = False
    n_nonfinite: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def valid_mask(gt: np.ndarray, settings: EvalSettings, mask: np.ndarray | None = None,
               full_shape: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) bool evaluated pixels: range (strict) and/or mask file, ``gt > 0``, and the crop.

    Args:
        gt: (H, W) depth in metres, 0 = no measurement.
        settings: range, crop, crop order and mask semantics.
        mask: (H, W) bool from the dataset's mask file, if it has one.
        full_shape, offset: frame before the KB crop and the crop offset (KITTI ``fraction_on_full``).
    """
    g = np.asarray(gt)
    valid: np.ndarray = np.isfinite(g) & (g > 0)
    if settings.mask_mode in ("range", "range_and_mask"):
        valid &= (g > settings.min_depth) & (g < settings.max_depth)
    if settings.mask_mode in ("mask_only", "range_and_mask") and mask is not None:
        if mask.shape != g.shape:
            raise ValueError(f"mask shape {mask.shape} differs from GT shape {g.shape}")
        valid &= mask.astype(bool)
    if settings.crop != "none":
        valid &= crop_mask(g.shape, settings.crop, settings.crop_order, full_shape, offset)
    return valid


def clip_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """ZoeDepth ``compute_metrics`` order: ``< min -> min``, ``> max -> max``, ``inf -> max``, ``nan -> min``.

    For finite values this equals Marigold's ``np.clip(depth, min, max)``; (H, W) or (N,) float64 out.
    """
    d = np.array(depth, dtype=np.float64, copy=True)
    with np.errstate(invalid="ignore"):
        d[d < min_depth] = min_depth
        d[d > max_depth] = max_depth
    d[np.isinf(d)] = max_depth
    d[np.isnan(d)] = min_depth
    return d


def to_disparity(values: np.ndarray) -> np.ndarray:
    """``1 / x`` where ``x > 0``, else 0 (Marigold ``depth2disparity``), float64."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(v)
    pos = v > 0
    out[pos] = 1.0 / v[pos]
    return out


def score_sample(pred: np.ndarray, pred_kind: str, gt: np.ndarray, protocol: Protocol, settings: EvalSettings,
                 mask: np.ndarray | None = None, full_shape: tuple[int, int] | None = None,
                 offset: tuple[int, int] = (0, 0), metric_names: list[str] | None = None) -> SampleScore:
    """Score one prediction under ``protocol`` (module docstring for the exact steps).

    Args:
        pred: (H, W) prediction at GT resolution: depth (metres or relative) or relative disparity.
        pred_kind: ``"depth"`` or ``"disparity"``.
        gt: (H, W) GT depth in metres, 0 = none.
        protocol, settings: the recipe and the dataset's range/crop/mask settings.
        mask, full_shape, offset: see :func:`valid_mask`.
        metric_names: subset of metrics to compute (default all).

    Raises:
        ValueError: shapes differ or the kind does not suit the protocol.
        SkipSample: no valid pixels, or nothing to fit on.
    """
    check_compatible(protocol, pred_kind)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ in shape; resize the prediction first")
    valid = valid_mask(gt, settings, mask, full_shape, offset)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise SkipSample("no valid ground-truth pixels after range, mask and crop")
    gt_v = np.asarray(gt, dtype=np.float64)[valid]
    p = np.asarray(pred, dtype=np.float64)
    if protocol.fit_space == "disparity" and pred_kind == "depth":
        p = to_disparity(p)
    n_nonfinite = int((~np.isfinite(p[valid])).sum())
    score = SampleScore({}, n_valid, n_nonfinite=n_nonfinite)

    if protocol.alignment == "lsq":
        finite = np.isfinite(p)
        if protocol.fit_space == "depth":
            target, fit = np.asarray(gt, dtype=np.float64), valid & finite
        else:
            target = to_disparity(gt)
            fit = valid & (np.asarray(gt) > 0) & (p > 0) & finite
        try:
            fitted = fit_affine_masked(np.where(finite, p, 0), target, fit, settings.alignment_max_res,
                                       settings.alignment_downsample)  # type: ignore[arg-type]
        except AlignmentError as e:
            raise SkipSample(f"alignment impossible: {e}") from e
        score.scale, score.shift = fitted.scale, fitted.shift
        score.degenerate_fit, score.n_fit = fitted.degenerate, fitted.n_fit
        aligned = fitted.scale * p[valid] + fitted.shift
        if protocol.fit_space == "disparity":
            with np.errstate(divide="ignore"):
                aligned = 1.0 / np.maximum(aligned, DISPARITY_FLOOR)  # NaN stays NaN, +inf -> depth 0
        depth_v = clip_depth(aligned, settings.min_depth, settings.max_depth)
    elif protocol.alignment == "median":
        pv = p[valid]
        try:
            ratio = median_scale(pv[np.isfinite(pv)], gt_v)
        except AlignmentError:
            raise SkipSample("median of the prediction on valid pixels is not positive") from None
        score.scale, score.shift = ratio, 0.0
        depth_v = clip_depth(pv * ratio, settings.min_depth, settings.max_depth)
    else:
        depth_v = clip_depth(p[valid], settings.min_depth, settings.max_depth)
    # Only bites when min_depth is 0 (e.g. Sintel): keeps log and ratio metrics finite, as Marigold's last clip.
    depth_v = np.maximum(depth_v, DEPTH_FLOOR)

    if protocol.metric_space == "disparity":
        score.metrics = metrics_mod.compute_all(1.0 / gt_v, 1.0 / depth_v, metric_names)
    else:
        score.metrics = metrics_mod.compute_all(gt_v, depth_v, metric_names)
    return score
