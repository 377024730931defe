"""``depthany generate``: new images from photos, a prompt and their depth, through a depth ControlNet.

    depthany generate room.jpg --prompt "a cosy wooden cabin, warm light" --out gen/ \\
        --depth-model da2-large --device cuda --precision fp16          # Depth Anything's SD 1.5 ControlNet
    depthany generate photos/ --prompt "..." --controlnet diffusers/controlnet-depth-sdxl-1.0 --out gen/

Writes, per input ``photos/a/x.jpg``: ``gen/a/x_gen0.png`` ... (one per ``--num-images``),
``gen/a/x_control.png`` (the conditioning image the ControlNet saw) and ``gen/a/x_generate.json`` (every
setting, model, file and version). Exit status: 0 when every input succeeded, 1 when any failed (the others
are still generated), 2 for a usage or set-up error (a model that is missing, or does not fit the base).

All work is done by :class:`depthany.generate.DepthGenerator`; this module parses arguments and reports.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import click

from ..generate.known import DEFAULT_CONTROLNET, KNOWN_CONTROLNETS
from .options import device_option, input_size_option, model_option, precision_option


@click.command("generate")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--prompt", "-p", required=True, help="What to generate.")
@click.option("--negative-prompt", default="", help="What to avoid (used when --guidance > 1).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; sub-folders of the inputs are mirrored.")
@click.option("--controlnet", default=DEFAULT_CONTROLNET, show_default=True, metavar="NAME|PATH|REPO",
              help=f"Known name ({', '.join(KNOWN_CONTROLNETS)}), a single weights file (original or "
                   "diffusers keys), a diffusers folder, or a Hugging Face repo id.")
@click.option("--base", default=None, metavar="PATH|REPO",
              help="Base model: diffusers pipeline folder or repo id. Default: the one the ControlNet fits "
                   "(stable-diffusion-v1-5/stable-diffusion-v1-5 for SD 1.x ControlNets, "
                   "stabilityai/stable-diffusion-xl-base-1.0 for SDXL ones).")
@model_option("--depth-model", help_text="depthany model for the depth: zoo name (da2-large, ...), repo id or "
                                         "weights file (default: the bundled one).")
@input_size_option("--depth-input-size", help_text="Depth network short side, a multiple of 14 (default: the "
                                                   "model's).")
@click.option("--steps", type=click.IntRange(1, 1000), default=30, show_default=True, help="Denoising steps.")
@click.option("--guidance", type=click.FloatRange(min=0), default=7.5, show_default=True,
              help="Classifier-free guidance scale.")
@click.option("--control-strength", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="ControlNet conditioning scale (0: ignore the depth).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Image k of an input uses seed + k (reproducible on any device).")
@click.option("--num-images", type=click.IntRange(1, 64), default=1, show_default=True, help="Images per input.")
@click.option("--resolution", type=click.IntRange(64, 2048), default=None,
              help="Short side of the output in pixels (default: the base model's, 512 for SD 1.5, 1024 for "
                   "SDXL); aspect kept, long side at most twice this, both rounded to multiples of 8.")
@device_option()
@precision_option(help_text="Diffusion models' dtype (fp16/bf16 want a GPU); the depth model runs in fp32.")
def generate(inputs: tuple[str, ...], prompt: str, negative_prompt: str, out_dir: Path, controlnet: str,
             base: str | None, depth_model: str | None, depth_input_size: int | None, steps: int, guidance: float,
             control_strength: float, seed: int, num_images: int, resolution: int | None, device: str,
             precision: str) -> None:
    """Generate images for INPUTS (image files, folders, globs or .txt lists) from their depth and a prompt."""
    from ..io.image import ImageReadError, read_image
    from ..io.inputs import expand_inputs

    failures: list[tuple[str, str]] = []
    found = expand_inputs(inputs, exclude=[out_dir])
    failures += [(p.target, p.reason) for p in found.problems]
    ok = 0
    if found.items:
        gen = _load(controlnet, base, depth_model, device, precision, depth_input_size)
        for item in found.items:
            t0 = time.perf_counter()
            try:
                loaded = read_image(item.path)
                result = gen.generate(loaded, prompt, negative_prompt or None, steps, guidance, control_strength,
                                      seed, num_images, resolution)
                result.save(out_dir / item.key)
            except (ImageReadError, OSError, ValueError, RuntimeError) as e:  # one input fails, not the batch
                failures.append((str(item.path), f"{type(e).__name__}: {e}"))
                continue
            ok += 1
            h, w = result.control.shape[:2]
            click.echo(f"{item.path}: {num_images} image(s) {w}x{h} in {time.perf_counter() - t0:.1f} s", err=True)
    click.echo(f"done: {ok} ok, {len(failures)} failed; outputs in {out_dir}", err=True)
    for target, reason in failures:
        click.echo(f"  FAILED {target}: {reason}", err=True)
    if failures:
        sys.exit(1)


def _load(controlnet: str, base: str | None, depth_model: str | None, device: str, precision: str,
          depth_input_size: int | None):  # type: ignore[no-untyped-def]
    from ..generate.errors import GenerateError
    from ..generate.pipeline import DepthGenerator

    _quiet_libraries()
    try:
        gen = DepthGenerator.from_pretrained(controlnet, base, depth_model, device, precision,  # type: ignore[arg-type]
                                             depth_input_size)
    except (GenerateError, ValueError, OSError, ImportError, RuntimeError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    depth = gen.depth.spec.name if gen.depth is not None else "none"
    click.echo(f"ControlNet {controlnet} ({gen.info.get('controlnet_family')}), base {gen.base.label}, "
               f"{gen.info.get('pipeline')} with {gen.info.get('scheduler')}, depth {depth}, "
               f"{gen.info.get('device')} {precision}", err=True)
    return gen


def _quiet_libraries() -> None:
    """diffusers/transformers print progress bars and notes meant for notebooks; keep warnings and errors."""
    for module in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            log = importlib.import_module(module)
        except ImportError:
            continue
        log.set_verbosity_error()
        log.disable_progress_bar()
