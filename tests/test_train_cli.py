"""``depthany train``: thin CLI over the library (recipe + --set/--data/--val, resume, clear errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from depthany.cli.main import cli
from depthany.train import load_recipe
from depthany.train.progress import read_metrics
from train_worlds import write_planes

CI = Path(__file__).parent.parent / "configs" / "ci-tiny.yaml"


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["train", *args])
    return res.exit_code, res.output


def test_print_recipe_applies_data_val_and_set(tmp_path: Path) -> None:
    code, out = run(str(CI), "--data", str(tmp_path / "a b"), "--data", str(tmp_path / "c:d"),
                    "--val", str(tmp_path / "v"), "--set", "optim.lr=2e-5", "--print-recipe")
    assert code == 0, out
    d = yaml.safe_load(out)
    assert [s["path"] for s in d["data"]["sources"]] == [str(tmp_path / "a b"), str(tmp_path / "c:d")]
    assert d["data"]["val"]["path"] == str(tmp_path / "v") and d["optim"]["lr"] == 2e-5
    assert d["model"]["custom"]["embed_dim"] == 32  # the rest of the recipe is untouched


@pytest.mark.parametrize("args,words", [
    (["--set", "optim.lrr=1"], "--set optim.lrr: optim.lrr: unknown key (did you mean 'lr'?)"),
    (["--set", "train.steps=x"], "train.steps: expected an integer"),
    (["--set", "nonsense"], "expected KEY=VALUE"),
])
def test_recipe_errors_are_one_line_messages(args: list[str], words: str) -> None:
    code, out = run(str(CI), *args, "--print-recipe")
    assert code == 1 and "Error: " in out and words in out and "Traceback" not in out


def test_usage_errors(tmp_path: Path) -> None:
    code, out = run()
    assert code == 2 and "give a RECIPE file" in out
    code, out = run(str(CI), "--run-dir", str(tmp_path / "r"))
    assert code == 1 and "data.sources: no training data" in out
    code, out = run("--resume", "--run-dir", str(tmp_path / "nothing"))
    assert code == 1 and "no checkpoint to resume from" in out


def test_train_stop_and_resume_without_recipe(tmp_path: Path) -> None:
    data = write_planes(tmp_path / "w", n=6)
    rd = tmp_path / "run"
    code, out = run(str(CI), "--data", str(data), "--run-dir", str(rd), "--set", "train.steps=4",
                    "--set", "train.log_every=1", "--until-step", "2")
    assert code == 0, out
    assert "step 2/4" in out and "img/s" in out and "eta" in out and "continue with --resume" in out
    assert not (rd / "final.safetensors").exists()
    code, out = run("--resume", "--run-dir", str(rd))  # the recipe comes from last.pt
    assert code == 0, out
    assert "step 4/4" in out and (rd / "final.safetensors").exists()
    assert [r["step"] for r in read_metrics(rd / "metrics.jsonl", "train")] == [1, 2, 3, 4]
    assert load_recipe(rd / "recipe.yaml").train.steps == 4

    # the exported weights work with predict as they are (PyTorch backend: exporting this one-off network for
    # OpenVINO would add ~20 s; the exported-graph backends have their own tests)
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "img.png")
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "img.png"), "--weights", str(rd / "final.safetensors"),
                                   "--out", str(tmp_path / "pred"), "--format", "npy", "--device", "cpu",
                                   "--backend", "torch"])
    assert res.exit_code == 0, res.output
    (npy,) = list((tmp_path / "pred").rglob("*.npy"))
    depth = np.load(npy)
    assert depth.shape == (40, 60) and np.isfinite(depth).all()
