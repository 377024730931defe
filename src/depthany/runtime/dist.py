"""Multi-process glue for training and pseudo-labelling: process-group set-up from torchrun's environment, and
the safe teardown.

Launch (one machine, 8 GPUs)::

    torchrun --standalone --nproc_per_node=8 -m depthany train recipe.yaml --run-dir runs/x

Several machines (run on every node, same endpoint)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 \\
        --rdzv-id=run-x -m depthany train recipe.yaml --run-dir runs/x

NCCL on CUDA, gloo on CPU. Without torchrun's ``WORLD_SIZE`` the loop runs as a single process.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .devices import pick_device


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its node, its device.

    ``owns_group`` is True when :func:`setup` created the process group (and :func:`teardown` destroys it).
    """

    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes checkpoints and exports weights."""
        return self.rank == 0


def setup(device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or run alone.

    ``device``: ``auto``, ``cpu``, ``cuda`` (``cuda:LOCAL_RANK`` under torchrun), ``cuda:N`` or ``mps``.

    Raises:
        ValueError: the device is not available, naming it.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not dist.is_initialized():
        return DistEnv(0, 1, 0, pick_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns)


def teardown(env: DistEnv) -> None:
    """Destroy the process group if :func:`setup` created it.

    Call only after the DDP model and the optimizer are gone: with gloo, a DDP reducer still alive when the
    group is destroyed makes ~30% of processes abort at exit ("terminate called without an active
    exception"); collecting them first fixes it. The loop keeps both inside one function that has returned
    by the time this runs, and the ``gc.collect()`` here breaks any remaining reference cycles.
    """
    gc.collect()
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """The sum of ``t`` over all processes, on ``t``'s device (a no-op for a single process).

    The reduction runs on ``env.device``: gloo reduces CPU tensors, NCCL needs them on the GPU, so a CPU tally
    goes to the GPU and back under NCCL. In place when ``t`` is already on ``env.device``.
    """
    if env.world <= 1:
        return t
    on_device = t.to(env.device)
    dist.all_reduce(on_device, op=dist.ReduceOp.SUM)
    return on_device.to(t.device)
