"""The student stage under ``torchrun --nproc_per_node=2`` (gloo, CPU): feature alignment through the DDP
model's own forward pass, and the same optimisation as one process with gradient accumulation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthany.train import load_recipe, objectives, train
from depthany.train.progress import read_metrics
from depthany.weights import load_model
from dist_helpers import assert_far_apart
from pseudo_worlds import write_student_world


@pytest.mark.dist
def test_two_process_student_run_equals_one_process_with_accumulation(tmp_path: Path, monkeypatch) -> None:
    world = write_student_world(tmp_path / "w")
    # optim.eps=1: the step is then about lr * gradient instead of lr * sign(gradient). The affine-invariant loss
    # gives the output shift (the last bias) an analytic gradient of 0, whose float noise differs between
    # summation orders; with a tiny eps Adam turns that noise into +-lr and the two runs differ for no reason.
    # train.grad_clip=0: clipping rescales each step to the same norm, so summed instead of averaged gradients
    # would go unnoticed (checked below).
    sets = ["train.steps=2", "train.log_every=1", "optim.eps=1.0", "train.grad_clip=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "depthany", "train", str(world["recipe"]), "--run-dir", str(tmp_path / "ddp"),
                           *[a for s in sets for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single = train(load_recipe(world["recipe"], [*sets, "train.grad_accum=2"]), tmp_path / "one",
                   echo=lambda s: None)
    ddp, _ = load_model(weights=tmp_path / "ddp" / "final.safetensors")
    ref, _ = load_model(weights=single.final_weights)
    for (k, a), b in zip(ddp.state_dict().items(), ref.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), k
    recs = [read_metrics(d / "metrics.jsonl", "train") for d in (tmp_path / "ddp", tmp_path / "one")]
    assert read_metrics(tmp_path / "ddp" / "metrics.jsonl", "start")[0]["world"] == 2
    for key in ("loss", "labeled", "pseudo", "align", "align_kept"):
        assert [r[key] for r in recs[0]] == pytest.approx([r[key] for r in recs[1]], rel=1e-6), key
    assert recs[0][0]["align"] > 0

    # The comparison can fail: gradients summed over the 2 processes instead of averaged (twice as large).
    monkeypatch.setitem(objectives.OBJECTIVES, "summed_student", "dist_helpers:summed_student")
    summed = train(load_recipe(world["recipe"], [*sets, "train.grad_accum=2", "loss.objective=summed_student"]),
                   tmp_path / "summed", echo=lambda s: None)
    assert_far_apart(ddp, load_model(weights=summed.final_weights)[0])
