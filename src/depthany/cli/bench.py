"""``depthany bench``: latency, throughput, memory and accuracy per backend and precision vs transformers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..bench.config import BenchConfig
from ..precision import INFERENCE_PRECISIONS
from .options import device_option, max_tokens_option

DEFAULT = BenchConfig()  # every default is the library's


def _csv(values: tuple[object, ...]) -> str:
    return ",".join(f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v) for v in values)


@click.command("bench")
@click.option("--model", "-m", default=DEFAULT.model, show_default=True,
              help="Zoo name of the architecture to measure (its own default: a real size, not the bundled toy).")
@click.option("--weights", default=DEFAULT.weights, show_default=True,
              help="random (seeded; speed does not depend on the values), pretrained (the zoo weights), or a path.")
@click.option("--backend", "-b", default="all", show_default=True,
              help="Comma-separated backends (torch, onnxruntime, openvino), 'all' installed ones, or 'auto'.")
@click.option("--precision", "-p", default=_csv(DEFAULT.precisions), show_default=True,
              help="Comma-separated: fp32, bf16, fp16, int8 (the cached `depthany quantize` model for the weights, "
                   "else one calibrated on --calibration images or on the benchmark's synthetic photos).")
@click.option("--size", "-s", default=_csv(DEFAULT.sizes), show_default=True,
              help="Network sizes HxW (multiples of 14); 518x686 is what a 480x640 photo becomes.")
@click.option("--batch", default=_csv(DEFAULT.batches), show_default=True, help="Comma-separated batch sizes.")
@device_option()
@click.option("--threads", type=click.IntRange(min=1), default=DEFAULT.threads,
              help="Threads for every engine (default: torch's default, usually the physical cores).")
@click.option("--repeats", type=click.IntRange(min=1), default=DEFAULT.repeats, show_default=True,
              help="Timed rounds.")
@click.option("--warmup", type=click.IntRange(min=0), default=DEFAULT.warmup, show_default=True,
              help="Untimed rounds first.")
@click.option("--baseline/--no-baseline", default=DEFAULT.baseline, show_default=True,
              help="Run transformers' DepthAnythingForDepthEstimation (same weights) in the same run.")
@click.option("--e2e/--no-e2e", default=DEFAULT.e2e, show_default=True,
              help="Also time decode, preprocess, network, postprocess and encode.")
@click.option("--memory/--no-memory", default=DEFAULT.memory, show_default=True,
              help="Peak RSS per job, each in a fresh process.")
@click.option("--peak/--no-peak", default=DEFAULT.peak, show_default=True, help="Measure the matmul peak (GFLOP/s).")
@max_tokens_option(extra_help="Sizes over it are refused.")
@click.option("--calibration", "-c", multiple=True,
              help="int8 without a cached model for the weights: calibrate on these images/folders/lists "
                   "(repeatable; default: the benchmark's synthetic photos, good for speed, not for accuracy).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full report as JSON ('-' for stdout).")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table as Markdown.")
def bench(model: str, weights: str, backend: str, precision: str, size: str, batch: str, device: str,
          threads: int | None, repeats: int, warmup: int, baseline: bool, e2e: bool, memory: bool, peak: bool,
          max_tokens: int, calibration: tuple[str, ...], json_out: Path | None, markdown: Path | None) -> None:
    """Benchmark MODEL on this machine: model-only and end-to-end latency (medians of interleaved runs),
    throughput, peak memory, achieved GFLOP/s against a measured matmul peak, and each path's error against
    PyTorch fp32; ratios are against transformers measured in the same run.

    \b
    Examples:
      depthany bench --threads 2
      depthany bench -m da2-base -s 518x686 --batch 1,4 -p fp32 --json vitb.json
      depthany bench --device cuda -b torch -p fp32,bf16,fp16 --batch 1,8
    """
    from .. import backends
    from ..bench.args import parse_choices, parse_ints, parse_sizes
    from ..bench.report import header, markdown_table, text_table
    from ..bench.run import run_bench

    cfg = BenchConfig(
        model=model, weights=weights,
        backends=parse_choices(backend, ("all", *backends.BACKEND_CHOICES), "--backend"),
        precisions=parse_choices(precision, INFERENCE_PRECISIONS, "--precision"),
        sizes=parse_sizes(size), batches=parse_ints(batch, "--batch"), device=device, threads=threads,
        repeats=repeats, warmup=warmup, baseline=baseline, e2e=e2e, memory=memory, peak=peak, max_tokens=max_tokens,
        calibration=calibration)
    try:
        report = run_bench(cfg, log=lambda s: click.echo(s, err=True))
    except (ValueError, backends.BackendUnavailable) as e:
        raise click.ClickException(str(e)) from e
    if json_out is not None and str(json_out) == "-":
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(header(report))
    click.echo(text_table(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        click.echo(f"wrote {json_out}", err=True)
    if markdown is not None:
        markdown.write_text(markdown_table(report) + "\n")
        click.echo(f"wrote {markdown}", err=True)
