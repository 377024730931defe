"""``depthany synth``: render synthetic RGB-D worlds into a depthany RGB-D folder.

    depthany synth --out data/synth --count 20000 --size 256 --workers 2 --val-fraction 0.05
    depthany synth --out data/checker --count 2000 --kind indoor --textures checker,stripes

All logic lives in :mod:`depthany.synth`; this module only parses arguments and prints.
"""

from __future__ import annotations

from typing import Any

import click

from ..synth.dataset import DEPTH_FORMATS, generate
from ..synth.textures import FAMILIES, parse_families
from ..synth.worlds import KINDS, WorldConfig


def parse_size(value: str) -> tuple[int, int]:
    """``"256"`` -> (256, 256); ``"256x320"`` -> (256, 320) as (height, width)."""
    try:
        parts = [int(v) for v in value.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise click.BadParameter(f"expected N or HxW with sides >= 8, such as 256 or 256x320; got {value!r}",
                                 param_hint="--size")
    return parts[0], parts[1]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output RGB-D folder.")
@click.option("--count", required=True, type=click.IntRange(min=0), help="Number of samples (0..count-1).")
@click.option("--size", default="256", show_default=True, help="Image size: N (square) or HxW.")
@click.option("--kind", type=click.Choice(KINDS), default="mixed", show_default=True, help="World kind.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run seed; sample i depends only on (seed, i) and the options.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes.")
@click.option("--depth-format", type=click.Choice(DEPTH_FORMATS), default="png16", show_default=True,
              help="png16: uint16 with a scale in dataset.json; npy: float32 metres.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of samples in splits/val.txt (0 = no split files).")
@click.option("--textures", default="all", show_default=True,
              help=f"Comma-separated texture families to use: {', '.join(FAMILIES)}.")
@click.option("--max-depth", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Label depths beyond this many metres invalid [default: 20 indoor, 200 otherwise].")
@click.option("--indoor-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of indoor samples for --kind mixed.")
@click.option("--clean", is_flag=True,
              help="No fog, sensor noise, blur or vignetting (same scenes as without it).")
@click.option("--sequence-frames", type=click.IntRange(min=2), default=None,
              help="Render COUNT video sequences of this many frames (a camera walking through each world, with "
                   "poses) into OUT/seq_000000/ ... instead of single images.")
@click.option("--speed", type=click.FloatRange(min=0), default=0.03, show_default=True,
              help="Sequences: metres walked per frame along the optical axis.")
@click.option("--turn", type=float, default=0.01, show_default=True, help="Sequences: yaw turned per frame (rad).")
@click.option("--moving-objects", type=click.IntRange(min=0), default=0, show_default=True,
              help="Sequences: how many of each world's objects move (rigidly, bouncing off the walls); each frame "
                   "then has a dynamic/ mask of their pixels. A world with fewer movable objects is reported and "
                   "skipped.")
@click.option("--object-speed", type=click.FloatRange(min=0), default=0.03, show_default=True,
              help="Sequences: top speed of a moving object in metres per frame (each draws from half of it to it).")
@click.option("--object-spin", type=click.FloatRange(min=0), default=0.02, show_default=True,
              help="Sequences: top spin of a moving object about its vertical axis in radians per frame.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out: str, count: int, size: str, kind: str, seed: int, workers: int, depth_format: str,
          val_fraction: float, textures: str, max_depth: float | None, indoor_fraction: float, clean: bool,
          sequence_frames: int | None, speed: float, turn: float, moving_objects: int, object_speed: float,
          object_spin: float, quiet: bool) -> None:
    """Render synthetic RGB-D worlds with exact planar depth (resumable: rerun to finish or extend).

    \b
    depthany synth --out worlds --count 100 --size 240x320
    depthany synth --out seqs --count 4 --size 240x320 --sequence-frames 32   # video sequences with poses
    depthany synth --out dyn --count 4 --kind indoor --sequence-frames 32 --moving-objects 2
    """
    height, width = parse_size(size)
    try:
        families = parse_families(textures)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--textures") from None
    config = WorldConfig(width, height, kind, families, max_depth, indoor_fraction, clean)
    if sequence_frames is not None:
        if moving_objects > 0 and object_speed == object_spin == 0:
            raise click.BadParameter("moving objects need --object-speed or --object-spin above 0",
                                     param_hint="--object-speed")
        motion = {"moving_objects": moving_objects, "object_speed": object_speed, "object_spin": object_spin}
        _sequences(out, count, config, seed, sequence_frames, speed, turn, motion, quiet)
        return
    if moving_objects:
        raise click.BadParameter("moving objects need --sequence-frames", param_hint="--moving-objects")
    try:
        report = generate(out, count, config, seed=seed, workers=workers, depth_format=depth_format,
                          val_fraction=val_fraction, progress=not quiet)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{report.root}: {report.count} samples ({report.rendered} rendered, {report.skipped} already "
               f"there) in {report.seconds:.1f} s ({report.images_per_second:.1f} images/s)")


def _sequences(out: str, count: int, config: WorldConfig, seed: int, frames: int, speed: float, turn: float,
               motion: dict[str, Any], quiet: bool) -> None:
    """Sequence i renders world i of the run; finished sequences (dataset.json written) are kept. A world that
    cannot hold the asked moving objects is reported (nothing written for it) and the others are rendered."""
    import time
    from pathlib import Path

    from ..synth.motion import TooFewObjects
    from ..synth.sequence import write_sequence

    start, made, failed = time.perf_counter(), 0, []
    for i in range(count):
        folder = Path(out) / f"seq_{i:06d}"
        if (folder / "dataset.json").exists():
            continue
        try:
            write_sequence(folder, seed, i, config, frames, speed, turn, **motion)
        except TooFewObjects as e:
            click.echo(f"{folder}: skipped: --moving-objects {e.asked}: {e.reason}", err=True)
            failed.append(i)
            continue
        made += 1
        if not quiet:
            click.echo(f"{folder}: {frames} frames", err=True)
    done = count - made - len(failed)
    click.echo(f"{out}: {count} sequences of {frames} frames ({made} rendered, {done} already there"
               + (f", {len(failed)} skipped" if failed else "") + f") in {time.perf_counter() - start:.1f} s")
    if failed:
        raise click.ClickException(f"{len(failed)} of {count} worlds cannot hold --moving-objects "
                                   f"{motion['moving_objects']} (sequences {', '.join(map(str, failed))}); "
                                   "ask for fewer, or use the sequences written")
