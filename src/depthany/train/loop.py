"""The training loop, top to bottom: recipe in, checkpoints, metrics and final weights out.

Depth (``task: depth``), semantic segmentation (``task: semseg``) and video depth (``task: video``) run through
the same loop; what differs (network, optimiser rules, validation, export) is in :mod:`depthany.train.task`.

Single process::

    depthany train configs/da2-mini-synth.yaml --data worlds/ --run-dir runs/mini

Several processes (DDP; see :mod:`depthany.runtime.dist` for multi-node)::

    torchrun --standalone --nproc_per_node=4 -m depthany train configs/da2-mini-synth.yaml --run-dir runs/mini

What a run folder holds: ``recipe.yaml`` (the resolved recipe), ``metrics.jsonl`` (one JSON record per log line
and validation), ``last.pt`` (the latest checkpoint, replaced atomically), ``snapshots/step_NNNNNNNN.pt`` (kept
copies) and, once all steps are done, ``final.safetensors`` for ``depthany predict --weights`` (segmentation:
``depthany segment --weights``).

Resuming from ``last.pt`` continues bit for bit: the data stream, augmentations, schedule and log windows are
functions of (seed, step, cursors), all of which the checkpoint stores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..precision import autocast as precision_autocast
from ..runtime.dist import DistEnv, setup, teardown
from .build import recipe_spec
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import (
    Recipe,
    RecipeError,
    apply_override,
    dump_recipe,
    parse_override,
    recipe_diff,
    recipe_from_dict,
    recipe_to_dict,
)
from .data import MixPlan, StepBatches, TrainSet, build_sources, make_loader, require_sources
from .objectives import Objective, build_objective, head_kind
from .optim import lr_factor, momentum, set_lr, set_momentum
from .progress import MetricsLog, Window, format_line
from .sync_bn import sync_batchnorm
from .task import Spec, build_network, build_validator, checkpoint_spec, describe, export_final

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
        h.update(state_dict[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def stored_recipe(run_dir: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe saved in a run's ``last.pt`` (what ``--resume`` continues), with ``KEY=VALUE`` overrides
    applied on top (as ``--set`` does; the overridden keys are remembered as such).

    Raises:
        RecipeError: no readable checkpoint, or a bad override (naming it).
    """
    path = Path(run_dir) / LAST
    data = load_checkpoint(path)["recipe"]
    for text in overrides:
        apply_override(data, *parse_override(text))
    return recipe_from_dict(data, str(path), tuple(parse_override(t)[0] for t in overrides))


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
    """One session: set up (checkpoint, networks, data stream, log), run the steps, export the final weights.

    ``run`` holds the DDP model and the optimiser; they go when this returns, before :func:`teardown`.
    """
    cfg = recipe.train
    require_sources(recipe.data)  # before a segmentation model asks the sources for its class table
    state = _resume_state(recipe, run_dir, resume, echo)
    run = _build_run(recipe, env, state)
    plan, loader, stop = _data_stream(recipe, run, env, until_step)
    validator = build_validator(recipe, run.spec)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return precision_autocast(env.device, recipe.precision, strict=False)

    log = _open_log(recipe, run_dir, env, run, resumed=state is not None)
    echo(f"training {run.spec.name}: {describe(run.spec)}, steps {run.start_step}->{stop} "
         f"of {cfg.steps}, batch {cfg.batch_size} = {env.world} process(es) x {cfg.grad_accum} accum x "
         f"{cfg.batch_size // (env.world * cfg.grad_accum)}, device {env.device}, {recipe.precision}")

    last_train: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    run.model.train()
    batches = iter(loader)
    clock = _Clock()
    for step in range(run.start_step, stop):
        values = _optimizer_step(run, recipe, env, batches, step, autocast, run_dir)
        run.cursors = plan.draws(run.cursors, cfg.batch_size)[1]
        run.step = step + 1
        run.window.add(values)

        # A session cut short by until_step logs nothing extra: its open window is checkpointed and
        # continues after resume, so every log line averages the same steps as an uninterrupted run.
        if run.step % cfg.log_every == 0 or run.step == cfg.steps:
            last_train = _log_train(run, recipe, env, clock, log, echo)
        with clock.paused():  # validation and checkpoints do not count against throughput / ETA
            if validator is not None and (cfg.val_every and run.step % cfg.val_every == 0 or run.step == cfg.steps):
                last_val = _validate(run, validator, env, autocast, log, echo)
            if env.is_main and (cfg.ckpt_every and run.step % cfg.ckpt_every == 0 or run.step == stop):
                save_checkpoint(run_dir / LAST, run.checkpoint(recipe))
            if env.is_main and cfg.snapshot_every and run.step % cfg.snapshot_every == 0:
                save_checkpoint(run_dir / SNAPSHOTS / f"step_{run.step:08d}.pt", run.checkpoint(recipe))

    completed = run.step == cfg.steps
    final = None
    if completed and env.is_main:
        final = export_final(run.model, run.spec, run_dir / FINAL)
        echo(f"done: {final}")
    return TrainResult(run_dir, run.step, completed, final, state_digest(run.model.state_dict()), last_train, last_val)


# ------------------------------------------------------------------------------------------------ the steps


@dataclass
class _Run:
    """What a training session works on: the networks, the optimiser and the position a checkpoint stores."""

    spec: Spec  # a depth ModelSpec or a segmentation SegSpec
    model: nn.Module  # DepthAnything or SegmentationModel
    net: nn.Module  # ``model``, or its DistributedDataParallel wrapper: what the objective calls
    objective: Objective
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]  # the trained parameters (gradient clipping)
    start_step: int  # where this session started
    step: int  # optimiser steps done, including earlier sessions
    cursors: list[int]  # each data source's position in its stream
    window: Window  # per-step values since the last log line

    def checkpoint(self, recipe: Recipe) -> dict[str, Any]:
        """Everything :func:`_build_run` and :func:`_data_stream` need to continue bit for bit."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
            "data": {"cursors": list(self.cursors)}, "log_window": self.window.state(), "rng": rng_state(),
            "recipe": recipe_to_dict(recipe), **checkpoint_spec(self.spec),
        }


class _Clock:
    """Training time since the start and since the last log line, with pauses left out."""

    def __init__(self) -> None:
        self.start = self.window = time.perf_counter()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t = time.perf_counter()
        yield
        paused = time.perf_counter() - t
        self.start, self.window = self.start + paused, self.window + paused


def _resume_state(recipe: Recipe, run_dir: Path, resume: bool, echo: Callable[[str], None]) -> dict[str, Any] | None:
    """The checkpoint to continue from (reporting how the recipe changed), or None for a fresh run."""
    if not resume:
        if (run_dir / LAST).exists():
            raise RecipeError(f"{run_dir}: already holds a checkpoint ({LAST}); resume it (--resume) or pick "
                              "another --run-dir")
        return None
    state = load_checkpoint(run_dir / LAST)
    old = recipe_from_dict(state["recipe"], str(run_dir / LAST))
    for line in recipe_diff(old, recipe):
        echo(f"resume: recipe changed {line}")
    return state


def _build_run(recipe: Recipe, env: DistEnv, state: dict[str, Any] | None) -> _Run:
    """Model, objective and optimiser: new, or restored from ``state`` with its step, data cursors, log window
    and random generators. The seed makes the random init identical on every process."""
    torch.manual_seed(recipe.seed)
    init = recipe if state is None else dataclasses.replace(  # a resumed run takes every weight from last.pt
        recipe, model=dataclasses.replace(recipe.model, init=None, encoder_init=None))
    network = build_network(init, env.device)
    spec, model = network.spec, network.model
    depth_spec = recipe_spec(recipe)  # the depth head the objective checks (segmentation objectives ignore it)
    objective = build_objective(recipe, head_kind(depth_spec), depth_spec.arch.max_depth).to(env.device)
    optimizer = network.make_optimizer(model, recipe.optim)
    step, cursors, window = 0, [0] * len(recipe.data.sources), Window()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for g, base in zip(optimizer.param_groups, network.make_optimizer(model, recipe.optim).param_groups):
            g["base_lr"] = base["base_lr"]  # the recipe's learning rates win over the stored ones
        step, cursors = int(state["step"]), list(state["data"]["cursors"])
        window.load(state["log_window"])
        set_rng_state(state["rng"])
    net: nn.Module = model
    if env.world > 1:
        # BatchNorm statistics over all processes' micro-batches, as mmseg's SyncBN (depth models have none)
        sync_batchnorm(model, env.device)
        # find_unused_parameters: mask_token and refinenet4.resConfUnit1 exist in every checkpoint but take no
        # part in the forward pass; DDP must not wait for their gradients.
        net = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                      find_unused_parameters=True)
    params = [p for p in model.parameters() if p.requires_grad]
    return _Run(spec, model, net, objective, optimizer, params, step, step, cursors, window)


def _data_stream(recipe: Recipe, run: _Run, env: DistEnv, until_step: int | None
                 ) -> tuple[MixPlan, torch.utils.data.DataLoader[Any], int]:
    """The mixing plan, the loader of this process's batches from the run's cursors on, and the step to stop at
    (``train.steps``, or ``until_step``)."""
    cfg = recipe.train
    sources = build_sources(recipe.data, recipe_spec(recipe).preprocess)
    if len(run.cursors) != len(sources):
        raise RecipeError(f"data.sources: the checkpoint has {len(run.cursors)} sources, the recipe {len(sources)}")
    if run.start_step > cfg.steps:
        raise RecipeError(f"train.steps: {cfg.steps} is below the checkpoint's step {run.start_step}")
    plan = MixPlan([len(s) for s in sources], [c.weight for c in recipe.data.sources], recipe.seed)
    stop = cfg.steps if until_step is None else max(run.start_step, min(until_step, cfg.steps))
    batches = StepBatches(plan, run.cursors, stop - run.start_step, cfg.batch_size, env.world, env.rank,
                          cfg.grad_accum)
    loader = make_loader(TrainSet(sources, recipe.seed), batches, recipe.data.num_workers,
                         pin_memory=env.device.type == "cuda")
    return plan, loader, stop


def _open_log(recipe: Recipe, run_dir: Path, env: DistEnv, run: _Run, resumed: bool) -> MetricsLog:
    """The metrics file (rank 0 writes the run folder, its recipe and a ``start`` record)."""
    log = MetricsLog(run_dir / METRICS, enabled=env.is_main)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RECIPE).write_text(dump_recipe(recipe))
        log.start(keep_until=run.start_step if resumed else None)
        log.write({"kind": "start", "step": run.start_step, "world": env.world, "device": str(env.device),
                   "resumed": resumed})
    return log


def _optimizer_step(run: _Run, recipe: Recipe, env: DistEnv, batches: Iterator[dict[str, Tensor]], step: int,
                    autocast: Callable[[], contextlib.AbstractContextManager[Any]], run_dir: Path
                    ) -> dict[str, float]:
    """Optimiser step ``step`` (0-based): learning rate, accumulated micro-batches, clipping, the update.

    Returns:
        the loss terms (averaged over micro-batches) and ``grad_norm``.

    Raises:
        RecipeError: the objective needs batch keys that the data does not give (checked on the first batch).
        FloatingPointError: a non-finite loss or gradient norm, before the update could spread it.
    """
    cfg = recipe.train
    set_lr(run.optimizer, lr_factor(step, cfg.steps, recipe.optim))
    beta1 = momentum(step, cfg.steps, recipe.optim)
    if beta1 is not None:
        set_momentum(run.optimizer, beta1)

    # Accumulate gradients over micro-batches; DDP averages them across processes in the last backward.
    terms: dict[str, Tensor] = {}
    for micro in range(cfg.grad_accum):
        batch = {k: v.to(env.device, non_blocking=True) for k, v in next(batches).items()}
        if step == run.start_step and micro == 0:
            missing = [k for k in getattr(run.objective, "needs", ()) if k not in batch]
            if missing:
                raise RecipeError(f"loss.objective: needs batch keys {missing} that data.sources do not give")
        last_micro = micro == cfg.grad_accum - 1
        sync = contextlib.nullcontext() if last_micro or env.world == 1 else run.net.no_sync()  # type: ignore[operator]
        with sync:
            with autocast():
                losses = run.objective(run.net, batch)
            (losses["loss"] / cfg.grad_accum).backward()
        for k, v in losses.items():  # stay on the device: no GPU sync per micro-step
            terms[k] = terms.get(k, 0) + v.detach().float() / cfg.grad_accum

    # Gradients are identical on every process now, so is the norm: all ranks stop together on a NaN.
    # One host sync per step (the .item()s) buys a NaN check before the optimiser can spread it.
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")  # inf: measure the norm, clip nothing
    grad_norm = torch.nn.utils.clip_grad_norm_(run.params, max_norm).item()
    values = {k: v.item() for k, v in terms.items()}
    if not (math.isfinite(grad_norm) and math.isfinite(values["loss"])):
        raise FloatingPointError(f"step {step + 1}: non-finite loss {values['loss']} or gradient norm "
                                 f"{grad_norm}; {run_dir / LAST} holds the last good state (try a lower optim.lr)")
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return {**values, "grad_norm": grad_norm}


def _log_train(run: _Run, recipe: Recipe, env: DistEnv, clock: _Clock, log: MetricsLog,
               echo: Callable[[str], None]) -> dict[str, Any]:
    """Close the log window: the ``train`` record (averages over its steps and all processes, learning rates,
    throughput, ETA), written and echoed."""
    cfg = recipe.train
    now = time.perf_counter()
    lrs = run.optimizer.param_groups
    record = {"kind": "train", "step": run.step, **run.window.mean(env), "lr": lrs[0]["lr"], "lr_decoder": lrs[1]["lr"],
              "images_per_s": run.window.steps * cfg.batch_size / max(now - clock.window, 1e-9),
              "eta_s": (cfg.steps - run.step) * (now - clock.start) / (run.step - run.start_step),
              "elapsed_s": now - clock.start}
    for g in lrs:
        if g.get("name") == "head":  # a ZoeDepth head's own rate
            record["lr_head"] = g["lr"]
    if recipe.optim.schedule == "onecycle" and recipe.optim.cycle_momentum:
        record["beta1"] = lrs[0]["betas"][0]
    run.window.reset()
    clock.window = now
    log.write(record)
    echo(format_line(record, cfg.steps))
    return record


def _validate(run: _Run, validator: Any, env: DistEnv,
              autocast: Callable[[], contextlib.AbstractContextManager[Any]], log: MetricsLog,
              echo: Callable[[str], None]) -> dict[str, Any]:
    """The ``val`` record (a collective: every process runs its share of the images), written and echoed."""
    record = {"kind": "val", "step": run.step, **validator.run(run.model, env, autocast)}
    log.write(record)
    echo(validator.line(record))
    return record
