"""``depthany train``: parse arguments, load the recipe, call :func:`depthany.train.train`. Nothing else."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run-dir", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/<recipe name>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe field, e.g. --set optim.lr=1e-5 --set data.sources.0.weight=2. Repeatable.")
@click.option("--data", "data_paths", multiple=True, type=click.Path(path_type=Path), metavar="FOLDER",
              help="Training RGB-D folder(s), equal weights; replaces data.sources (task: semseg recipes: folders "
                   "with labels, kind semseg; task: video: RGB-D sequence folders, kind video). Repeatable.")
@click.option("--val", "val_path", type=click.Path(path_type=Path), metavar="FOLDER",
              help="Validation RGB-D folder (sets data.val.path; task: semseg: scored by mIoU).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir from its last.pt (RECIPE optional; --set still applies).")
@click.option("--until-step", type=int, default=None,
              help="Stop after this many total steps (with a checkpoint); --resume continues exactly.")
@click.option("--print-recipe", is_flag=True, help="Print the resolved recipe as YAML and exit.")
def train(recipe: Path | None, run_dir: Path | None, overrides: tuple[str, ...], data_paths: tuple[Path, ...],
          val_path: Path | None, resume: bool, until_step: int | None, print_recipe: bool) -> None:
    """Train or fine-tune a model from a YAML recipe (see docs/training.md).

    Multi-GPU / multi-node: launch the same command with torchrun, e.g.
    torchrun --standalone --nproc_per_node=8 -m depthany train RECIPE --run-dir DIR
    """
    from ..train import RecipeError, dump_recipe, load_recipe, stored_recipe
    from ..train import train as run_training

    def with_data(task: str) -> list[str]:
        sets = list(overrides)
        if data_paths:
            kind = {"semseg": ", kind: semseg", "video": ", kind: video"}.get(task, "")  # labels / sequences
            sets.insert(0, "data.sources=[" + ", ".join("{path: " + _yaml_str(p) + kind + "}" for p in data_paths)
                        + "]")
        if val_path is not None:
            sets.insert(0, f"data.val.path={_yaml_str(val_path)}")
        return sets

    try:
        if recipe is None:
            if not (resume and run_dir is not None):
                raise click.UsageError("give a RECIPE file (or --resume --run-dir DIR to continue a run)")
            task = str(stored_recipe(run_dir).task) if data_paths else "depth"  # --data's source kind
            cfg = stored_recipe(run_dir, with_data(task))
        else:
            task = load_recipe(recipe, overrides).task if data_paths else "depth"  # --data's source kind
            cfg = load_recipe(recipe, with_data(task))
        if print_recipe:
            click.echo(dump_recipe(cfg), nl=False)
            return
        out = run_dir or Path("runs") / cfg.name
        result = run_training(cfg, out, resume=resume, until_step=until_step, echo=click.echo)
    except RecipeError as e:
        raise click.ClickException(str(e)) from None
    except FloatingPointError as e:
        raise click.ClickException(str(e)) from None
    if result.final_weights is not None:
        if cfg.task == "video":
            click.echo(f"weights: {result.final_weights}  (depthany video VIDEO --weights {result.final_weights} "
                       "-o OUT.mp4)")
        else:
            verb = "segment" if cfg.task == "semseg" else "predict"
            click.echo(f"weights: {result.final_weights}  (depthany {verb} IMAGES --weights {result.final_weights} "
                       "--out DIR)")
    elif not result.completed:
        click.echo(f"stopped at step {result.step} of {cfg.train.steps}; continue with --resume --run-dir {out}")


def _yaml_str(p: Path) -> str:
    """A path as a YAML double-quoted scalar (safe for spaces, colons and quotes)."""
    return '"' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"'
