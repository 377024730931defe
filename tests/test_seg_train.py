"""task: semseg training pieces: the V1 recipes' numbers, mmengine's chained warm-up + poly schedule, the V1
optimiser rules, the mmseg training pipeline, and short CPU runs that learn (linear head) and step (Mask2Former)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depthany import zoo
from depthany.seg.augment import SegAugment, crop_box, shortest_edge_size
from depthany.seg.model import SegmentationModel
from depthany.seg.spec import Mask2FormerCfg
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate
from depthany.train import RecipeError, load_recipe, recipe_from_dict
from depthany.train.build import build_model
from depthany.train.config import OptimCfg
from depthany.train.data import build_sources, collate
from depthany.train.objectives import build_objective
from depthany.train.optim import lr_factor
from depthany.train.seg import (
    SegObjective,
    build_seg_optimizer,
    build_seg_training_model,
    recipe_seg_spec,
    resolve_classes,
    seg_param_groups,
    seg_train_step,
    validate_seg,
)

CONFIGS = Path(__file__).parent.parent / "configs"
TINY = {"embed_dim": 32, "depth": 4, "num_heads": 2, "layers": [0, 1, 2, 3], "features": 16,
        "out_channels": [8, 16, 32, 32]}
TINY_M2F = {"feat_channels": 32, "out_channels": 32, "num_queries": 8, "decoder_layers": 2, "num_heads": 2,
            "ffn_channels": 32, "encoder_layers": 1, "encoder_ffn_channels": 32, "train_points": 64}


@pytest.mark.parametrize("name, steps, stride, classes", [("seg-cityscapes-vitl", 80000, 518, 19),
                                                          ("seg-ade20k-vitl", 160000, 426, 150)])
def test_v1_recipes_hold_the_v1_config_numbers(name: str, steps: int, stride: int, classes: int) -> None:
    r = load_recipe(CONFIGS / f"{name}.yaml")
    spec = recipe_seg_spec(r)
    assert spec.encoder == zoo.ENCODERS["vitl"] and spec.layers == (20, 21, 22, 23) and spec.num_classes == classes
    m = spec.mask2former
    assert spec.head == "mask2former" and m == Mask2FormerCfg()  # the defaults are the V1 numbers:
    assert (m.feat_channels, m.out_channels, m.num_queries, m.decoder_layers, m.num_heads) == (1024, 1024, 200, 9, 32)
    assert (m.ffn_channels, m.encoder_layers, m.encoder_ffn_channels, m.deform_points) == (4096, 6, 4096, 4)
    assert m.neck_rescales == (4, 2, 1, 0.5) and (m.class_weight, m.mask_weight, m.dice_weight) == (2, 5, 5)
    assert (m.no_object_weight, m.train_points, m.oversample_ratio, m.importance_sample_ratio) == (0.1, 12544, 3, 0.75)
    t = spec.inference
    assert (t.mode, t.crop, t.stride, t.resize) == ("slide", 896, stride, (3584, 896))
    o = r.optim
    assert (o.lr * o.decoder_lr_mult, o.lr, o.weight_decay, o.betas, o.eps) == (pytest.approx(3e-5), 3e-6, 0.05,
                                                                              (0.9, 0.999), 1e-8)
    assert (o.warmup_steps, o.warmup_start_factor, o.schedule, o.poly_power) == (1500, 1e-6, "mmseg", 1.0)
    assert (r.train.steps, r.train.batch_size, r.train.grad_clip, r.data.crop_size) == (steps, 16, 0.01, 896)
    a = r.data.seg_aug
    assert [int(t * 0.1 * 896) for t in a.short_side_tenths] == [int(x * 0.1 * 896) for x in range(5, 21)]
    assert (a.max_long_ratio * 896, a.cat_max_ratio, a.photometric, r.data.hflip) == (3584, 0.75, True, 0.5)
    assert r.model.encoder_init == "da1-large" and r.precision == "fp32"
    with torch.device("meta"):  # ViT-L + Mask2Former-1024: no memory, no init time
        model = SegmentationModel(spec)
    groups = seg_param_groups(model, r.optim)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert isinstance(build_objective(r, "relative", None), SegObjective)


def test_mini_recipe_builds_from_a_synthetic_folder(tmp_path: Path) -> None:
    generate(tmp_path / "w", 2, WorldConfig(32, 24), seed=0, val_fraction=0.5)
    r = load_recipe(CONFIGS / "seg-mini-synth.yaml", [f"data.sources.0.path={tmp_path / 'w'}"])
    spec = recipe_seg_spec(r)
    assert spec.encoder.name == "vitt" and spec.layers == zoo.V2_LAYERS["vitt"] and spec.head == "linear"
    assert spec.classes.name == "synth" and spec.num_classes == 29
    model = build_seg_training_model(r, spec)  # encoder from the bundled da2-mini depth model
    from depthany.weights import read_checkpoint
    from depthany.weights.hub import bundled_path

    bundled = read_checkpoint(bundled_path("assets/da2-mini.safetensors")).state_dict
    torch.testing.assert_close(model.pretrained.blocks[3].attn.qkv.weight,
                               bundled["pretrained.blocks.3.attn.qkv.weight"].float(), rtol=0, atol=0)
    assert model.training


def _mmengine_factors(total: int, warm: int, start: float, power: float) -> list[float]:
    """mmengine's LinearLR + PolyLR as chained (recursive) updates, written out from their formulas."""
    lr, out = start, []
    for t in range(total):
        if t == 0:
            lr = start
        elif t < warm:  # LinearLR._get_value
            lr *= 1 + (1 - start) / (warm * start + (t - 1) * (1 - start))
        elif t > warm:  # PolyLR._get_value (its first step, t == warm, keeps the current value)
            k, span = t - warm, total - warm
            lr *= (1 - 1 / (span - k + 1)) ** power
        out.append(lr)
    return out


@pytest.mark.parametrize("power", [1.0, 0.9])
def test_mmseg_schedule_equals_mmengine_chained_schedulers(power: float) -> None:
    cfg = OptimCfg(schedule="mmseg", warmup_steps=7, warmup_start_factor=1e-3, poly_power=power)
    got = [lr_factor(t, 30, cfg) for t in range(30)]
    np.testing.assert_allclose(got, _mmengine_factors(30, 7, 1e-3, power), rtol=1e-12)
    assert got[6] < 1 and got[7] == got[6]  # the warm-up ends one step short of the peak, poly starts from there


def test_param_groups_follow_the_v1_paramwise_rules() -> None:
    r = recipe_from_dict({"task": "semseg", "model": {"name": "da2-mini", "custom": TINY},
                          "seg": {"head": "mask2former", "classes": "cityscapes", "mask2former": TINY_M2F},
                          "optim": {"lr": 1e-5, "decoder_lr_mult": 10.0, "weight_decay": 0.05}})
    model = SegmentationModel(recipe_seg_spec(r))
    groups = build_seg_optimizer(model, r.optim).param_groups
    where = {id(p): g for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(where) == len(names)

    def rule(name: str) -> tuple[float, float]:
        g = where[id(names[name])]
        return g["lr"], g["weight_decay"]

    assert [g["name"] for g in groups[:2]] == ["backbone", "head"]
    assert rule("pretrained.blocks.0.attn.qkv.weight") == (1e-5, 0.05)  # backbone: lr_mult 0.1 of the head
    assert rule("pretrained.cls_token") == (1e-5, 0.05)
    assert rule("pretrained.blocks.3.norm1.weight") == (1e-5, 0.0)  # backbone norms: no decay
    assert rule("pretrained.norm.bias") == (1e-5, 0.0)
    # V1 lists 'pos_embed' (no decay), but mmengine tries longer keys first: 'backbone.dinov2' wins, so the
    # positional embedding is decayed like the rest of the backbone
    assert rule("pretrained.pos_embed") == (1e-5, 0.05)
    assert rule("decode_head.query_embed.weight") == (pytest.approx(1e-4), 0.0)
    assert rule("decode_head.query_feat.weight") == (pytest.approx(1e-4), 0.0)
    assert rule("decode_head.level_embed.weight") == (pytest.approx(1e-4), 0.0)
    assert rule("decode_head.pixel_decoder.level_encoding.weight") == (pytest.approx(1e-4), 0.05)  # not 'level_embed'
    assert rule("decode_head.pixel_decoder.input_convs.0.gn.weight") == (pytest.approx(1e-4), 0.0)  # norm_decay_mult 0
    assert rule("neck.upsample_4x.1.weight") == (pytest.approx(1e-4), 0.0)  # the neck's BatchNorm
    assert rule("decode_head.transformer_decoder.layers.0.cross_attn.in_proj_weight") == (pytest.approx(1e-4), 0.05)
    assert rule("decode_head.cls_embed.bias") == (pytest.approx(1e-4), 0.05)


def test_shortest_edge_resize_and_crop_rules() -> None:
    assert shortest_edge_size(1024, 2048, 448, 3584) == (448, 896)
    assert shortest_edge_size(1024, 2048, 1792, 3584) == (1792, 3584)
    assert shortest_edge_size(500, 2500, 896, 3584) == (717, 3584)  # long side capped: 4480 -> 3584
    labels = np.zeros((40, 40), np.uint8)
    labels[:, 20:] = 1  # two classes side by side
    rng = np.random.default_rng(0)
    for _ in range(20):  # a crop must keep both classes below 75 %: only x offsets near the middle qualify
        y1, y2, x1, x2 = crop_box(labels, 20, 0.75, rng)
        frac = labels[y1:y2, x1:x2].mean()
        assert 0.25 < frac < 0.75 and (y2 - y1, x2 - x1) == (20, 20)
    one = np.zeros((40, 40), np.uint8)  # impossible: after 10 redraws the last crop is kept
    probe, ref = np.random.default_rng(5), np.random.default_rng(5)
    box = crop_box(one, 20, 0.75, probe)
    for _ in range(11):  # the first draw and 10 redraws, two offsets each
        y, x = int(ref.integers(0, 21)), int(ref.integers(0, 21))
    assert box == (y, y + 20, x, x + 20)
    assert crop_box(one, 64, 0.75, rng) == (0, 40, 0, 40)  # smaller than the crop: the whole image


def test_seg_augment_pads_and_keeps_labels_aligned() -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    labels = np.zeros((30, 40), np.uint8)
    rgb[:, 20:] = 200
    labels[:, 20:] = 5  # the bright half is class 5
    aug = SegAugment(56, (10,), 4.0, 1.0, hflip=0.5, photometric=False)
    for seed in range(6):
        out = aug(rgb, labels, np.random.default_rng(seed))
        img, lab = out["image"], out["labels"]
        assert img.shape == (3, 56, 56) and lab.shape == (56, 56) and lab.dtype == torch.int64
        # short side 30 -> 56: 56 x 75, cropped to 56 x 56: no padding needed here
        bright = img[0] > 0
        assert torch.equal(bright, lab == 5)
    small = SegAugment(56, (5,), 4.0, 1.0, hflip=0.0, photometric=True)(rgb, labels, np.random.default_rng(1))
    assert (small["labels"][28:] == 255).all() and (small["image"][:, 28:] == 0).all()  # 28 x 37 padded to 56
    assert set(small["labels"][:28, :37].unique().tolist()) <= {0, 5}


def test_recipe_errors_name_the_key() -> None:
    with pytest.raises(RecipeError, match="seg: is only used with task: semseg"):
        recipe_from_dict({"seg": {"head": "mask2former"}})
    with pytest.raises(RecipeError, match="seg.taps"):
        recipe_from_dict({"task": "semseg", "seg": {"taps": "v3"}})
    with pytest.raises(RecipeError, match="loss.objective"):
        recipe_from_dict({"task": "semseg", "loss": {"objective": "relative"}})
    with pytest.raises(RecipeError, match="seg.test: crop and stride must be positive"):
        recipe_from_dict({"task": "semseg", "seg": {"test": {"stride": 0}}})
    r = recipe_from_dict({"task": "semseg"})
    with pytest.raises(RecipeError, match="seg.classes: 'auto' takes the class table from data.sources"):
        resolve_classes(r)
    with pytest.raises(RecipeError, match="task: semseg recipes train a segmentation model"):
        build_model(r, zoo.get_spec("da2-mini"))


def _tiny_recipe(folder: Path, head: str, steps: int) -> object:
    return recipe_from_dict({
        "task": "semseg", "seed": 0, "model": {"name": "da2-mini", "custom": TINY},
        "seg": {"head": head, "mask2former": TINY_M2F, "test": {"mode": "whole", "resize": None}},
        "data": {"sources": [{"path": str(folder), "kind": "semseg"}], "crop_size": 56, "hflip": 0.5,
                 "seg_aug": {"short_side_tenths": [10, 12], "photometric": False}},
        "optim": {"lr": 3e-3, "decoder_lr_mult": 10.0, "weight_decay": 0.0, "warmup_steps": 2,
                  "warmup_start_factor": 0.1, "schedule": "mmseg", "poly_power": 1.0},
        "train": {"steps": steps, "batch_size": 4, "grad_clip": 1.0}})


def test_a_short_cpu_run_learns_to_segment_synthetic_worlds(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    generate(tmp_path / "w", 6, WorldConfig(56, 42, "outdoor", clean=True), seed=1)
    recipe = _tiny_recipe(tmp_path / "w", "linear", 60)
    spec = recipe_seg_spec(recipe)  # type: ignore[arg-type]
    torch.manual_seed(recipe.seed)  # type: ignore[attr-defined]
    model = build_seg_training_model(recipe, spec)  # type: ignore[arg-type]
    source = build_sources(recipe.data, zoo.get_spec("da2-mini").preprocess)[0]  # type: ignore[attr-defined]
    objective = build_objective(recipe, "relative", None)  # type: ignore[arg-type]
    optimizer = build_seg_optimizer(model, recipe.optim)  # type: ignore[attr-defined]
    before = validate_seg(model, source.dataset).metrics()  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    losses = []
    for step in range(60):
        batch = collate([source.load(int(rng.integers(len(source))), rng) for _ in range(4)])
        out = seg_train_step(model, objective, optimizer, batch, step, 60, recipe.optim, 1.0)  # type: ignore[attr-defined]
        losses.append(out["loss"])
    after = validate_seg(model, source.dataset).metrics()  # type: ignore[attr-defined]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    assert after.aAcc > before.aAcc + 20 and after.mIoU > before.mIoU + 5
    assert model.training


def test_mask2former_steps_change_every_part_and_stay_finite(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("scipy")
    generate(tmp_path / "w", 2, WorldConfig(56, 42, "indoor"), seed=2)
    recipe = _tiny_recipe(tmp_path / "w", "mask2former", 3)
    spec = recipe_seg_spec(recipe)  # type: ignore[arg-type]
    model = build_seg_training_model(recipe, spec)  # type: ignore[arg-type]
    source = build_sources(recipe.data, zoo.get_spec("da2-mini").preprocess)[0]  # type: ignore[attr-defined]
    optimizer = build_seg_optimizer(model, recipe.optim)  # type: ignore[attr-defined]
    objective = SegObjective(spec.mask2former)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    for step in range(3):
        batch = collate([source.load(i % len(source), rng) for i in range(2)])
        out = seg_train_step(model, objective, optimizer, batch, step, 3, recipe.optim, 0.01)  # type: ignore[attr-defined]
        assert np.isfinite(out["loss"]) and out["loss"] > 0 and {"loss_cls", "loss_mask", "loss_dice"} <= set(out)
    moved = {k.split(".")[0] for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])}
    assert moved == {"pretrained", "neck", "decode_head"}


def test_the_training_snippet_of_docs_segmentation_runs(tmp_path: Path) -> None:
    """docs/segmentation.md's Python training block, on a tiny folder and two short steps."""
    pytest.importorskip("cv2")
    text = (Path(__file__).parent.parent / "docs" / "segmentation.md").read_text()
    blocks = text.split("```python\n")
    code = next(b.split("```")[0] for b in blocks[1:] if "seg_train_step(" in b)
    generate(tmp_path / "worlds", 2, WorldConfig(48, 40), seed=0)
    assert '"configs/seg-mini-synth.yaml", ["data.sources.0.path=worlds"]' in code
    code = code.replace('"configs/seg-mini-synth.yaml"', repr(str(CONFIGS / "seg-mini-synth.yaml")))
    code = code.replace('["data.sources.0.path=worlds"]',
                        f'["data.sources.0.path={tmp_path / "worlds"}", "data.sources.0.split=null", "train.steps=2", '
                        '"train.batch_size=2", "data.crop_size=56", "optim.warmup_steps=1"]')
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/segmentation.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert "mIoU" in str(namespace["validate_seg"](namespace["model"], namespace["source"].dataset).table())  # type: ignore[operator, attr-defined]
