"""The output-format registry behind ``depthany predict --format``: a name -> a writer and the files it makes.

A writer takes an :class:`OutputContext` (the result, the RGB image, where to write, options) and returns the
paths it wrote. ``writer`` may be ``"module:function"``, imported only when the format is asked for, so an
optional format (``ply``) costs nothing until used and fails with a clear :class:`OutputFormatError` if its
code is missing.

The registry sits above :mod:`depthany.io` (file formats, pictures) and :mod:`depthany.geometry` (point clouds):
it is what ``predict`` writes, built from both.

File names, for an input ``photos/a/x.jpg`` written under ``out/`` (``base = out/a/x``)::

    npy         out/a/x.npy               float32 (H, W), the raw prediction
    png16       out/a/x_depth16.png       16-bit PNG + out/a/x_depth16.json (decoding metadata)
    pfm         out/a/x.pfm               float32 PFM
    exr         out/a/x.exr               float32 OpenEXR, channel Y
    color       out/a/x_color.png         colour map of nearness
    gray        out/a/x_gray.png          8-bit gray nearness
    sbs         out/a/x_sbs.png           image | 50 px white | colour map
    controlnet  out/a/x_controlnet.png    8-bit, 3 channels, near = bright
    ply         out/a/x.ply               coloured point cloud (metric models; see depthany.geometry.pointcloud)
    sky         out/a/x_sky.png           8-bit sky mask, 255 = sky (Depth Anything 3 mono/metric)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import depth as depth_io
from .io import visual
from .io.atomic import atomic_path
from .io.colormap import DEFAULT_CMAP
from .result import DepthResult


class OutputFormatError(ValueError):
    """An unknown output format, or one whose code cannot be loaded."""


@dataclass
class OutputContext:
    """Everything a writer needs for one image.

    Attributes:
        result: the prediction; ``result.values`` is (H, W) float32.
        rgb: (H, W, 3) uint8 RGB input image (orientation applied), same H, W as the result.
        base: output path without suffix (``out/a/x``); writers append their suffixes.
        cmap: colour map for the colour pictures.
        png16_scale, png16_offset: fixed 16-bit quantisation (None: per-image min..max).
        options: per-format extra keyword arguments, by format name (``{"ply": {...}}``).
    """

    result: DepthResult
    rgb: np.ndarray
    base: Path
    cmap: str = DEFAULT_CMAP
    png16_scale: float | None = None
    png16_offset: float | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, suffix: str) -> Path:
        """``base`` + ``suffix`` (``"_color.png"`` -> ``out/a/x_color.png``)."""
        return self.base.with_name(self.base.name + suffix)

    def provenance(self) -> dict[str, Any]:
        """Model and source facts stored in the metadata of formats that carry any (and the network-input
        budget when the image ran below its official network size)."""
        r = self.result
        out: dict[str, Any] = {"model": r.model, "source": r.source, "image_size": list(r.image_size),
                               "network_size": list(r.network_size)}
        budget = r.meta.get("input_budget") or {}
        if budget.get("shrunk"):  # not the official network size: the file says so (docs/performance.md)
            out["input_budget"] = budget
        return out


Writer = Callable[[OutputContext], list[Path]]


@dataclass(frozen=True)
class OutputFormat:
    """A registered format: its writer (callable or ``"module:function"``) and the suffixes it writes."""

    name: str
    writer: Writer | str
    suffixes: tuple[str, ...]
    help: str

    def paths(self, base: Path) -> list[Path]:
        """The files this format writes for ``base``."""
        return [base.with_name(base.name + s) for s in self.suffixes]

    def load(self) -> Writer:
        """The writer callable, importing it if it is lazy.

        Raises:
            OutputFormatError: the module or function cannot be imported; says which and why.
        """
        if callable(self.writer):
            return self.writer
        module, _, attr = self.writer.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise OutputFormatError(f"output format {self.name!r} is not available: {self.writer} could not be "
                                    f"loaded ({type(e).__name__}: {e})") from e
        return _adapt_result_writer(self.name, self.suffixes[0], fn)


def _adapt_result_writer(name: str, suffix: str, fn: Callable[..., Any]) -> Writer:
    """Wrap ``fn(result, rgb, path, **options) -> Path`` into an atomic :data:`Writer`."""

    def write(ctx: OutputContext) -> list[Path]:
        final = ctx.path(suffix)
        with atomic_path(final) as tmp:
            written = Path(fn(ctx.result, ctx.rgb, tmp, **ctx.options.get(name, {})))
            if written != tmp:  # the writer chose another name next to tmp: still land on ``final``
                written.replace(tmp)
        return [final]

    return write


# ---------------------------------------------------------------------------------------------- writers


def _npy(ctx: OutputContext) -> list[Path]:
    return [depth_io.write_npy(ctx.path(".npy"), ctx.result.values)]


def _png16(ctx: OutputContext) -> list[Path]:
    r = ctx.result
    return depth_io.write_png16(ctx.path("_depth16.png"), r.values, kind=r.kind, unit=r.unit,
                                scale=ctx.png16_scale, offset=ctx.png16_offset, extra=ctx.provenance())


def _pfm(ctx: OutputContext) -> list[Path]:
    return [depth_io.write_pfm(ctx.path(".pfm"), ctx.result.values)]


def _exr(ctx: OutputContext) -> list[Path]:
    r = ctx.result
    meta = {"kind": r.kind, "unit": r.unit, **ctx.provenance()}
    return [depth_io.write_exr(ctx.path(".exr"), r.values, meta=meta)]


def _color(ctx: OutputContext) -> list[Path]:
    return [depth_io.write_png8(ctx.path("_color.png"), visual.depth_color(ctx.result, ctx.cmap))]


def _gray(ctx: OutputContext) -> list[Path]:
    return [depth_io.write_png8(ctx.path("_gray.png"), visual.depth_gray(ctx.result))]


def _sbs(ctx: OutputContext) -> list[Path]:
    pic = visual.side_by_side(ctx.rgb, visual.depth_color(ctx.result, ctx.cmap))
    return [depth_io.write_png8(ctx.path("_sbs.png"), pic)]


def _controlnet(ctx: OutputContext) -> list[Path]:
    return [depth_io.write_png8(ctx.path("_controlnet.png"), visual.controlnet_image(ctx.result))]


def _sky(ctx: OutputContext) -> list[Path]:
    sky = ctx.result.sky
    if sky is None:
        raise OutputFormatError(f"--format sky needs a model that predicts sky (da3-mono-large, da3-metric-large); "
                                f"{ctx.result.model} does not")
    return [depth_io.write_png8(ctx.path("_sky.png"), np.where(sky, 255, 0).astype(np.uint8))]


FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat("npy", _npy, (".npy",), "float32 (H, W) raw prediction"),
    OutputFormat("png16", _png16, ("_depth16.png", "_depth16.json"),
                 "16-bit PNG, value = offset + scale * q (metadata in the PNG and a JSON sidecar)"),
    OutputFormat("pfm", _pfm, (".pfm",), "float32 PFM"),
    OutputFormat("exr", _exr, (".exr",), "float32 OpenEXR, one channel 'Y'"),
    OutputFormat("color", _color, ("_color.png",), "colour-mapped nearness (near = warm)"),
    OutputFormat("gray", _gray, ("_gray.png",), "8-bit gray nearness (near = white)"),
    OutputFormat("sbs", _sbs, ("_sbs.png",), "image | 50 px white | colour map"),
    OutputFormat("controlnet", _controlnet, ("_controlnet.png",), "ControlNet depth: 8-bit RGB, near = bright"),
    OutputFormat("ply", "depthany.geometry.pointcloud:write_result_ply", (".ply",), "coloured point cloud"),
    OutputFormat("sky", _sky, ("_sky.png",), "8-bit sky mask, 255 = sky (Depth Anything 3 mono/metric)"),
)}


def parse_formats(spec: str | Sequence[str]) -> list[OutputFormat]:
    """``"npy,png16"`` (or a list, entries may hold commas) -> the formats, in order, without repeats.

    Lazy writers are imported now, so a missing optional format fails before any work is done.

    Raises:
        OutputFormatError: an unknown name (listing the known ones), an empty list, or a writer that
            cannot be imported.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for item in items for n in item.split(",") if n.strip()]
    if not names:
        raise OutputFormatError(f"no output format given; choose from {', '.join(FORMATS)}")
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise OutputFormatError(f"unknown output format {', '.join(map(repr, unknown))}; "
                                f"choose from {', '.join(FORMATS)}")
    chosen = [FORMATS[n] for n in dict.fromkeys(names)]
    for f in chosen:
        f.load()
    return chosen


def planned_paths(base: Path, formats: Sequence[OutputFormat]) -> list[Path]:
    """Every file the formats would write for ``base``."""
    return [p for f in formats for p in f.paths(base)]


def write_outputs(ctx: OutputContext, formats: Sequence[OutputFormat]) -> list[Path]:
    """Run each format's writer for one image; returns all paths written.

    Raises:
        the first writer's error, after the formats before it have been written (each file is atomic).
    """
    if ctx.rgb.shape[:2] != ctx.result.values.shape:
        raise ValueError(f"image {ctx.rgb.shape[:2]} and result {ctx.result.values.shape} sizes differ")
    written: list[Path] = []
    for f in formats:
        written.extend(f.load()(ctx))
    return written
