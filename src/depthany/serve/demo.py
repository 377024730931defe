"""The web demo: a Gradio app like the official Hugging Face demo, with the files people actually need.

Upload a photo (or pick an example), choose the model, colour map and input size, and get:

* an image slider, photo vs depth picture (``gr.ImageSlider``);
* the depth as a 16-bit PNG with its decoding in the file (not the official demo's truncated cast) and as a
  float32 ``.npy``;
* for metric models, a point cloud to turn around in the browser (``gr.Model3D``) and as a ``.ply`` download.

The upload is read with :func:`depthany.io.image.read_image` from the original file (EXIF orientation, alpha,
16-bit, CMYK handled like everywhere else in depthany; RGB order, unlike the official V1 demo's channel swap).
Nothing is fetched from the network: only models whose weights are already on disk are offered, Gradio's
analytics are off and there is no share link.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..budget import DEFAULT_MAX_TOKENS, check_max_tokens, shrink_note
from ..geometry.pointcloud import write_ply
from ..io.colormap import AUTO_CMAP, CMAP_CHOICES, check_cmap, resolve_cmap
from ..io.depth import write_npy, write_png16
from ..io.image import IMAGE_SUFFIXES, read_image
from ..io.visual import depth_color
from ..predictor import DepthPredictor
from ..result import DepthResult
from ..zoo import PATCH_SIZE

MAX_VIEW_POINTS = 250_000  # points sent to the browser viewer; the .ply download keeps them all


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu: a zoo name (weights on disk) or a weights file."""

    label: str
    model: str | None = None
    weights: Path | None = None


def local_model_choices(weights: list[Path] | None = None) -> list[ModelChoice]:
    """Zoo models whose weights are already on disk (HF cache or bundled), then each ``weights`` file.

    Nothing is downloaded: a model not on disk is not offered.
    """
    from .. import zoo
    from ..weights.hub import is_cached

    choices = [ModelChoice(name, model=name) for name, spec in zoo.MODELS.items() if is_cached(spec)]
    for w in weights or []:
        choices.append(ModelChoice(f"{Path(w).name} (local file)", weights=Path(w)))
    return choices


def find_examples(folder: str | Path | None = None) -> list[Path]:
    """Images in ``folder``, else in ``./examples``, else in the repository's ``examples/`` (sorted)."""
    candidates = [Path(folder)] if folder else [Path("examples"), Path(__file__).resolve().parents[3] / "examples"]
    for c in candidates:
        if c.is_dir():
            files = sorted(p for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if files:
                return files
    return []


@dataclass
class DemoOutput:
    """What one click produces: slider pair, file paths and a description."""

    photo: np.ndarray
    picture: np.ndarray
    png16: Path
    npy: Path
    ply: Path | None
    view: Path | None
    info: str
    result: DepthResult = field(repr=False)


class DemoBackend:
    """Loads models on demand (keeping ``cache_size`` resident) and turns an upload into :class:`DemoOutput`.

    Args:
        choices: the model menu (see :func:`local_model_choices`).
        device, precision: where and how models run.
        workdir: where output files are written (one subfolder per request; old ones are swept).
        cache_size: loaded models kept in memory.
        keep_runs: request subfolders kept on disk (Gradio copies outputs into its own cache).
        max_tokens: network-input budget per image (:mod:`depthany.budget`); larger inputs are shrunk to fit
            (the info text says so), too-thin images are refused with a message.
        cmap: the colour map first chosen in the menu; ``"auto"``: the official map of each model's family.
    """

    def __init__(self, choices: list[ModelChoice], device: str = "cpu", precision: str = "fp32",
                 workdir: str | Path | None = None, cache_size: int = 2, keep_runs: int = 16,
                 max_tokens: int = DEFAULT_MAX_TOKENS, cmap: str = AUTO_CMAP) -> None:
        if not choices:
            raise ValueError("no model to offer: no zoo weights are on disk and no --weights file was given; see "
                             "`depthany models` (CACHED column) or pass --weights FILE")
        self.choices = {c.label: c for c in choices}
        self.device, self.precision = device, precision
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="depthany-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cache_size, self.keep_runs = cache_size, keep_runs
        self.max_tokens = check_max_tokens(max_tokens)
        self.cmap = check_cmap(cmap)
        self._models: OrderedDict[str, DepthPredictor] = OrderedDict()
        self._lock = threading.Lock()
        self._runs = 0

    def predictor(self, label: str, input_size: int | None = None) -> DepthPredictor:
        """The predictor for menu entry ``label`` at ``input_size`` (the network is loaded once and shared).

        Raises:
            ValueError: unknown label or invalid input size (naming it).
        """
        if label not in self.choices:
            raise ValueError(f"unknown model {label!r}; choose one of {', '.join(self.choices)}")
        with self._lock:
            base = self._models.get(label)
            if base is None:
                c = self.choices[label]
                base = DepthPredictor.from_pretrained(c.model, c.weights, self.device, self.precision,  # type: ignore[arg-type]
                                                      max_tokens=self.max_tokens)
                self._models[label] = base
                while len(self._models) > self.cache_size:
                    self._models.popitem(last=False)
            self._models.move_to_end(label)
        if input_size is None or input_size == base.input_size:
            return base
        return base.with_settings(input_size=int(input_size))

    def default_input_size(self, label: str) -> int:
        """Input size of the first load of ``label`` (the model's own)."""
        return self.predictor(label).input_size

    def _run_dir(self, stem: str) -> Path:
        with self._lock:
            self._runs += 1
            run = self.workdir / f"{self._runs:06d}-{stem}"
        run.mkdir(parents=True)
        runs = sorted(p for p in self.workdir.iterdir() if p.is_dir())
        for old in runs[: max(0, len(runs) - self.keep_runs)]:
            shutil.rmtree(old, ignore_errors=True)
        return run

    def run(self, image_path: str | Path, label: str, cmap: str | None = None,
            input_size: int | None = None) -> DemoOutput:
        """Predict one uploaded image file and write the downloads (``cmap``: a colour-map name, ``"auto"`` or
        None for the backend's).

        Raises:
            ImageReadError: the upload is not a readable image (naming it).
            ValueError: bad model, colour map or input size.
        """
        loaded = read_image(image_path)
        pred = self.predictor(label, input_size)
        cmap = resolve_cmap(self.cmap if cmap is None else cmap, pred.spec.arch.family)
        t0 = time.perf_counter()
        result = pred.predict(loaded)  # type: ignore[arg-type]  # LoadedImage keeps EXIF for the intrinsics
        elapsed = time.perf_counter() - t0
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(image_path).stem)[:60] or "image"
        run = self._run_dir(stem)
        extra = {"model": result.model, "source": Path(image_path).name}
        png16 = write_png16(run / f"{stem}_depth16.png", result.values, result.kind, result.unit, sidecar=False,
                            extra=extra)[0]
        npy = write_npy(run / f"{stem}_depth.npy", result.values)
        ply = view = None
        lines = [f"**{result.model}**: {'metric depth in metres' if result.is_metric else 'relative disparity (bigger = nearer, no unit)'}",
                 f"range {float(np.nanmin(result.values)):.4g} .. {float(np.nanmax(result.values)):.4g}, "
                 f"image {result.values.shape[1]}x{result.values.shape[0]}, network "
                 f"{result.network_size[1]}x{result.network_size[0]}, inference {elapsed:.2f} s",
                 "16-bit PNG: value = offset + scale * q (see the `depthany` PNG text chunk)"]
        budget = result.meta.get("input_budget", {})
        if budget.get("shrunk"):
            lines.append(f"network input shrunk to the budget: {shrink_note(budget, result.image_size)}")
        if result.is_metric:
            ply, view, k = self._point_clouds(result, loaded.rgb, run, stem)
            lines.append(f"point cloud: {k}")
        return DemoOutput(loaded.rgb, depth_color(result, cmap), png16, npy, ply, view, "  \n".join(lines), result)

    @staticmethod
    def _point_clouds(result: DepthResult, rgb: np.ndarray, run: Path, stem: str) -> tuple[Path, Path, str]:
        """Full ``.ply`` (OpenCV camera frame) and a subsampled one turned to y-up for the viewer."""
        from ..geometry.backproject import depth_to_points
        from ..geometry.pointcloud import write_result_ply
        from ..geometry.resolve import intrinsics_for_result

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default focal is named in the info text instead
            k = intrinsics_for_result(result)
            ply = write_result_ply(result, rgb, run / f"{stem}_points.ply", intrinsics=k)
            cloud = depth_to_points(result, k)
        xyz, colours = cloud.xyz, cloud.colors(rgb)
        if len(xyz) > MAX_VIEW_POINTS:
            pick = np.linspace(0, len(xyz) - 1, MAX_VIEW_POINTS).astype(np.int64)
            xyz, colours = xyz[pick], colours[pick]
        # Viewers are y-up and look down -z: flip y and z of the camera frame (x right, y down, z forward).
        view = write_ply(run / f"{stem}_view.ply", xyz * np.array([1, -1, -1], np.float32), colours)
        desc = f"fx {k.fx:.1f} px, fy {k.fy:.1f} px ({k.source}){' ' + k.detail if k.detail else ''}"
        return ply, view, desc


def build_demo(backend: DemoBackend, examples: list[Path] | None = None, title: str = "depthany",
               generate: Any = None) -> Any:
    """The Gradio Blocks app (not launched). The click handler is exposed as API endpoint ``/predict``:
    ``(image file, model label, cmap, input size) -> (slider pair, png16 file, npy file, ply file, 3-D view,
    info markdown)``. With diffusers installed a "Generate" tab follows (:mod:`depthany.serve.generate_tab`;
    ``generate``: its :class:`~depthany.serve.generate_tab.GenerateBackend`, default: the pairs on disk)."""
    import gradio as gr

    labels = list(backend.choices)
    first_size = backend.default_input_size(labels[0])

    def predict(image: str | None, label: str, cmap: str, input_size: float) -> tuple[Any, ...]:
        if not image:
            raise gr.Error("Upload an image first (or click an example).")
        try:
            out = backend.run(image, label, cmap, int(input_size))
        except ValueError as e:  # ImageReadError is a ValueError: a clear message, not a traceback
            raise gr.Error(str(e)) from None
        metric = out.ply is not None
        return ((out.photo, out.picture), str(out.png16), str(out.npy),
                gr.File(value=str(out.ply) if out.ply else None, visible=metric),
                gr.Model3D(value=str(out.view) if out.view else None, visible=metric), out.info)

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {title}: monocular depth with Depth Anything\nUpload a photo, choose a model and press "
                    "**Compute depth**. Drag the slider to compare. Downloads: 16-bit PNG (lossless, decoding in "
                    "the file), float32 `.npy` and, for metric models, a `.ply` point cloud.")
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Input image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 elem_id="input-image")
                model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                with gr.Row():
                    cmap = gr.Dropdown(list(CMAP_CHOICES), value=backend.cmap, label="Colour map", elem_id="cmap")
                    size = gr.Slider(4 * PATCH_SIZE, 100 * PATCH_SIZE, value=first_size, step=PATCH_SIZE, label="Input size (px, short side)",
                                     elem_id="input-size")
                run = gr.Button("Compute depth", variant="primary", elem_id="run")
            with gr.Column():
                slider = gr.ImageSlider(label="Photo | depth", type="numpy", format="png", elem_id="slider")
                info = gr.Markdown(elem_id="info")
        with gr.Row():
            png16 = gr.File(label="Depth, 16-bit PNG", elem_id="png16")
            npy = gr.File(label="Depth, float32 .npy", elem_id="npy")
            ply = gr.File(label="Point cloud .ply (metric models)", visible=False, elem_id="ply")
        view = gr.Model3D(label="Point cloud", display_mode="point_cloud", visible=False, elem_id="view",
                          clear_color=(0.1, 0.1, 0.1, 1.0))
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[image], label="Examples")
        run.click(predict, [image, model, cmap, size], [slider, png16, npy, ply, view, info], api_name="predict")
        from .generate_tab import add_generate_tab

        add_generate_tab(backend, generate)
    return demo


def launch_demo(backend: DemoBackend, examples: list[Path] | None = None, host: str = "127.0.0.1", port: int = 7860,
                block: bool = True, max_file_size: str = "50mb", generate: Any = None) -> Any:
    """Build and launch the demo on ``host:port`` (no share link, no analytics). Returns the Blocks app."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_demo(backend, examples, generate=generate)
    demo.queue(default_concurrency_limit=1)  # one prediction at a time: the model is shared
    # show_error: a file the image component itself cannot open gets its reason shown, not a generic error
    demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True,
                max_file_size=max_file_size, allowed_paths=[str(backend.workdir)], ssr_mode=False, show_error=True)
    return demo
