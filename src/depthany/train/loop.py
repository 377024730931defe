"""The training loop, top to bottom: recipe in, checkpoints, metrics and final weights out.

Single process::

    depthany train configs/da2-mini-synth.yaml --data worlds/ --run-dir runs/mini

Several processes (DDP; see :mod:`depthany.train.dist` for multi-node)::

    torchrun --standalone --nproc_per_node=4 -m depthany train configs/da2-mini-synth.yaml --run-dir runs/mini

What a run folder holds: ``recipe.yaml`` (the resolved recipe), ``metrics.jsonl`` (one JSON record per log line
and validation), ``last.pt`` (the latest checkpoint, replaced atomically), ``snapshots/step_NNNNNNNN.pt`` (kept
copies) and, once all steps are done, ``final.safetensors`` for ``depthany predict --weights``.

Resuming from ``last.pt`` continues bit for bit: the data stream, augmentations, schedule and log windows are
functions of (seed, step, cursors), all of which the checkpoint stores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..precision import autocast as precision_autocast
from ..weights.load import spec_to_json
from .build import build_model, recipe_spec
from .checkpoint import export_weights, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Recipe, RecipeError, dump_recipe, recipe_diff, recipe_from_dict, recipe_to_dict
from .data import MixPlan, StepBatches, TrainSet, build_sources, make_loader
from .dist import DistEnv, setup, teardown
from .objectives import build_objective
from .optim import build_optimizer, lr_factor, set_lr
from .progress import MetricsLog, Window, format_line
from .validate import Validator

LAST, FINAL, METRICS, RECIPE, SNAPSHOTS = "last.pt", "final.safetensors", "metrics.jsonl", "recipe.yaml", "snapshots"


@dataclass
class TrainResult:
    """What a call to :func:`train` did.

    Attributes:
        run_dir: the run folder.
        step: optimiser steps done in total (including earlier sessions).
        completed: all ``train.steps`` are done (``final_weights`` exists).
        final_weights: the exported ``final.safetensors`` (rank 0, completed runs), else None.
        weights_sha256: digest of this process's final weights; equal on every rank of a DDP run.
        last_train: the last ``train`` record logged, last_val: the last validation record (or None).
    """

    run_dir: Path
    step: int
    completed: bool
    final_weights: Path | None
    weights_sha256: str
    last_train: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over names and raw bytes of a state dict (bitwise identity check between processes and runs)."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def stored_recipe(run_dir: str | Path) -> Recipe:
    """The recipe saved in a run's ``last.pt`` (what ``--resume`` continues)."""
    path = Path(run_dir) / LAST
    return recipe_from_dict(load_checkpoint(path)["recipe"], str(path))


def train(recipe: Recipe, run_dir: str | Path, resume: bool = False, until_step: int | None = None,
          echo: Callable[[str], None] = print) -> TrainResult:
    """Train a model from a recipe; under torchrun every process calls this.

    Args:
        recipe: the recipe (see :mod:`depthany.train.config`).
        run_dir: output folder; must not hold a checkpoint unless ``resume``.
        resume: continue from ``run_dir/last.pt``. Fields of ``recipe`` that differ from the stored one are
            reported; the data position, optimiser state and step come from the checkpoint.
        until_step: stop (with a checkpoint) after this many total steps, e.g. to fit a time-limited job;
            a later ``resume`` continues exactly.
        echo: where rank 0's progress lines go.

    Raises:
        RecipeError: bad recipe, data, init weights or run folder, naming the field or file.
        FloatingPointError: the loss or gradient became non-finite (the last checkpoint is kept).
    """
    env = setup(recipe.device)
    try:
        return _train(recipe, Path(run_dir), env, resume, until_step, echo if env.is_main else lambda _: None)
    finally:
        teardown(env)  # after _train returned: the DDP model and optimizer are already gone


def _train(recipe: Recipe, run_dir: Path, env: DistEnv, resume: bool, until_step: int | None,
           echo: Callable[[str], None]) -> TrainResult:
    cfg = recipe.train
    state = None
    if resume:
        state = load_checkpoint(run_dir / LAST)
        old = recipe_from_dict(state["recipe"], str(run_dir / LAST))
        for line in recipe_diff(old, recipe):
            echo(f"resume: recipe changed {line}")
    elif (run_dir / LAST).exists():
        raise RecipeError(f"{run_dir}: already holds a checkpoint ({LAST}); resume it (--resume) or pick "
                          "another --run-dir")

    # ---- model, objective, optimiser. The seed makes the random init identical on every process.
    spec = recipe_spec(recipe)
    torch.manual_seed(recipe.seed)
    init = recipe if state is None else dataclasses.replace(  # a resumed run takes every weight from last.pt
        recipe, model=dataclasses.replace(recipe.model, init=None, encoder_init=None))
    model = build_model(init, spec, env.device)
    objective = build_objective(recipe, spec.arch.head, spec.arch.max_depth).to(env.device)
    optimizer = build_optimizer(model, recipe.optim)
    start_step, cursors, window = 0, [0] * len(recipe.data.sources), Window()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for g, base in zip(optimizer.param_groups, build_optimizer(model, recipe.optim).param_groups):
            g["base_lr"] = base["base_lr"]  # the recipe's learning rates win over the stored ones
        start_step, cursors = int(state["step"]), list(state["data"]["cursors"])
        window.load(state["log_window"])
        set_rng_state(state["rng"])
    net: torch.nn.Module = model
    if env.world > 1:
        # find_unused_parameters: mask_token and refinenet4.resConfUnit1 exist in every checkpoint but take no
        # part in the forward pass; DDP must not wait for their gradients.
        net = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                      find_unused_parameters=True)

    # ---- data: a deterministic stream that starts at the checkpoint's cursors
    sources = build_sources(recipe.data, spec.preprocess)
    if len(cursors) != len(sources):
        raise RecipeError(f"data.sources: the checkpoint has {len(cursors)} sources, the recipe {len(sources)}")
    if start_step > cfg.steps:
        raise RecipeError(f"train.steps: {cfg.steps} is below the checkpoint's step {start_step}")
    plan = MixPlan([len(s) for s in sources], [c.weight for c in recipe.data.sources], recipe.seed)
    total = cfg.steps
    stop = total if until_step is None else max(start_step, min(until_step, total))
    batches = StepBatches(plan, cursors, stop - start_step, cfg.batch_size, env.world, env.rank, cfg.grad_accum)
    loader = make_loader(TrainSet(sources, recipe.seed), batches, recipe.data.num_workers,
                         pin_memory=env.device.type == "cuda")
    validator = Validator(recipe.data.val, spec, recipe.data.crop_size) if recipe.data.val.path else None

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return precision_autocast(env.device, recipe.precision, strict=False)

    def checkpoint(path: Path) -> None:
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
            "data": {"cursors": list(cursors)}, "log_window": window.state(), "rng": rng_state(),
            "recipe": recipe_to_dict(recipe), "spec": spec_to_json(spec),
        })

    log = MetricsLog(run_dir / METRICS, enabled=env.is_main)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RECIPE).write_text(dump_recipe(recipe))
        log.start(keep_until=start_step if state is not None else None)
        log.write({"kind": "start", "step": start_step, "world": env.world, "device": str(env.device),
                   "resumed": state is not None})
    echo(f"training {spec.name}: {spec.arch.encoder.name} {spec.arch.head}, steps {start_step}->{stop} of {total}, "
         f"batch {cfg.batch_size} = {env.world} process(es) x {cfg.grad_accum} accum x "
         f"{cfg.batch_size // (env.world * cfg.grad_accum)}, device {env.device}, {recipe.precision}")

    last_train: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")  # inf: measure the norm, clip nothing
    model.train()
    it = iter(loader)
    t_start = t_window = time.perf_counter()
    done = start_step
    for step in range(start_step, stop):
        factor = lr_factor(step, total, recipe.optim)
        set_lr(optimizer, factor)

        # Accumulate gradients over micro-batches; DDP averages them across processes in the last backward.
        terms: dict[str, torch.Tensor] = {}
        for micro in range(cfg.grad_accum):
            batch = {k: v.to(env.device, non_blocking=True) for k, v in next(it).items()}
            if step == start_step and micro == 0:
                missing = [k for k in getattr(objective, "needs", ()) if k not in batch]
                if missing:
                    raise RecipeError(f"loss.objective: needs batch keys {missing} that data.sources do not give")
            last_micro = micro == cfg.grad_accum - 1
            sync = contextlib.nullcontext() if last_micro or env.world == 1 else net.no_sync()  # type: ignore[operator]
            with sync:
                with autocast():
                    losses = objective(net, batch)
                (losses["loss"] / cfg.grad_accum).backward()
            for k, v in losses.items():  # stay on the device: no GPU sync per micro-step
                terms[k] = terms.get(k, 0) + v.detach().float() / cfg.grad_accum

        # Gradients are identical on every process now, so is the norm: all ranks stop together on a NaN.
        # One host sync per step (the .item()s) buys a NaN check before the optimiser can spread it.
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
        values = {k: v.item() for k, v in terms.items()}
        if not (math.isfinite(grad_norm) and math.isfinite(values["loss"])):
            raise FloatingPointError(f"step {step + 1}: non-finite loss {values['loss']} or gradient norm "
                                     f"{grad_norm}; {run_dir / LAST} holds the last good state (try a lower optim.lr)")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        cursors = plan.draws(cursors, cfg.batch_size)[1]
        done = step + 1
        window.add({**values, "grad_norm": grad_norm})

        # A session cut short by until_step logs nothing extra: its open window is checkpointed and
        # continues after resume, so every log line averages the same steps as an uninterrupted run.
        if done % cfg.log_every == 0 or done == total:
            now = time.perf_counter()
            record = {"kind": "train", "step": done, **window.mean(env),
                      "lr": optimizer.param_groups[0]["lr"], "lr_decoder": optimizer.param_groups[1]["lr"],
                      "images_per_s": window.steps * cfg.batch_size / max(now - t_window, 1e-9),
                      "eta_s": (total - done) * (now - t_start) / (done - start_step),
                      "elapsed_s": now - t_start}
            window.reset()
            t_window = now
            log.write(record)
            echo(format_line(record, total))
            last_train = record
        t_pause = time.perf_counter()  # validation and checkpoints do not count against throughput / ETA
        if validator is not None and (cfg.val_every and done % cfg.val_every == 0 or done == total):
            last_val = {"kind": "val", "step": done, **validator.run(model, env, autocast)}
            log.write(last_val)
            echo(f"val step {done}: abs_rel {last_val['abs_rel']:.4f}  delta1 {last_val['delta1']:.4f}  "
                 f"({last_val['images']} images)")
        if env.is_main and (cfg.ckpt_every and done % cfg.ckpt_every == 0 or done == stop):
            checkpoint(run_dir / LAST)
        if env.is_main and cfg.snapshot_every and done % cfg.snapshot_every == 0:
            checkpoint(run_dir / SNAPSHOTS / f"step_{done:08d}.pt")
        paused = time.perf_counter() - t_pause
        t_start, t_window = t_start + paused, t_window + paused

    final = None
    if done == total and env.is_main:
        final = export_weights(model.state_dict(), spec, run_dir / FINAL)
        echo(f"done: {final}")
    return TrainResult(run_dir, done, done == total, final, state_digest(model.state_dict()), last_train, last_val)
