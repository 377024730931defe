"""Student data sources: labeled folders and pseudo-label folders, perturbations and CutMix on the latter only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depthany import zoo
from depthany.io.image import read_image
from depthany.train.augment import apply_crop, sample_crop
from depthany.train.config import DataCfg, RecipeError, SourceCfg
from depthany.train.student_data import STUDENT_KEYS, LabeledSource, PseudoSource
from depthany.transforms import normalize_image
from pseudo_worlds import write_student_world

PRE = zoo.V2_PRE
DATA = DataCfg(crop_size=42, scale=(1.0, 1.25), hflip=0.5)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_student_world(tmp_path_factory.mktemp("student"))


def pseudo(world: dict[str, Path], **options: object) -> PseudoSource:
    return PseudoSource(SourceCfg(str(world["labels"]), 2.0, kind="pseudo", options=dict(options)), DATA, PRE,
                        "data.sources.1")


def test_pseudo_sample_is_the_image_and_teacher_label_cropped_together(world: dict[str, Path]) -> None:
    src = pseudo(world, perturb="none", cutmix={"p": 0.0})
    assert len(src) == 10
    s = src.load(3, np.random.default_rng(11))
    assert list(s) == list(STUDENT_KEYS)
    assert s["image"].shape == (3, 42, 42) and s["target"].shape == (42, 42) and s["pseudo"].item() is True
    assert s["valid"].all() and not s["box"].any() and not s["target_mix"].any()
    # oracle: the same draws applied by hand to the image file and the stored label
    meta = src.labels.meta(3)
    rgb = read_image(Path(meta["src"]["path"])).rgb
    disp = src.labels.disparity(3)
    rng = np.random.default_rng(11)
    p = sample_crop(*rgb.shape[:2], 42, DATA.scale, DATA.hflip, rng)
    img, d, _ = apply_crop(rgb, disp, np.ones(disp.shape, bool), p)
    assert torch.equal(s["image"], normalize_image(img, PRE.mean, PRE.std))
    assert torch.equal(s["target"], d)
    assert set(s["target"].unique().tolist()) <= set(np.unique(disp).tolist())  # nearest: no new values


def test_strong_perturbation_changes_only_the_image(world: dict[str, Path]) -> None:
    plain = pseudo(world, perturb="none", cutmix={"p": 0.0}).load(2, np.random.default_rng(5))
    strong = pseudo(world, cutmix={"p": 0.0}, strong={"jitter": {"p": 1.0}}).load(2, np.random.default_rng(5))
    assert torch.equal(plain["target"], strong["target"])  # the crop is drawn before the perturbation
    assert not torch.equal(plain["image"], strong["image"])
    again = pseudo(world, cutmix={"p": 0.0}, strong={"jitter": {"p": 1.0}}).load(2, np.random.default_rng(5))
    assert torch.equal(strong["image"], again["image"])  # a pure function of the generator


def test_cutmix_pastes_a_second_labelled_image_inside_a_box(world: dict[str, Path]) -> None:
    plain = pseudo(world, perturb="none", cutmix={"p": 0.0}).load(4, np.random.default_rng(3))
    mixed = pseudo(world, perturb="none", cutmix={"p": 1.0}).load(4, np.random.default_rng(3))
    box = mixed["box"]
    assert 0 < box.sum().item() < 42 * 42
    assert torch.equal(mixed["image"][:, ~box], plain["image"][:, ~box])  # outside: the base image
    assert not torch.equal(mixed["image"][:, box], plain["image"][:, box])  # inside: the other image
    assert torch.equal(mixed["target"], plain["target"]) and mixed["target_mix"].abs().sum() > 0
    ys, xs = torch.nonzero(box, as_tuple=True)  # a rectangle
    assert box[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()
    rates = [pseudo(world, perturb="none").load(1, np.random.default_rng(s))["box"].any().item() for s in range(40)]
    assert 10 <= sum(rates) <= 30  # p = 0.5 by default


def test_labeled_source_gives_inverse_depth_and_no_perturbation(world: dict[str, Path]) -> None:
    src = LabeledSource(SourceCfg(str(world["labeled"]), kind="labeled"), DATA, PRE, "data.sources.0")
    s = src.load(0, np.random.default_rng(0))
    assert list(s) == list(STUDENT_KEYS) and s["pseudo"].item() is False and not s["box"].any()
    from depthany.train.data import RGBDSource

    ref = RGBDSource(SourceCfg(str(world["labeled"])), DATA, PRE).load(0, np.random.default_rng(0))
    assert torch.equal(s["image"], ref["image"]) and torch.equal(s["valid"], ref["valid"])
    v = ref["valid"]
    assert torch.allclose(s["target"][v], 1.0 / ref["depth"][v]) and not s["target"][~v].any()
    with pytest.raises(RecipeError, match="data.sources.0.options: a labeled source takes no options"):
        LabeledSource(SourceCfg(str(world["labeled"]), kind="labeled", options={"perturb": "strong"}), DATA, PRE,
                      "data.sources.0")


def test_pseudo_source_errors_name_the_key(world: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"data.sources.1.options.cutmix.pp: unknown key \(did you mean 'p'"):
        pseudo(world, cutmix={"pp": 0.5})
    with pytest.raises(RecipeError, match="data.sources.1.options.strong.blur.p: is a probability"):
        pseudo(world, strong={"blur": {"p": 3}})
    with pytest.raises(RecipeError, match="data.sources.1.options.perturb: must be one of"):
        pseudo(world, perturb="weak")
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in world["labels"].iterdir():
        if f.name != "files-000001.tar":
            (partial / f.name).write_bytes(f.read_bytes())
    w = {**world, "labels": partial}
    with pytest.raises(RecipeError, match="data.sources.1.path: .*unfinished, 1 of 3 shards missing"):
        pseudo(w)
    assert len(pseudo(w, allow_partial=True)) == 6
    with pytest.raises(RecipeError, match="no manifest.json"):
        pseudo({**world, "labels": tmp_path})
