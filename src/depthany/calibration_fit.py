"""Fit metres to one relative prediction and save what the user asked for: the task behind ``depthany calibrate
fit``. The maths is in :mod:`depthany.geometry` (anchors, the robust fit, point clouds); this module builds the
prediction (a photo through a model, or a saved ``.npy``), gathers the known distances and writes the outputs.

    >>> from depthany.calibration_fit import fit_source                                 # doctest: +SKIP
    >>> outcome = fit_source("photo.jpg", points="known.csv", model="da2-small", output="cam.json")
    >>> outcome.calibration.report()                                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .budget import DEFAULT_MAX_TOKENS
from .geometry.anchors import Anchors, anchors_from_sparse, read_points_csv, read_sparse_depth
from .geometry.calibrate import Calibration, PointResiduals, fit_calibration
from .io.image import read_image
from .result import DepthResult


@dataclass
class FitOutcome:
    """What :func:`fit_source` did.

    Attributes:
        calibration: the fitted calibration (saved to ``written[0]``).
        residuals: per-point residuals of the known distances.
        metric: the source's prediction in metres ((H, W) float32 ``metric.values``).
        written: every file written: the calibration JSON, then the depth ``.npy`` and the ``.ply`` when asked.
    """

    calibration: Calibration
    residuals: PointResiduals
    metric: DepthResult
    written: list[Path] = field(default_factory=list)


def load_prediction(source: str | Path, *, kind: str = "relative", image: str | Path | None = None,
                    model: str | None = None, weights: str | Path | None = None, device: str = "cpu",
                    precision: str = "fp32", input_size: int | None = None,
                    max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[DepthResult, np.ndarray | None]:
    """The prediction of ``source`` and its RGB image.

    Args:
        source: a photo (run through the model) or a saved ``.npy`` prediction ((H, W) float).
        kind: what a ``.npy`` holds: ``"relative"`` disparity or ``"metric"`` depth in metres.
        image: the photo of a ``.npy`` source (colours and EXIF intrinsics for point clouds); optional.
        model, weights, device, precision, input_size, max_tokens: the model for a photo
            (:meth:`depthany.predictor.DepthPredictor.from_pretrained`).

    Returns:
        (the prediction, (H, W, 3) uint8 RGB or None when a ``.npy`` came without ``image``).

    Raises:
        ValueError: an unreadable or non-2-D ``.npy``, an unreadable image, a model that does not load.
    """
    source = Path(source)
    if source.suffix.lower() == ".npy":
        try:
            values = np.load(source, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{source}: not a readable .npy array ({e})") from e
        if values.ndim != 2:
            raise ValueError(f"{source}: expected an (H, W) prediction, got shape {values.shape}")
        rgb, meta = None, {}
        if image is not None:
            loaded = read_image(image)
            rgb = loaded.rgb
            meta = {"exif": loaded.exif, "orientation": loaded.orientation, "raw_size": loaded.raw_size}
        out_kind = "metric_depth" if kind == "metric" else "relative_disparity"
        return DepthResult(values.astype(np.float32), out_kind, model or "unknown", values.shape,  # type: ignore[arg-type]
                           values.shape, str(source), meta), rgb
    from .predictor import DepthPredictor

    predictor = DepthPredictor.from_pretrained(model, weights, device=device, precision=precision,  # type: ignore[arg-type]
                                               input_size=input_size, max_tokens=max_tokens)
    loaded = read_image(source)
    result = predictor.predict(loaded.rgb)
    result.source = str(source)
    result.meta.update(exif=loaded.exif, orientation=loaded.orientation, raw_size=loaded.raw_size)
    return result, loaded.rgb


def gather_anchors(shape: tuple[int, int], *, points: str | Path | None = None,
                   sparse_depth: str | Path | None = None, depth_scale: float | None = None,
                   distances: Sequence[tuple[float, float, float]] = ()) -> Anchors | np.ndarray:
    """The known distances from exactly one source: a ``u,v,depth_m`` CSV, a sparse depth map (metres, or
    integer units times ``depth_scale``) sampled onto an (H, W) = ``shape`` image, or ``(u, v, metres)`` points.

    Raises:
        ValueError: not exactly one source, or a source that cannot be read.
    """
    given = [n for n, v in (("points", points), ("sparse_depth", sparse_depth), ("distances", distances)) if v]
    if len(given) != 1:
        raise ValueError("give exactly one of points, sparse_depth or distances" +
                         (f" (got {', '.join(given)})" if given else ""))
    if points is not None:
        return read_points_csv(points)
    if sparse_depth is not None:
        return anchors_from_sparse(read_sparse_depth(sparse_depth, depth_scale), shape, Path(sparse_depth).name)
    return Anchors.from_points(list(distances), f"--distance ({len(distances)} points)")


def fit_source(source: str | Path, *, points: str | Path | None = None, sparse_depth: str | Path | None = None,
               depth_scale: float | None = None, distances: Sequence[tuple[float, float, float]] = (),
               mode: str = "auto", inlier_tol: float = 0.1, seed: int = 0, output: str | Path | None = None,
               save_depth: str | Path | None = None, ply: str | Path | None = None,
               ply_options: dict[str, Any] | None = None, **prediction: Any) -> FitOutcome:
    """Fit a calibration for ``source`` from one source of known distances and save it.

    Args:
        source: a photo or a saved ``.npy`` prediction (see :func:`load_prediction`, which gets
            ``**prediction``: ``kind``, ``image``, ``model``, ``weights``, ``device``, ``precision``,
            ``input_size``, ``max_tokens``).
        points, sparse_depth, depth_scale, distances: the known distances (:func:`gather_anchors`).
        mode: ``"auto"``, ``"scale_shift"`` or ``"scale"`` (``-`` accepted for ``_``).
        inlier_tol, seed: the robust fit's inlier tolerance (relative) and sampling seed.
        output: the calibration JSON (default ``<source stem>.calibration.json`` in the working folder).
        save_depth: also write the metric depth (``.npy``, float32 metres).
        ply: also write the point cloud; ``ply_options``: keyword arguments of
            :func:`depthany.geometry.pointcloud.write_result_ply`.

    Raises:
        ValueError: bad inputs, too few usable points, a model that does not load (naming the problem).
    """
    result, rgb = load_prediction(source, **prediction)
    anchors = gather_anchors(result.values.shape, points=points, sparse_depth=sparse_depth,
                             depth_scale=depth_scale, distances=distances)
    cal, residuals = fit_calibration(result, anchors, mode=mode.replace("-", "_"), inlier_tol=inlier_tol,
                                     seed=seed)
    out = Path(output) if output is not None else Path(f"{Path(source).stem}.calibration.json")
    cal.save(out)
    metric = cal.apply_result(result)
    outcome = FitOutcome(cal, residuals, metric, [out])
    if save_depth is not None:
        path = Path(save_depth)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, metric.values)
        outcome.written.append(path)
    if ply is not None:
        from .geometry.pointcloud import write_result_ply

        outcome.written.append(write_result_ply(metric, rgb, ply, **(ply_options or {})))
    return outcome
