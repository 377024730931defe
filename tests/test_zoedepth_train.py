"""The ZoeDepth framework in ``depthany train``: the tiny recipe end to end (learning, exact resume, the exported
model on the inference path), the initialisation (a relative model fills the core, the head stays random), the
official SILog, the four learning-rate groups and OneCycle against PyTorch's own scheduler, whole-frame crops
and ZoeDepth's augmentations, and the full-scale recipes against the official trainer's values
(LiheYoung/Depth-Anything @ 1d03336771fe09c5398ffdd211441e33941a97dc, metric_depth/, docs/zoedepth.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from conftest import randomize
from depthany import DepthPredictor, zoo
from depthany.models import DepthAnything, ZoeDepth
from depthany.train import RecipeError, load_recipe, train
from depthany.train.augment import color_augment, rotate_sample, sample_crop, training_sample
from depthany.train.build import build_model, recipe_spec
from depthany.train.config import ColorAugCfg, DataCfg, LossCfg, OptimCfg
from depthany.train.losses import zoedepth_silog_loss
from depthany.train.objectives import ZoeDepthObjective
from depthany.train.optim import build_optimizer, lr_factor, momentum, zoedepth_groups
from depthany.train.progress import read_metrics
from depthany.weights import load_model, save_weights
from train_worlds import write_planes

CONFIGS = Path(__file__).parent.parent / "configs"
TINY = CONFIGS / "zoedepth-tiny.yaml"
TIMING = ("images_per_s", "eta_s", "elapsed_s")


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def planes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planes(tmp_path_factory.mktemp("zoe-worlds") / "planes", n=12, seed=0)


def tiny(planes: Path | str = "unused", *sets: str):  # noqa: ANN201
    return load_recipe(TINY, [f"data.sources.0.path={planes}", *sets])


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(run / "metrics.jsonl", "train")]


# ------------------------------------------------------------------------------------------ the tiny recipe


def test_tiny_recipe_learns_resumes_exactly_and_exports_a_zoedepth_model(planes: Path, tmp_path: Path) -> None:
    full = train(tiny(planes, "train.steps=10"), tmp_path / "full", echo=quiet)
    silog = [r["silog"] for r in records(tmp_path / "full")]
    assert len(silog) == 10 and full.completed
    # measured (seed 0, 20 steps): SILog 7.2, 6.7, 6.5 at steps 1-3, 4.1, 3.4, 2.6 at steps 8-10 (x10 scale, as
    # the official loss)
    assert np.mean(silog[-3:]) < 0.75 * np.mean(silog[:3]), silog
    part1 = train(tiny(planes, "train.steps=10"), tmp_path / "split", until_step=4, echo=quiet)
    assert not part1.completed and part1.weights_sha256 != full.weights_sha256
    part2 = train(tiny(planes, "train.steps=10"), tmp_path / "split", resume=True, echo=quiet)
    assert part2.weights_sha256 == full.weights_sha256  # bitwise: data, augmentation, OneCycle lr and beta1
    assert records(tmp_path / "split") == records(tmp_path / "full")
    recs = records(tmp_path / "full")
    assert recs[0]["lr_head"] == pytest.approx(5 * recs[0]["lr"]) and recs[0]["beta1"] == pytest.approx(0.95)

    net, spec = load_model(weights=full.final_weights)
    assert isinstance(net, ZoeDepth) and spec.arch.zoe == tiny().model.zoe and spec.preprocess.pipeline == "zoedepth"
    rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    r = DepthPredictor(net, spec).predict(rgb)
    assert r.kind == "metric_depth" and r.values.shape == (48, 64) and r.network_size == (42, 56)


# --------------------------------------------------------------------------------------- initialisation


def _relative_donor(tmp_path: Path, head: str = "relative") -> tuple[Path, dict[str, Tensor]]:
    """A relative (or metric) V1 model of the tiny recipe's core sizes, with recognisable random weights."""
    arch = recipe_spec(tiny()).arch
    core = zoo.Arch(arch.encoder, arch.layers, arch.features, arch.out_channels, head,
                    10.0 if head == "metric" else None, "v1")
    spec = zoo.ModelSpec("donor", core, zoo.V1_PRE, (), "Apache-2.0")
    sd = randomize(DepthAnything(core), seed=3).state_dict()
    return save_weights(sd, spec, tmp_path / f"{head}.safetensors"), sd


def test_a_relative_model_fills_the_core_and_the_head_stays_random(tmp_path: Path) -> None:
    path, donor = _relative_donor(tmp_path)
    torch.manual_seed(0)
    fresh = build_model(tiny(), recipe_spec(tiny())).state_dict()
    torch.manual_seed(0)
    got = build_model(tiny("unused", f"model.init={path}"), recipe_spec(tiny())).state_dict()
    core = [k for k in got if k.startswith("core.core.")]
    head = [k for k in got if not k.startswith("core.core.")]
    assert len(core) == len(donor) and head
    for k in core:  # encoder AND DPT decoder: the whole relative model, bitwise (official DepthAnythingCore.build)
        assert torch.equal(got[k], donor[k.removeprefix("core.core.")]), k
    for k in head:  # conv2, seed bins, projectors, attractors, log-binomial: the seed's random init
        assert torch.equal(got[k], fresh[k]), k
    enc = build_model(tiny("unused", f"model.encoder_init={path}"), recipe_spec(tiny())).state_dict()
    assert torch.equal(enc["core.core.pretrained.cls_token"], donor["pretrained.cls_token"])
    assert not torch.equal(enc["core.core.depth_head.scratch.layer1_rn.weight"],
                           donor["depth_head.scratch.layer1_rn.weight"])  # encoder_init: the encoder only


def test_init_errors_name_the_key(tmp_path: Path) -> None:
    metric, _ = _relative_donor(tmp_path, "metric")
    r = tiny("unused", f"model.init={metric}")
    with pytest.raises(RecipeError, match=r"model.init: .*metric-head model; a ZoeDepth core starts from a relative"):
        build_model(r, recipe_spec(r))
    r = tiny("unused", "model.init=da2-mini")  # ViT-Tiny does not fit the 32-wide core
    with pytest.raises(RecipeError, match=r"model.init: .*do not fit"):
        build_model(r, recipe_spec(r))
    with pytest.raises(RecipeError, match=r"model.input_size: a ZoeDepth head runs at model.zoe.img_size"):
        tiny("unused", "model.input_size=56")
    with pytest.raises(RecipeError, match=r"data.crop_hw: a relative head needs multiples of 14"):
        load_recipe(CONFIGS / "ci-tiny.yaml", ["data.sources.0.path=x", "data.crop_hw=[48, 64]"])


def test_mini_synth_recipe_starts_from_the_bundled_relative_model() -> None:
    r = load_recipe(CONFIGS / "zoedepth-mini-synth.yaml", ["data.sources.0.path=unused"])
    spec = recipe_spec(r)
    assert spec.arch.zoe == dataclasses.replace(zoo.ZoeConfig(), img_size=(56, 84))
    assert spec.arch.layers == zoo.get_spec("da2-mini").arch.layers  # the core keeps the relative model's taps
    torch.manual_seed(0)
    model = build_model(r, spec)
    bundled, _ = load_model("da2-mini")
    for k, v in bundled.state_dict().items():
        assert torch.equal(model.state_dict()[f"core.core.{k}"], v), k


# --------------------------------------------------------------------------------------------------- the loss


def test_silog_is_the_official_pooled_formula() -> None:
    g = torch.Generator().manual_seed(0)
    pred, gt = 0.5 + 5 * torch.rand(2, 6, 7, generator=g), 0.5 + 5 * torch.rand(2, 6, 7, generator=g)
    mask = torch.rand(2, 6, 7, generator=g) > 0.3
    got = zoedepth_silog_loss(pred, gt, mask).item()
    d = np.log(pred.numpy()[mask.numpy()] + 1e-7) - np.log(gt.numpy()[mask.numpy()] + 1e-7)  # pooled over the batch
    assert got == pytest.approx(10 * np.sqrt(np.var(d, ddof=1) + 0.15 * d.mean() ** 2), rel=1e-5)
    assert zoedepth_silog_loss(1.3 * gt, gt, mask).item() == pytest.approx(10 * np.sqrt(0.15) * np.log(1.3), rel=1e-4)
    assert zoedepth_silog_loss(pred, gt, torch.zeros_like(mask)).item() == 0.0


class Recorder(nn.Module):
    """Returns a fixed (B, h, w) map and remembers the input it was called with."""

    def __init__(self, pred: Tensor) -> None:
        super().__init__()
        self.pred = nn.Parameter(pred.clone())
        self.seen: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        self.seen = x
        return self.pred


def test_objective_resizes_like_the_core_and_masks_strictly() -> None:
    zoe = dataclasses.replace(zoo.ZoeConfig(), img_size=(14, 28))
    obj = ZoeDepthObjective(LossCfg(), zoe, max_depth=10.0)
    image = torch.randn(1, 3, 20, 30)
    depth = torch.full((1, 20, 30), 2.0)
    depth[0, :5] = 10.0  # == max_depth: outside the official (min, max) open interval
    net = Recorder(torch.full((1, 14, 28), 1.0))
    out = obj(net, {"image": image, "depth": depth, "valid": torch.ones(1, 20, 30, dtype=torch.bool)})
    expect = torch.nn.functional.interpolate(image, (14, 28), mode="bilinear", align_corners=True)
    assert net.seen is not None and torch.equal(net.seen, expect)
    # the constant 1 m prediction, resized to 20 x 30, against 2 m on the 15 rows inside (0.001, 10)
    assert out["silog"].item() == pytest.approx(10 * np.sqrt(0.15) * np.log(2.0), rel=1e-5)


# ------------------------------------------------------------------------------------------- the optimiser


@pytest.mark.parametrize("total,div,final", [(50, 1.0, 1e4), (37, 25.0, 1e3)])
def test_onecycle_equals_torch_onecyclelr(total: int, div: float, final: float) -> None:
    cfg = OptimCfg(lr=1.0, schedule="onecycle", div_factor=div, final_div_factor=final)
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=0.3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.3, total_steps=total, pct_start=0.7, div_factor=div,
                                                final_div_factor=final, three_phase=False, cycle_momentum=True,
                                                base_momentum=0.85, max_momentum=0.95)
    for step in range(total):
        group = opt.param_groups[0]
        assert 0.3 * lr_factor(step, total, cfg) == pytest.approx(group["lr"], rel=1e-12, abs=1e-18), step
        assert momentum(step, total, cfg) == pytest.approx(group["betas"][0], rel=1e-12), step
        opt.step()
        sched.step()


def test_four_groups_at_the_official_rates() -> None:
    r = load_recipe(CONFIGS / "zoedepth-nyu.yaml")
    with torch.device("meta"):
        model = ZoeDepth(recipe_spec(r).arch)
    groups = zoedepth_groups(model)
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters()) and len(ids) == len(set(ids))  # a partition
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups["pos_embed"]] == ["core.core.pretrained.pos_embed"]
    assert all(names[id(p)].startswith("core.core.depth_head.") for p in groups["decoder"])
    assert {names[id(p)].split(".")[0] for p in groups["head"]} == {
        "conv2", "seed_bin_regressor", "seed_projector", "projectors", "attractors", "conditional_log_binomial"}
    lrs = {g["name"]: g["lr"] for g in build_optimizer(model, r.optim).param_groups}
    # get_lr_params(lr=1.61e-4): encoder, pos_embed and DPT at lr / 50, the rest at lr
    assert lrs == pytest.approx({"encoder": 3.22e-6, "decoder": 3.22e-6, "pos_embed": 3.22e-6, "head": 1.61e-4})


# ----------------------------------------------------------------------------------- data and augmentation


def test_whole_frames_and_zoedepth_augmentations() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = rng.uniform(1, 5, (48, 64)).astype(np.float32)
    valid = np.ones((48, 64), bool)
    p = sample_crop(48, 64, (48, 64), (1.0, 1.0), 0.0, rng)
    assert (p.resized, p.top, p.left, p.crop_hw) == ((48, 64), 0, 0, (48, 64))  # the whole frame
    data = DataCfg(crop_hw=(48, 64), hflip=0.0)
    s = training_sample(rgb, depth, valid, data, zoo.V1_PRE, np.random.default_rng(1))
    assert torch.equal(s["depth"], torch.from_numpy(depth))  # nothing resized, cropped or interpolated
    # rotation about the centre: 0 degrees is the identity; 1 degree keeps the centre, invalidates corners
    assert all(np.array_equal(a, b) for a, b in zip(rotate_sample(rgb, depth, valid, 0.0), (rgb, depth, valid)))
    r_rgb, r_depth, r_valid = rotate_sample(rgb, depth, valid, 1.0)
    assert r_depth[24, 32] == depth[24, 32] and not r_valid[0, 0] and r_valid[24].all()
    assert set(np.unique(r_depth[r_valid])) <= set(np.unique(depth))  # nearest: no blended depths
    # the photometric augmentation: img ** gamma * brightness * colour, clipped, with the draws in that order
    cfg = ColorAugCfg(p=1.0)
    img = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0))
    got = color_augment(img, cfg, np.random.default_rng(5))
    draw = np.random.default_rng(5)
    gamma, bright, colour = draw.uniform(0.9, 1.1), draw.uniform(0.75, 1.25), draw.uniform(0.9, 1.1, 3)
    expect = np.clip(img.numpy() ** gamma * bright * colour[:, None, None], 0, 1)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------- full-scale recipes


@pytest.mark.parametrize("name,model,max_depth,crop,brightness,steps", [
    ("zoedepth-nyu.yaml", "da1-metric-indoor-large", 10.0, (480, 640), (0.75, 1.25), 7575),
    ("zoedepth-kitti.yaml", "da1-metric-outdoor-large", 80.0, (352, 1216), (0.9, 1.1), 7240),
])
def test_full_scale_recipes_follow_the_official_trainer(name: str, model: str, max_depth: float,
                                                        crop: tuple[int, int], brightness: tuple[float, float],
                                                        steps: int) -> None:
    r = load_recipe(CONFIGS / name)
    spec = recipe_spec(r)
    assert spec.arch == zoo.get_spec(model).arch  # the released architecture: config_zoedepth.json, 392 x 518
    assert (r.model.init, r.model.encoder_init, r.seed, r.precision) == ("da1-large", None, 43, "fp32")
    o = r.optim
    assert (o.lr * o.head_lr_mult, o.lr, o.decoder_lr_mult) == (pytest.approx(1.61e-4), pytest.approx(1.61e-4 / 50), 1.0)
    assert (o.weight_decay, o.schedule, o.pct_start, o.div_factor, o.final_div_factor) == (0.01, "onecycle", 0.7, 1.0, 1e4)
    assert (o.cycle_momentum, o.base_momentum, o.max_momentum, o.warmup_steps) == (True, 0.85, 0.95, 0)
    assert (r.loss.objective, r.loss.silog, r.loss.silog_beta, r.loss.min_depth) == ("zoedepth", 1.0, 0.15, 0.001)
    assert (r.train.batch_size, r.train.grad_clip, r.train.steps) == (16, 0.1, steps)
    d = r.data
    assert (d.crop_hw, d.scale, d.hflip, d.rotate) == (crop, (1.0, 1.0), 0.5, 1.0)
    assert d.color == ColorAugCfg(p=0.5, gamma=(0.9, 1.1), brightness=brightness, colour=(0.9, 1.1))
