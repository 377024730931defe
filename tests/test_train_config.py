"""Recipes: strict YAML loading, --set overrides, every shipped recipe builds; schedule and optimiser groups."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from depthany import zoo
from depthany.models import DepthAnything, ZoeDepth, build_network
from depthany.train import Recipe, RecipeError, dump_recipe, load_recipe, recipe_from_dict, recipe_to_dict
from depthany.train.build import recipe_spec
from depthany.train.config import OptimCfg
from depthany.train.objectives import (
    MetricObjective,
    RelativeObjective,
    ZoeDepthObjective,
    build_objective,
    head_kind,
)
from depthany.train.optim import build_optimizer, lr_factor, set_lr
from depthany.train.student import StudentObjective

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_configs_exist() -> None:
    names = {p.name for p in CONFIGS}
    assert {"ci-tiny.yaml", "da2-mini-synth.yaml", "da2-teacher-vitl.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_recipe_parses_and_builds(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe_from_dict(yaml.safe_load(dump_recipe(recipe))) == recipe
    if recipe.task == "semseg":  # segmentation recipes build a SegmentationModel: tests/test_seg_train.py
        return
    if recipe.task == "video":  # VDA recipes build a VideoDepthAnything from model.init: tests/test_vda_train.py
        from depthany.train.video_task import VideoObjective, video_spec

        assert video_spec(recipe).arch.temporal is not None
        assert isinstance(build_objective(recipe, "relative", None), VideoObjective)
        return
    if recipe.loss.objective == "student":  # its frozen DINOv2 is a download; tests/test_student.py covers it
        recipe = load_recipe(path, ["loss.options.align.weight=0"])
    spec = recipe_spec(recipe)
    if spec.arch.zoe is not None:  # ZoeDepth: the official four groups (zoedepth_v1.py get_lr_params)
        with torch.device("meta"):
            zoe = build_network(spec.arch)
        assert isinstance(zoe, ZoeDepth)
        groups = build_optimizer(zoe, recipe.optim).param_groups
        assert [g["name"] for g in groups] == ["encoder", "decoder", "pos_embed", "head"]
        assert sum(len(g["params"]) for g in groups) == len(list(zoe.parameters()))
        assert isinstance(build_objective(recipe, head_kind(spec), spec.arch.max_depth), ZoeDepthObjective)
        return
    with torch.device("meta"):  # ViT-L: no memory, no init time
        model = DepthAnything(spec.arch)
    objective = build_objective(recipe, spec.arch.head, spec.arch.max_depth)
    opt = build_optimizer(model, recipe.optim)
    enc, dec = opt.param_groups
    assert enc["lr"] * recipe.optim.decoder_lr_mult == pytest.approx(dec["lr"])
    assert len(enc["params"]) + len(dec["params"]) == len(list(model.parameters()))
    expected = {"student": StudentObjective}.get(recipe.loss.objective,
                                                  MetricObjective if spec.arch.head == "metric" else RelativeObjective)
    assert isinstance(objective, expected)
    assert recipe.data.crop_size % 14 == 0
    assert recipe.train.batch_size % recipe.train.grad_accum == 0
    # the dump is a complete recipe: loading it gives the same object
    assert recipe_from_dict(yaml.safe_load(dump_recipe(recipe))) == recipe


def test_shipped_recipes_follow_the_papers() -> None:
    teacher = load_recipe(Path(CONFIGS[0]).parent / "da2-teacher-vitl.yaml")
    spec = recipe_spec(teacher)
    assert spec.arch == zoo.get_spec("da2-large").arch  # ViT-L with V2 taps, no sizes repeated in the YAML
    assert (teacher.data.crop_size, teacher.train.batch_size) == (518, 64)
    assert (teacher.optim.lr, teacher.optim.lr * teacher.optim.decoder_lr_mult) == (5e-6, pytest.approx(5e-5))
    assert (teacher.loss.ssi, teacher.loss.gm) == (1.0, 2.0)
    mini = load_recipe(Path(CONFIGS[0]).parent / "da2-mini-synth.yaml")
    assert recipe_spec(mini).arch == zoo.get_spec("da2-mini").arch
    assert mini.data.crop_size == zoo.get_spec("da2-mini").preprocess.input_size


def test_unknown_key_names_key_file_and_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, "optim:\n  lrr: 1.0e-4\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and "optim.lrr" in msg and "did you mean 'lr'" in msg


def test_unknown_top_level_section(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"r\.yaml: optimizer: unknown key \(did you mean 'optim'"):
        load_recipe(write(tmp_path, "optimizer: {}\n"))


@pytest.mark.parametrize("text,key,words", [
    ("train:\n  steps: many\n", "train.steps", "expected an integer"),
    ("train:\n  steps: 1.5\n", "train.steps", "expected an integer"),
    ("optim:\n  lr: fast\n", "optim.lr", "expected a number"),
    ("optim:\n  schedule: cosine\n", "optim.schedule", "must be one of"),
    ("precision: fp16\n", "precision", "must be one of"),
    ("data:\n  sources: a/folder\n", "data.sources", "expected a list"),
    ("data:\n  sources: [{weight: 2}]\n", "data.sources.0.path", "required key is missing"),
    ("data:\n  crop_size: 250\n", "data.crop_size", "multiple of 14"),
    ("train:\n  batch_size: 6\n  grad_accum: 4\n", "train.grad_accum", "not divisible"),
    ("model:\n  name: da3-huge\n", "model.name", "unknown model"),
    ("model:\n  head: metric\n", "model.max_depth", "needs max_depth"),
    ("loss:\n  objective: teacher\n", "loss.objective", "unknown objective"),
    ("model:\n  init: a.pth\n  encoder_init: b.pth\n", "model.encoder_init", "not both"),
    ("optim:\n  warmup_steps: 5000\ntrain:\n  steps: 100\n", "optim.warmup_steps", "train.steps"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    assert str(p) in str(e.value) and key in str(e.value) and words in str(e.value)


def test_yaml_1_1_exponent_floats_are_numbers(tmp_path: Path) -> None:
    # PyYAML reads 5e-6 (no dot) as a string; a recipe author should not have to know that
    assert load_recipe(write(tmp_path, "optim:\n  lr: 5e-6\n")).optim.lr == 5e-6


def test_overrides_nested_lists_and_types(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, "name: x\n"), [
        "optim.lr=2e-5", "train.steps=7", "data.sources.0.path=/a", "data.sources.1.path=/b",
        "data.sources.1.weight=3", "model.head=metric", "model.max_depth=20", "data.scale=[1.0, 1.5]",
        "data.val.path=null",
    ])
    assert r.optim.lr == 2e-5 and r.train.steps == 7
    assert [(s.path, s.weight) for s in r.data.sources] == [("/a", 1.0), ("/b", 3.0)]
    assert (r.model.head, r.model.max_depth, r.data.scale) == ("metric", 20.0, (1.0, 1.5))
    assert recipe_spec(r).arch.max_depth == 20.0


def test_override_errors_name_the_override(tmp_path: Path) -> None:
    p = write(tmp_path, "name: x\n")
    with pytest.raises(RecipeError, match=r"--set optim\.lrr: optim\.lrr: unknown key"):
        load_recipe(p, ["optim.lrr=1"])
    with pytest.raises(RecipeError, match=r"--set train\.steps: train\.steps: expected an integer"):
        load_recipe(p, ["train.steps=abc"])
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        load_recipe(p, ["train.steps"])
    with pytest.raises(RecipeError, match="list index"):
        load_recipe(p, ["data.sources.3.path=/a"])


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(write(tmp_path, "- 1\n- 2\n"))


def test_defaults_roundtrip_and_custom_arch() -> None:
    r = load_recipe(None, ["model.custom={embed_dim: 32, depth: 6, num_heads: 2, layers: [0, 2, 3, 5], "
                           "features: 16, out_channels: [8, 16, 32, 32]}", "name=tiny", "model.input_size=28"])
    assert recipe_from_dict(recipe_to_dict(r)) == r
    spec = recipe_spec(r)
    assert (spec.name, spec.arch.encoder.embed_dim, spec.arch.layers, spec.preprocess.input_size) == (
        "tiny", 32, (0, 2, 3, 5), 28)
    assert spec.preprocess.mean == zoo.get_spec("da2-mini").preprocess.mean
    assert isinstance(Recipe(), Recipe) and dataclasses.is_dataclass(r)
    with pytest.raises(RecipeError, match="model.custom"):
        load_recipe(None, ["model.custom={embed_dim: 32, depth: 6, num_heads: 2, layers: [0, 2, 3, 9], "
                           "features: 16, out_channels: [8, 16, 32, 32]}"])


# ------------------------------------------------------------------------------------- schedule / optimiser


def test_lr_schedule_values() -> None:
    lin = OptimCfg(warmup_steps=4, schedule="linear")
    assert [lr_factor(s, 14, lin) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 14, lin) == 1.0 and lr_factor(9, 14, lin) == pytest.approx(0.5)
    assert lr_factor(13, 14, lin) == pytest.approx(0.1)
    poly = OptimCfg(schedule="poly", poly_power=0.9)
    assert lr_factor(5, 10, poly) == pytest.approx(0.5**0.9)
    assert lr_factor(7, 10, OptimCfg(schedule="constant")) == 1.0


def test_optimizer_groups_and_set_lr() -> None:
    r = load_recipe(CONFIGS[0].parent / "ci-tiny.yaml")
    model = DepthAnything(recipe_spec(r).arch)
    opt = build_optimizer(model, r.optim)
    enc, dec = opt.param_groups
    assert (enc["name"], dec["name"]) == ("encoder", "decoder")
    assert {id(p) for p in enc["params"]} == {id(p) for p in model.pretrained.parameters()}
    assert {id(p) for p in dec["params"]} == {id(p) for p in model.depth_head.parameters()}
    set_lr(opt, 0.5)
    assert enc["lr"] == r.optim.lr * 0.5 and dec["lr"] == pytest.approx(r.optim.lr * 10 * 0.5)
    assert enc["weight_decay"] == r.optim.weight_decay and enc["betas"] == r.optim.betas
