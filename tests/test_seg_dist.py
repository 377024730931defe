"""task: semseg under DDP on CPU: ``torchrun --standalone --nproc_per_node=2`` with gloo, BatchNorm synchronised
across the processes, validation sharded with the per-class areas all-reduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from depthany.seg.datasets import open_seg_dataset
from depthany.seg.score import score
from depthany.seg.segmenter import Segmenter
from depthany.seg.weights import load_seg_model
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate
from depthany.train import load_recipe, objectives, train
from depthany.train.progress import read_metrics
from depthany.train.sync_bn import AllReduceBatchNorm, sync_batchnorm
from dist_helpers import assert_far_apart

CI_SEG = Path(__file__).parent.parent / "configs" / "ci-seg-tiny.yaml"

DRIVER = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    from depthany.train import load_recipe, train
    from depthany.train.sync_bn import AllReduceBatchNorm

    run = Path(sys.argv[2])
    res = train(load_recipe(sys.argv[1], sys.argv[3:]), run, echo=lambda s: None)
    rank = os.environ["RANK"]
    (run / f"rank{rank}.json").write_text(json.dumps({"digest": res.weights_sha256, "val": res.last_val,
                                                     "world": os.environ["WORLD_SIZE"]}))
''')


def test_sync_batchnorm_keeps_parameters_buffers_and_keys() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.Sequential(
        torch.nn.BatchNorm2d(4)))
    params = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    sync_batchnorm(model, torch.device("cpu"))
    assert isinstance(model[1], AllReduceBatchNorm) and isinstance(model[2][0], AllReduceBatchNorm)
    assert [id(p) for p in model.parameters()] == params and list(model.state_dict()) == keys
    x = torch.randn(3, 3, 5, 5)
    ref = torch.nn.BatchNorm2d(4)
    ref.load_state_dict(model[1].state_dict())
    h = model[0](x)
    torch.testing.assert_close(model[1](h), ref(h))  # one process: a plain BatchNorm (running stats too)
    torch.testing.assert_close(model[1].running_var, ref.running_var)


@pytest.mark.dist
def test_torchrun_two_processes_equal_one_with_accumulation(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("cv2")
    data = tmp_path / "w"
    generate(data, 10, WorldConfig(64, 48, "mixed"), seed=7)
    sets = [f"data.sources.0.path={data}", "data.sources.0.kind=semseg", f"data.val.path={data}",
            "data.val.max_images=7", "train.steps=3", "train.batch_size=4", "train.grad_accum=2", "train.log_every=1",
            "train.val_every=3",
            # As in tests/test_train_dist.py: Adam is invariant to the gradient scale unless eps is large, and
            # clipping rescales every step to one norm; either would hide gradients summed instead of averaged.
            "optim.eps=1.0", "train.grad_clip=0"]
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(CI_SEG), str(run), *sets],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == ["2", "2"] and ranks[0]["digest"] == ranks[1]["digest"]
    ddp = load_seg_model(run / "final.safetensors")

    # Validation: each rank scored its share (4 + 3 images) and the areas were summed: exactly the numbers of
    # scoring the exported weights on the 7 images in one process.
    val = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "val"]
    assert len(val) == 1 and val[0]["images"] == 7 and ranks[1]["val"] == ranks[0]["val"]
    ref = score(open_seg_dataset("synth", data), lambda s: Segmenter(ddp).segment(s.rgb()).labels, limit=7).metrics()
    assert (val[0]["mIoU"], val[0]["aAcc"], val[0]["mAcc"]) == (ref.mIoU, ref.aAcc, ref.mAcc)

    # 2 processes x 2 accumulation steps x 1 image, BatchNorm synchronised (statistics over the 2 images of a
    # micro-step), optimise exactly what 1 process does with 2 accumulation steps of 2 images.
    single = train(load_recipe(CI_SEG, sets), tmp_path / "single", echo=lambda s: None)
    one = load_seg_model(single.final_weights)  # type: ignore[arg-type]
    for (k, a), b in zip(ddp.state_dict().items(), one.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6), k
    losses = [[r["loss"] for r in read_metrics(d / "metrics.jsonl", "train")] for d in (run, tmp_path / "single")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)

    # The comparison can fail: (1) gradients summed over the 2 processes instead of averaged (twice as large)
    monkeypatch.setitem(objectives.OBJECTIVES, "summed_semseg", "dist_helpers:summed_semseg")
    summed = train(load_recipe(CI_SEG, [*sets, "loss.objective=summed_semseg"]), tmp_path / "summed",
                   echo=lambda s: None)
    assert_far_apart(ddp, load_seg_model(summed.final_weights))  # type: ignore[arg-type]
    # (2) BatchNorm left per process (statistics over 1 image, as 1 process with micro-batches of 1)
    unsynced = train(load_recipe(CI_SEG, [*sets, "train.grad_accum=4"]), tmp_path / "unsynced", echo=lambda s: None)
    assert_far_apart(ddp, load_seg_model(unsynced.final_weights))  # type: ignore[arg-type]
