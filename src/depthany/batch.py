"""Depth for many images at once: files, folders, globs and ``.txt`` lists in; depth files out; a report back.

    >>> from depthany import DepthPredictor
    >>> from depthany.batch import predict_files
    >>> predictor = DepthPredictor.from_pretrained("da2-small")                          # doctest: +SKIP
    >>> report = predict_files(predictor, ["photos/"], "depth/", formats="npy,color")    # doctest: +SKIP
    >>> report.ok, report.failures                                                        # doctest: +SKIP
    (12, [('photos/broken.jpg', 'corrupt or truncated image ...')])

This is the loop behind ``depthany predict``: read an image, predict (batched by network size), write each
output format, let the image go. A bad image, one too thin for the network-input budget or one whose outputs
cannot be written is recorded in the report and the batch carries on; what was written stays written (every
file is written atomically).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .budget import InputBudgetError, shrink_note
from .io.colormap import AUTO_CMAP, resolve_cmap
from .io.image import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, ImageReadError, LoadedImage, read_image
from .io.inputs import InputItem, expand_inputs
from .outputs import OutputContext, OutputFormat, parse_formats, planned_paths, write_outputs
from .predictor import DepthPredictor

Log = Callable[[str], None]


@dataclass
class BatchPlan:
    """What a batch will do, decided before any model is loaded.

    Attributes:
        items: images to predict, each with its output key (sub-folders of the inputs mirrored).
        formats: the output formats.
        failures: (argument or list entry, reason) for inputs that yield no image.
        skipped: images whose outputs all exist already (with ``skip_existing``).
    """

    items: list[InputItem]
    formats: list[OutputFormat]
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


@dataclass
class BatchReport:
    """What a batch did.

    Attributes:
        ok: images whose outputs were all written.
        skipped: images skipped because their outputs exist.
        failures: (input, reason) for every input that failed: unreadable, too thin for the budget, prediction
            or writing failed, or no image at all. The reason does not repeat the input.
        shrunk: (input, note) for images that ran below their official network size (the network-input
            budget, :mod:`depthany.budget`).
        written: every file written.
    """

    ok: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    shrunk: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    @classmethod
    def from_plan(cls, plan: BatchPlan) -> BatchReport:
        """A report that starts with the plan's skips and failed inputs."""
        report = cls(skipped=plan.skipped)
        for target, reason in plan.failures:
            report.fail(target, reason)
        return report

    def fail(self, target: str, reason: str) -> None:
        """Record a failure; a leading ``"<target>: "`` in ``reason`` is dropped."""
        prefix = f"{target}: "
        self.failures.append((target, reason[len(prefix):] if reason.startswith(prefix) else reason))


def plan_batch(inputs: Sequence[str | Path], out_dir: str | Path, formats: str | Sequence[str] = "npy,color",
               skip_existing: bool = False) -> BatchPlan:
    """Expand ``inputs`` and parse ``formats`` without loading a model.

    Raises:
        OutputFormatError: an unknown format name (a ``ValueError``).
    """
    chosen = parse_formats(formats)
    found = expand_inputs(inputs, exclude=[out_dir])
    plan = BatchPlan(found.items, chosen, [(p.target, p.reason) for p in found.problems])
    if skip_existing:
        plan.items = [it for it in found.items
                      if not all(p.exists() for p in planned_paths(Path(out_dir) / it.key, chosen))]
        plan.skipped = len(found.items) - len(plan.items)
    return plan


def check_formats(predictor: DepthPredictor, formats: Sequence[OutputFormat]) -> None:
    """Refuse formats the model cannot feed, before any work.

    Raises:
        ValueError: ``ply`` (metres) with a model that predicts relative disparity.
    """
    if any(f.name == "ply" for f in formats) and predictor.spec.arch.head != "metric":
        raise ValueError(f"--format ply needs a metric model (metres); {predictor.spec.name} predicts relative "
                         "disparity. Use a da2-metric-* model, or `depthany calibrate` first")


def predict_files(predictor: DepthPredictor, inputs: Sequence[str | Path] | BatchPlan, out_dir: str | Path,
                  formats: str | Sequence[str] = "npy,color", *, cmap: str = AUTO_CMAP,
                  max_pixels: int = DEFAULT_MAX_PIXELS,
                  background: tuple[int, int, int] | None = DEFAULT_BACKGROUND,
                  png16_scale: float | None = None, png16_offset: float | None = None,
                  options: dict[str, dict[str, Any]] | None = None, skip_existing: bool = False,
                  log: Log | None = None, progress: bool = False) -> BatchReport:
    """Predict every image of ``inputs`` and write its outputs under ``out_dir``.

    Args:
        predictor: the model (its batch size, budget and backend apply).
        inputs: image files, folders (recursive), globs and ``.txt`` lists, or a :class:`BatchPlan`.
        out_dir: output folder; ``photos/a/x.jpg`` given as ``photos`` writes ``out_dir/a/x.npy`` ...
        formats: output format names (``npy``, ``png16``, ``pfm``, ``exr``, ``color``, ``gray``, ``sbs``,
            ``controlnet``, ``ply``; :mod:`depthany.outputs`); ignored when ``inputs`` is a plan.
        cmap: colour map of ``color``/``sbs``; ``"auto"``: the official map of the model's family.
        max_pixels: larger images fail (decompression bombs).
        background: RGB that transparent pixels are composited on; None drops alpha.
        png16_scale, png16_offset: fixed 16-bit quantisation (None: each image's min..max).
        options: per-format keyword arguments (``{"ply": {"fx": 500.0}}``).
        skip_existing: skip images whose outputs all exist (ignored when ``inputs`` is a plan).
        log: where notes go as they happen (a shrunk network input); None: only the report.
        progress: a tqdm bar on stderr.

    Returns:
        the :class:`BatchReport`; failures never raise.

    Raises:
        ValueError: bad formats, colour map or png16 settings, or a format the model cannot feed (before any
            work).
    """
    plan = inputs if isinstance(inputs, BatchPlan) else plan_batch(inputs, out_dir, formats, skip_existing)
    check_formats(predictor, plan.formats)
    used_cmap = resolve_cmap(cmap, predictor.spec.arch.family)
    if png16_offset is not None and png16_scale is None:
        raise ValueError("png16_offset needs png16_scale")
    if png16_scale is not None and not png16_scale > 0:
        raise ValueError(f"png16_scale must be > 0, got {png16_scale}")
    report = BatchReport.from_plan(plan)
    if plan.items:
        _run(predictor, plan, Path(out_dir), report, log, progress, max_pixels=max_pixels, background=background,
             context={"cmap": used_cmap, "png16_scale": png16_scale, "png16_offset": png16_offset,
                      "options": options or {}})
    return report


def _run(predictor: DepthPredictor, plan: BatchPlan, out_dir: Path, report: BatchReport, log: Log | None,
         progress: bool, *, max_pixels: int, background: tuple[int, int, int] | None,
         context: dict[str, Any]) -> None:
    """Read -> predict -> write, streaming: an image is held only until its outputs are written."""
    import sys

    from tqdm import tqdm  # type: ignore[import-untyped]

    queued: list[tuple[InputItem, LoadedImage | None]] = []  # index = position in the stream to the predictor
    with tqdm(total=len(plan.items), unit="img", file=sys.stderr, disable=None if progress else True,
              dynamic_ncols=True) as bar:

        def say(text: str) -> None:
            if log is not None:
                with tqdm.external_write_mode(file=sys.stderr):  # above the bar, not through it
                    log(text)

        def stream() -> Iterator[LoadedImage]:
            for item in plan.items:
                try:
                    loaded = read_image(item.path, max_pixels=max_pixels, alpha_background=background)
                except (ImageReadError, OSError) as e:
                    report.fail(str(item.path), str(e))
                    bar.update()
                    continue
                queued.append((item, loaded))
                yield loaded

        for i, res in predictor.iter_predict(stream()):
            item, loaded = queued[i]
            queued[i] = (item, None)  # let the image go once its outputs are written
            target = str(item.path)
            if isinstance(res, InputBudgetError):
                report.fail(target, str(res))
            elif isinstance(res, Exception):
                report.fail(target, f"prediction failed ({type(res).__name__}: {res})")
            else:
                assert loaded is not None
                budget = res.meta.get("input_budget", {})
                if budget.get("shrunk"):
                    note = shrink_note(budget, res.image_size)
                    report.shrunk.append((target, note))
                    say(f"note: {target}: {note}")
                ctx = OutputContext(res, loaded.rgb, out_dir / item.key, **context)
                try:
                    report.written += write_outputs(ctx, plan.formats)
                    report.ok += 1
                except Exception as e:  # one image's bad output must not stop the batch
                    report.fail(target, f"writing outputs failed ({type(e).__name__}: {e})")
            bar.update()
