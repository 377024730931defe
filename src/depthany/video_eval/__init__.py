"""Video depth evaluation: run a video model, an image model (per frame or with the EMA of ``depthany video``)
or saved predictions over benchmark videos and score them with the Video Depth Anything benchmark's metrics
(per-video alignment, AbsRel / δ1 / RMSE, TAE: :mod:`depthany.eval.tae`).

    >>> from depthany.eval.video_data import VIDEO_BENCHMARKS, read_vda_json
    >>> from depthany.video_eval import VdaSource, evaluate_video, settings_for
    >>> bench = VIDEO_BENCHMARKS["vda-scannet-tae"]
    >>> report = evaluate_video(read_vda_json("benchmark", bench), settings_for(bench),  # doctest: +SKIP
    ...                         VdaSource(VideoDepthPredictor.from_pretrained("vda-small")))
    >>> report.mean()["tae"]                                                          # doctest: +SKIP

Sources live in :mod:`.sources`, the scoring loop in :mod:`.runner`.
"""

from __future__ import annotations

from .runner import VideoEvalReport, VideoEvalSettings, evaluate_scene, evaluate_video, settings_for
from .sources import ImageModelSource, SavedVideoSource, VdaSource, VideoSource

__all__ = ["ImageModelSource", "SavedVideoSource", "VdaSource", "VideoEvalReport", "VideoEvalSettings",
           "VideoSource", "evaluate_scene", "evaluate_video", "settings_for"]
