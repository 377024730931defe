"""Relative disparity to metres from what the user knows: a few distances, a sparse depth map, or one distance.

A relative Depth Anything prediction ``d`` is affine-invariant inverse depth: ``1/depth = s * d + t`` for some
unknown ``s > 0`` and ``t`` that differ per image and per model. Calibration recovers them from anchors
(:mod:`depthany.geometry.anchors`) with outlier rejection (:mod:`depthany.geometry.robust`):

* ``mode="scale_shift"``: both unknowns; needs >= 2 anchors at different distances. A bad anchor can only be
  out-voted when at least 3 good ones agree (any 2 points fit exactly), so use 4 or more.
* ``mode="scale"``: ``t = 0``. One anchor fixes ``s`` exactly (``s = 1 / (depth * d)``). One equation cannot
  give two unknowns: any ``(s, t)`` on the line ``s * d0 + t = 1/z0`` reproduces the anchor and they disagree
  everywhere else. Scale-only *assumes* the prediction's zero is infinitely far (``d -> 0`` as
  ``depth -> inf``), which holds for a metric prediction turned into 1/depth but only roughly for relative
  outputs (their shift is arbitrary): depths near the anchor's come out right, far ones drift.
* ``mode="auto"``: ``"scale"`` for one anchor, ``"scale_shift"`` otherwise.

Metric predictions can be calibrated too (a camera-specific correction): they are fitted in the same
inverse-depth space, ``1/depth_true = s / depth_pred + t``.

Applying: ``depth = 1 / (s * d + t)``. Pixels where ``s * d + t <= 0`` (beyond the horizon the fit implies,
typically sky) get no depth: they are set to ``fill`` (0 by default = unknown) and counted in a warning.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .anchors import Anchors, anchors_from_sparse, sample_bilinear
from .robust import CalibrationError, FitMode, robust_disparity_fit

FORMAT = "depthany-calibration"
VERSION = 1
InputKind = Literal["relative_disparity", "relative_depth", "metric_depth"]
INPUT_KINDS: tuple[str, ...] = ("relative_disparity", "relative_depth", "metric_depth")
MODES = ("auto", "scale_shift", "scale")


class CalibrationWarning(UserWarning):
    """A calibration produced pixels without depth, or was applied to another model's output."""


def _as_disparity(values: np.ndarray, kind: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if kind in ("metric_depth", "relative_depth"):  # depth (Depth Anything 3 relative depth: up to scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, 1.0 / v, np.nan)
    return v


@dataclass
class Calibration:
    """``1/depth = scale * d + shift`` with its provenance and how well it fitted.

    Attributes:
        mode: ``"scale_shift"`` or ``"scale"``.
        scale, shift: the fitted numbers (1/m per unit of ``d``, and 1/m).
        n_points: anchors used (after dropping those on invalid predictions).
        inliers: anchors within ``inlier_tol`` of the fit.
        residuals: summary over inliers: ``rmse_m``, ``mae_m``, ``abs_rel_mean``, ``abs_rel_median``,
            ``abs_rel_max``; over all anchors: ``mae_m_all``, ``abs_rel_median_all``; and ``invalid_fraction``
            (share of the fitted map's pixels left without depth).
        source: where the anchors came from.
        input_kind: what ``d`` was: ``"relative_disparity"`` (d as predicted), ``"relative_depth"`` (Depth Anything
            3's depth up to scale; d = 1/depth, where ``mode="scale"`` is exact) or ``"metric_depth"`` (d = 1/depth).
        model: the model whose output was calibrated; raw output scales differ by model.
        inlier_tol: relative depth error accepted as inlier.
        depth_range: (min, max) metres of the inlier anchors: the range the fit is supported by.
        notes: caveats found while fitting (narrow range, single point, ...).
        created: ISO time of the fit (UTC).
    """

    mode: str
    scale: float
    shift: float
    n_points: int
    inliers: int
    residuals: dict[str, float] = field(default_factory=dict)
    source: str = ""
    input_kind: str = "relative_disparity"
    model: str | None = None
    inlier_tol: float = 0.1
    depth_range: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    created: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("scale_shift", "scale"):
            raise ValueError(f"calibration mode must be 'scale_shift' or 'scale', got {self.mode!r}")
        if not (math.isfinite(self.scale) and self.scale > 0 and math.isfinite(self.shift)):
            raise ValueError(f"calibration needs a finite scale > 0 and a finite shift, got {self.scale}, "
                             f"{self.shift}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")

    # ------------------------------------------------------------------------------------------ applying

    def inverse_depth(self, values: np.ndarray) -> np.ndarray:
        """(H, W) float64 fitted inverse depth ``scale * d + shift`` in 1/m (may be <= 0)."""
        return self.scale * _as_disparity(values, self.input_kind) + self.shift

    def apply(self, values: np.ndarray, *, fill: float = 0.0, warn: bool = True) -> np.ndarray:
        """Prediction values (of ``input_kind``) to depth in metres.

        Args:
            values: (H, W) (or any shape) prediction of the calibrated kind.
            fill: depth given to pixels whose fitted inverse depth is <= 0 or not finite (0 = unknown).
            warn: warn with the count of such pixels.

        Returns:
            float32 array of the same shape, metres.
        """
        inv = self.inverse_depth(values)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(inv) & (inv > 0)
        with np.errstate(divide="ignore"):
            depth = np.where(ok, 1.0 / np.where(ok, inv, 1.0), fill)
        bad = int(ok.size - ok.sum())
        if bad and warn:
            warnings.warn(f"calibration leaves {bad} of {ok.size} pixels ({100 * bad / max(ok.size, 1):.1f} %) "
                          f"without depth (fitted 1/depth <= 0, e.g. sky beyond the fitted horizon); set to "
                          f"{fill}", CalibrationWarning, stacklevel=2)
        return depth.astype(np.float32)

    def apply_result(self, result: Any, *, fill: float = 0.0) -> Any:
        """A :class:`~depthany.result.DepthResult` of ``input_kind`` to a metric one (``meta["calibration"]``).

        Raises:
            ValueError: the result is of another kind than the calibration was fitted on.
        """
        from ..result import DepthResult

        if result.kind != self.input_kind:
            raise ValueError(f"calibration was fitted on {self.input_kind} but the result is {result.kind}")
        if self.model and result.model and result.model != self.model:
            warnings.warn(f"calibration was fitted on {self.model!r} output but is applied to {result.model!r}; "
                          "raw output scales differ between models", CalibrationWarning, stacklevel=2)
        meta = dict(result.meta)
        meta["calibration"] = self.to_dict()
        return DepthResult(self.apply(result.values, fill=fill), "metric_depth", result.model, result.image_size,
                           result.network_size, result.source, meta)

    # ------------------------------------------------------------------------------------------ reporting

    def report(self) -> str:
        """Multi-line human-readable summary."""
        r = self.residuals
        lines = [f"calibration ({self.mode}) of {self.input_kind} from {self.source or 'known points'}"
                 + (f", model {self.model}" if self.model else ""),
                 f"  1/depth = {self.scale:.6g} * d + {self.shift:.6g}",
                 f"  points: {self.n_points}, inliers: {self.inliers} (within {100 * self.inlier_tol:g} % depth "
                 "error)"]
        if r:
            lines.append(f"  inlier residuals: RMSE {r.get('rmse_m', math.nan):.4g} m, MAE {r.get('mae_m', math.nan):.4g}"
                         f" m, abs rel mean {100 * r.get('abs_rel_mean', math.nan):.2f} % / median "
                         f"{100 * r.get('abs_rel_median', math.nan):.2f} % / max {100 * r.get('abs_rel_max', math.nan):.2f} %")
            lines.append(f"  all points: MAE {r.get('mae_m_all', math.nan):.4g} m, abs rel median "
                         f"{100 * r.get('abs_rel_median_all', math.nan):.2f} %")
            if r.get("invalid_fraction"):
                lines.append(f"  {100 * r['invalid_fraction']:.2f} % of the image gets no depth (1/depth <= 0)")
        if self.depth_range:
            lines.append(f"  supported depth range: {self.depth_range[0]:.3g} .. {self.depth_range[1]:.3g} m")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["depth_range"] = list(self.depth_range) if self.depth_range else None
        return {"format": FORMAT, "version": VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibration") -> Calibration:
        if d.get("format") != FORMAT:
            raise ValueError(f"{where}: not a depthany calibration (format {d.get('format')!r})")
        if int(d.get("version", 0)) > VERSION:
            raise ValueError(f"{where}: calibration version {d.get('version')} is newer than this depthany "
                             f"understands ({VERSION})")
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("depth_range") is not None:
            kw["depth_range"] = tuple(float(x) for x in kw["depth_range"])
        try:
            return cls(**kw)
        except TypeError as e:
            raise ValueError(f"{where}: incomplete calibration ({e})") from None

    def save(self, path: str | Path) -> Path:
        """Write JSON; returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a JSON file written by :meth:`save`.

        Raises:
            ValueError: missing file, invalid JSON, or not a calibration, naming the file.
        """
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"{p}: no such calibration file")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not a readable calibration JSON ({e})") from e
        if not isinstance(data, dict):
            raise ValueError(f"{p}: not a depthany calibration")
        return cls.from_dict(data, str(p))


@dataclass
class PointResiduals:
    """Per-anchor residuals of a calibration.

    Attributes:
        u, v: (N,) pixel coordinates; depth: (N,) known metres; d: (N,) prediction at the anchor;
        predicted: (N,) calibrated metres (NaN where no depth); inlier: (N,) bool.
    """

    u: np.ndarray
    v: np.ndarray
    depth: np.ndarray
    d: np.ndarray
    predicted: np.ndarray
    inlier: np.ndarray

    @property
    def error_m(self) -> np.ndarray:
        """(N,) predicted - known, metres."""
        return self.predicted - self.depth

    @property
    def rel_error(self) -> np.ndarray:
        """(N,) (predicted - known) / known."""
        return self.error_m / self.depth

    def table(self, limit: int = 30) -> str:
        """Text table of the first ``limit`` anchors."""
        rows = ["      u       v   known_m    pred_m    err_m   rel_%  inlier"]
        for i in range(min(limit, self.u.size)):
            rows.append(f"{self.u[i]:7.1f} {self.v[i]:7.1f} {self.depth[i]:9.4g} {self.predicted[i]:9.4g} "
                        f"{self.error_m[i]:+8.3g} {100 * self.rel_error[i]:+7.2f}  {'yes' if self.inlier[i] else 'no'}")
        if self.u.size > limit:
            rows.append(f"... {self.u.size - limit} more")
        return "\n".join(rows)


def _summary(res: PointResiduals) -> dict[str, float]:
    e = res.error_m
    rel = np.abs(res.rel_error)
    fin = np.isfinite(e)
    ei, ri = e[res.inlier & fin], rel[res.inlier & fin]
    out = {
        "rmse_m": float(np.sqrt(np.mean(ei ** 2))) if ei.size else math.nan,
        "mae_m": float(np.mean(np.abs(ei))) if ei.size else math.nan,
        "abs_rel_mean": float(ri.mean()) if ri.size else math.nan,
        "abs_rel_median": float(np.median(ri)) if ri.size else math.nan,
        "abs_rel_max": float(ri.max()) if ri.size else math.nan,
        "mae_m_all": float(np.mean(np.abs(e[fin]))) if fin.any() else math.nan,
        "abs_rel_median_all": float(np.median(rel[fin])) if fin.any() else math.nan,
    }
    return out


def _prediction(prediction: Any) -> tuple[np.ndarray, str, str | None]:
    kind = getattr(prediction, "kind", None)
    if kind is not None:
        return np.asarray(prediction.values), str(kind), getattr(prediction, "model", None)
    arr = np.asarray(prediction)
    return arr, "relative_disparity", None


def _anchors(anchors: Any, size: tuple[int, int]) -> Anchors:
    if isinstance(anchors, Anchors):
        return anchors
    a = np.asarray(anchors, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] == 3 and a.shape != size:
        return Anchors.from_points(a)
    if a.ndim == 2:
        return anchors_from_sparse(a, size)
    return Anchors.from_points(a)


def fit_calibration(
    prediction: Any,
    anchors: Anchors | np.ndarray | list[tuple[float, float, float]],
    *,
    mode: str = "auto",
    inlier_tol: float = 0.1,
    kind: InputKind | None = None,
    model: str | None = None,
    max_trials: int = 2000,
    seed: int = 0,
) -> tuple[Calibration, PointResiduals]:
    """Fit a calibration of one prediction to known depths.

    Args:
        prediction: (H, W) relative disparity array, or a :class:`~depthany.result.DepthResult` (relative or
            metric).
        anchors: :class:`Anchors`, ``[(u, v, depth_m), ...]`` / an (N, 3) array, or an (H, W) sparse depth map
            in metres with 0 = unknown (a map of another size covering the same view is mapped onto it).
        mode: ``"auto"``, ``"scale_shift"`` or ``"scale"``.
        inlier_tol: relative depth error still counted as an inlier (0.1 = 10 %).
        kind: what an array ``prediction`` holds (default relative disparity); results carry their own.
        model: model name recorded for arrays (results carry their own).
        max_trials, seed: random sampling of the robust fit.

    Returns:
        (calibration, per-anchor residuals).

    Raises:
        ValueError / CalibrationError: bad arguments, anchors outside the image, too few usable anchors.
    """
    values, res_kind, res_model = _prediction(prediction)
    kind_ = kind or res_kind
    if kind_ not in INPUT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(INPUT_KINDS)}, got {kind_!r}")
    if values.ndim != 2:
        raise ValueError(f"prediction must be an (H, W) map, got shape {values.shape}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    h, w = values.shape
    anc = _anchors(anchors, (h, w))
    anc.check_inside(w, h)
    disp = _as_disparity(values, kind_)
    d = sample_bilinear(disp, anc.u, anc.v)
    usable = np.isfinite(d)
    notes: list[str] = []
    if not usable.all():
        notes.append(f"{int((~usable).sum())} point(s) fall on invalid prediction pixels and were dropped")
    fit_mode: FitMode = ("scale" if usable.sum() == 1 else "scale_shift") if mode == "auto" else mode  # type: ignore[assignment]
    if fit_mode == "scale":
        nonpos = usable & ~(d > 0)
        if nonpos.any():
            notes.append(f"{int(nonpos.sum())} point(s) have prediction <= 0 and cannot fix a scale; dropped")
        usable &= d > 0
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        raise CalibrationError(f"{anc.source}: no known point lies on a valid prediction pixel")
    fit = robust_disparity_fit(d[idx], anc.depth[idx], fit_mode, inlier_tol=inlier_tol, max_trials=max_trials,
                               seed=seed)
    inlier = np.zeros(len(anc), dtype=bool)
    inlier[idx[fit.inliers]] = True

    if fit_mode == "scale":
        notes.append("scale only (shift assumed 0: prediction 0 = infinitely far); one known distance cannot "
                     "separate scale from shift, so depths far from the known ones may drift")
    need = 2 if fit_mode == "scale_shift" else 1
    if idx.size <= need + 1 and idx.size > 1:
        notes.append(f"{idx.size} points: too little redundancy to tell a bad point from a good one (any {need} "
                     f"fit exactly); add points")
    fin_map = disp[np.isfinite(disp)]
    if fit_mode == "scale_shift" and fin_map.size:
        lo, hi = np.percentile(fin_map, [2, 98])
        span = float(np.ptp(d[idx[fit.inliers]]))
        if hi > lo and span < 0.1 * (hi - lo):
            notes.append(f"known points cover only {100 * span / (hi - lo):.0f} % of the image's disparity range: "
                         "the shift is poorly determined and depth far from them is extrapolated; spread the "
                         "points over near and far, or use mode='scale'")
    if fit.inliers.sum() < 0.5 * idx.size:
        notes.append(f"only {int(fit.inliers.sum())} of {idx.size} points agree with the fit: check that the "
                     "points belong to this image and its orientation")

    cal = Calibration(fit_mode, fit.scale, fit.shift, int(idx.size), int(fit.inliers.sum()), {}, anc.source,
                      kind_, model or res_model, float(inlier_tol),
                      (float(anc.depth[inlier].min()), float(anc.depth[inlier].max())) if inlier.any() else None,
                      notes, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    inv_at = cal.scale * d + cal.shift
    with np.errstate(divide="ignore", invalid="ignore"):
        pred_at = np.where(np.isfinite(inv_at) & (inv_at > 0), 1.0 / inv_at, np.nan)
    res = PointResiduals(anc.u, anc.v, anc.depth, d, pred_at, inlier)
    summary = _summary(res)
    inv_map = cal.inverse_depth(values)
    with np.errstate(invalid="ignore"):
        summary["invalid_fraction"] = float(np.mean(~(np.isfinite(inv_map) & (inv_map > 0))))
    if summary["invalid_fraction"] > 0:
        warnings.warn(f"the fitted calibration gives {100 * summary['invalid_fraction']:.2f} % of this image no "
                      "depth (1/depth <= 0); those pixels are set to 0 = unknown when applied",
                      CalibrationWarning, stacklevel=2)
    return replace(cal, residuals=summary), res
