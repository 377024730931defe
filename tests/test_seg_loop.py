"""task: semseg through the training loop: `depthany train` end to end on synthetic worlds (learning, JSONL
metrics, validation equal to scoring the exported weights, final weights for `depthany segment`), exact resume
(linear head and Mask2Former's random point sampling), recipe errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from depthany.cli.main import cli
from depthany.seg.datasets import open_seg_dataset
from depthany.seg.score import score
from depthany.seg.segmenter import Segmenter
from depthany.seg.weights import load_seg_model
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate
from depthany.train import RecipeError, load_recipe, train
from depthany.train.loop import LAST, state_digest
from depthany.train.progress import read_metrics
from depthany.train.task import build_network
from seg_helpers import confusion_oracle

CI_SEG = Path(__file__).parent.parent / "configs" / "ci-seg-tiny.yaml"
TIMING = ("images_per_s", "eta_s", "elapsed_s")
TINY_M2F = ["seg.head=mask2former", "seg.mask2former.feat_channels=32", "seg.mask2former.out_channels=32",
            "seg.mask2former.num_queries=6", "seg.mask2former.decoder_layers=2", "seg.mask2former.num_heads=2",
            "seg.mask2former.ffn_channels=32", "seg.mask2former.encoder_layers=1",
            "seg.mask2former.encoder_ffn_channels=32", "seg.mask2former.train_points=48"]

pytest.importorskip("cv2")  # the mmseg training pipeline resizes with OpenCV


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("segworlds")
    generate(root / "w", 8, WorldConfig(64, 48, "mixed"), seed=5)
    return root / "w"


def test_tiny_semseg_recipe_trains_end_to_end_through_the_cli(worlds: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(CI_SEG), "--data", str(worlds), "--val", str(worlds),
                                   "--run-dir", str(run), "--set", "train.steps=30", "--set", "train.val_every=0"])
    assert res.exit_code == 0, res.output
    assert "depthany segment IMAGES --weights" in res.output and "custom linear head, 29 classes" in res.output
    recs = read_metrics(run / "metrics.jsonl")
    losses = [r["loss"] for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in recs if r["kind"] == "train"] == [5, 10, 15, 20, 25, 30]
    assert losses[-1] < 0.8 * losses[0]
    val = [r for r in recs if r["kind"] == "val"]
    assert [r["step"] for r in val] == [30] and val[0]["images"] == 8 and val[0]["skipped"] == 0

    # the exported file is a segmentation model; its scores on the validation folder, through the Segmenter and
    # an independent confusion matrix, are exactly the val record (areas, not per-image means)
    model = load_seg_model(run / "final.safetensors")
    assert model.spec.name == "ci-seg-tiny" and model.spec.classes.name == "synth"
    ds = open_seg_dataset("synth", worlds)
    seg = Segmenter(model)
    preds = [seg.segment(ds.load(i).rgb()).labels for i in range(len(ds))]
    a_acc, miou, macc, iou, _ = confusion_oracle(preds, [ds.load(i).labels for i in range(len(ds))], 29)
    assert val[0]["mIoU"] == pytest.approx(miou, rel=1e-12) and val[0]["aAcc"] == pytest.approx(a_acc, rel=1e-12)
    assert val[0]["mAcc"] == pytest.approx(macc, rel=1e-12)
    for k, name in enumerate(model.spec.classes.names):
        assert val[0]["iou"][name] == (None if np.isnan(iou[k]) else pytest.approx(iou[k] * 100))

    # it learned: far better than the same network at its seeded initialisation
    recipe = load_recipe(CI_SEG, [f"data.sources.0.path={worlds}", "data.sources.0.kind=semseg"])
    torch.manual_seed(recipe.seed)
    init = build_network(recipe, torch.device("cpu")).model.eval()
    before = score(ds, lambda s: Segmenter(init).segment(s.rgb()).labels).metrics()  # type: ignore[arg-type]
    assert a_acc > before.aAcc + 15 and miou > before.mIoU + 3

    ckpt = torch.load(run / LAST, weights_only=True)
    assert json.loads(ckpt["seg_spec"])["kind"] == "depthany-seg" and "spec" not in ckpt


@pytest.mark.parametrize("head", ["linear", "mask2former"])
def test_semseg_resume_is_bitwise_exact(worlds: Path, tmp_path: Path, head: str) -> None:
    pytest.importorskip("scipy")
    sets = [f"data.sources.0.path={worlds}", "data.sources.0.kind=semseg", "train.steps=6", "train.log_every=2",
            "train.ckpt_every=0", "train.batch_size=2", "data.seg_aug.photometric=true",
            *(TINY_M2F if head == "mask2former" else [])]
    whole = train(load_recipe(CI_SEG, sets), tmp_path / "whole", echo=quiet)
    part = train(load_recipe(CI_SEG, sets), tmp_path / "part", until_step=3, echo=quiet)
    assert not part.completed and part.step == 3 and part.final_weights is None
    resumed = train(load_recipe(CI_SEG, sets), tmp_path / "part", resume=True, echo=quiet)
    assert resumed.completed and resumed.weights_sha256 == whole.weights_sha256
    assert state_digest(load_seg_model(resumed.final_weights).state_dict()) == whole.weights_sha256  # type: ignore[arg-type]

    def records(run: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(run / "metrics.jsonl", "train")]

    assert records(tmp_path / "part") == records(tmp_path / "whole")
    if head == "mask2former":
        assert {"loss_cls", "loss_mask", "loss_dice"} <= set(records(tmp_path / "whole")[0])
    # the schedule and clipping ran on the seg parameter groups: four groups, backbone first
    assert [g["name"] for g in torch.load(tmp_path / "whole" / LAST, weights_only=True)["optimizer"]["param_groups"]] \
        in (["backbone", "head", "backbone_no_decay", "head_no_decay"], ["backbone", "head", "backbone_no_decay"])


def test_semseg_recipe_errors_name_the_key(worlds: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"data.sources.0.kind: task: semseg trains on semseg, cityscapes, ade20k"):
        load_recipe(CI_SEG, [f"data.sources.0.path={worlds}"])  # kind rgbd: depth only
    bad_val = load_recipe(CI_SEG, [f"data.sources.0.path={worlds}", "data.sources.0.kind=semseg",
                                   f"data.val.path={tmp_path}"])
    with pytest.raises(RecipeError, match="data.val.path"):
        train(bad_val, tmp_path / "r", echo=quiet)
    sized = load_recipe(CI_SEG, [f"data.sources.0.path={worlds}", "data.sources.0.kind=semseg",
                                 f"data.val.path={worlds}", "data.val.input_size=56"])
    with pytest.raises(RecipeError, match="data.val.input_size"):
        train(sized, tmp_path / "r2", echo=quiet)
    res = CliRunner().invoke(cli, ["train", str(CI_SEG), "--run-dir", str(tmp_path / "r3")])
    assert res.exit_code == 1 and "data.sources: no training data" in res.output
