"""The student objective: weighting that does not depend on the batch split, alignment gradients, recipe errors,
and the student stage in the training loop (exact resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depthany.train import load_recipe, train
from depthany.train.build import build_model, recipe_spec
from depthany.train.config import RecipeError
from depthany.train.data import Draw, TrainSet, build_sources, collate
from depthany.train.feature_align import feature_alignment_loss
from depthany.train.objectives import build_objective
from depthany.train.progress import read_metrics
from depthany.train.student_losses import pseudo_losses, region_losses
from pseudo_worlds import write_student_world

QUIET = {"echo": lambda s: None}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_student_world(tmp_path_factory.mktemp("student"))


def batch_of(recipe, draws):  # type: ignore[no-untyped-def]
    sources = build_sources(recipe.data, recipe_spec(recipe).preprocess)
    ts = TrainSet(sources, recipe.seed)
    return collate([ts[d] for d in draws])


def setup(world: dict[str, Path], *sets: str):  # type: ignore[no-untyped-def]
    recipe = load_recipe(world["recipe"], list(sets))
    spec = recipe_spec(recipe)
    torch.manual_seed(0)
    model = build_model(recipe, spec)
    objective = build_objective(recipe, spec.arch.head, spec.arch.max_depth)
    # 2 labeled + 4 pseudo-labeled (the 1 : 2 of the recipe), in an order that splits unevenly into halves
    draws = [Draw(1, 0, 0), Draw(0, 1, 0), Draw(1, 3, 1), Draw(1, 5, 2), Draw(0, 4, 1), Draw(1, 7, 3)]
    return recipe, model, objective, batch_of(recipe, draws)


def test_loss_is_the_weighted_mean_of_the_terms_whatever_the_split(world: dict[str, Path]) -> None:
    recipe, model, objective, batch = setup(world, "loss.options.labeled=0.7", "loss.options.align.weight=0.3")
    assert batch["box"].any()  # some CutMix in the batch
    full = objective(model, batch)
    halves = [objective(model, {k: v[sl] for k, v in batch.items()}) for sl in (slice(0, 3), slice(3, 6))]
    for key in ("loss", "labeled", "pseudo", "align", "align_kept"):
        assert full[key].item() == pytest.approx((halves[0][key].item() + halves[1][key].item()) / 2, rel=1e-5), key

    # independent recomputation: 0.7 * mean L_l + 1.0 * mean L_u + 0.3 * mean L_feat
    with torch.no_grad():
        pred = model(batch["image"]).float()
        lab, ps = ~batch["pseudo"], batch["pseudo"]
        ssi, gm = region_losses(pred[lab], batch["target"][lab], batch["valid"][lab], 3)
        l_l = (ssi + 0.5 * gm).mean()
        ssi, gm = pseudo_losses(pred[ps], batch["target"][ps], batch["target_mix"][ps], batch["box"][ps],
                                batch["valid"][ps], 3, 0.1)
        l_u = (ssi + 0.5 * gm).mean()
        l_f, kept = feature_alignment_loss(model.encoder_features(batch["image"][ps]),
                                           objective.frozen(batch["image"][ps]))
    assert full["labeled"].item() == pytest.approx(0.7 * l_l.item(), rel=1e-5)
    assert full["pseudo"].item() == pytest.approx(l_u.item(), rel=1e-5)
    assert full["align"].item() == pytest.approx(0.3 * l_f.mean().item(), rel=1e-4)
    assert full["align_kept"].item() == pytest.approx(kept.mean().item(), rel=1e-5)
    assert full["loss"].item() == pytest.approx(0.7 * l_l.item() + l_u.item() + 0.3 * l_f.mean().item(), rel=1e-5)


def test_alignment_gradient_reaches_the_encoder_only(world: dict[str, Path]) -> None:
    _, model, objective, batch = setup(world, "loss.options.labeled=0", "loss.options.pseudo=0")
    out = objective(model, batch)
    assert out["labeled"].item() == 0 and out["pseudo"].item() == 0 and out["align"].item() > 0
    out["loss"].backward()
    enc = [p.grad for p in model.pretrained.parameters() if p.grad is not None]
    assert enc and sum(g.abs().sum().item() for g in enc) > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.depth_head.parameters())
    assert all(p.grad is None for p in objective.frozen.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # precision: bf16 (tokens arrive in bf16, losses in fp32)
        out16 = objective(model, batch)
    assert out16["loss"].dtype == torch.float32 and torch.isfinite(out16["loss"])
    assert out16["align"].item() == pytest.approx(out["align"].item(), rel=0.1)


def test_student_recipe_errors(world: dict[str, Path]) -> None:
    def build(*sets: str) -> None:
        r = load_recipe(world["recipe"], list(sets))
        spec = recipe_spec(r)
        build_objective(r, spec.arch.head, spec.arch.max_depth)

    with pytest.raises(RecipeError, match=r"loss.options.trimm: unknown key \(did you mean 'trim'"):
        build("loss.options.trimm=0.1")
    with pytest.raises(RecipeError, match="loss.options.trim: must be in"):
        build("loss.options.trim=1.5")
    with pytest.raises(RecipeError, match="data.sources.0.kind: the student objective reads kinds labeled and pseudo"):
        build("data.sources.0.kind=rgbd")
    with pytest.raises(RecipeError, match="needs a source of kind pseudo"):
        build("data.sources.1.weight=0")
    with pytest.raises(RecipeError, match="feature alignment needs a frozen encoder"):
        build("loss.options.align.encoder=null")
    build("loss.options.align.encoder=null", "loss.options.align.weight=0")  # fine without alignment
    with pytest.raises(RecipeError, match="relative head"):
        build("model.head=metric", "model.max_depth=10")


def test_student_stage_resumes_exactly(world: dict[str, Path], tmp_path: Path) -> None:
    sets = [f"data.val.path={world['val']}", "train.grad_accum=2"]
    recipe = load_recipe(world["recipe"], sets)
    full = train(recipe, tmp_path / "full", **QUIET)
    assert full.completed and full.last_val is not None
    part = train(recipe, tmp_path / "part", until_step=2, **QUIET)
    assert part.step == 2 and not part.completed
    resumed = train(recipe, tmp_path / "part", resume=True, **QUIET)
    assert resumed.weights_sha256 == full.weights_sha256  # bit for bit, perturbations and CutMix included
    recs = [read_metrics(d / "metrics.jsonl", "train") for d in (tmp_path / "full", tmp_path / "part")]
    assert [r["loss"] for r in recs[0]] == [r["loss"] for r in recs[1]]
    assert set(recs[0][0]) >= {"labeled", "pseudo", "align", "align_kept"}
    assert np.isfinite([r["loss"] for r in recs[0]]).all()


def test_shipped_student_recipes_follow_the_papers() -> None:
    from depthany import zoo
    from depthany.train.student import parse_student_options, source_shares

    configs = Path(__file__).parent.parent / "configs"
    v1 = load_recipe(configs / "student-v1.yaml")
    assert recipe_spec(v1).arch == zoo.get_spec("da1-large").arch
    assert source_shares(v1) == (pytest.approx(1 / 3), pytest.approx(2 / 3))  # labeled : pseudo = 1 : 2
    o1 = parse_student_options(v1)
    assert (v1.loss.gm, o1.trim, o1.align.weight, o1.align.margin) == (0.0, 0.0, 1.0, 0.85)
    assert v1.data.sources[1].options["cutmix"]["p"] == 0.5 and v1.data.sources[1].options["perturb"] == "strong"
    # "sweeping the 62M unlabeled images once": 2/3 of every batch is pseudo-labeled
    assert v1.train.steps * v1.train.batch_size * 2 / 3 == pytest.approx(62e6, rel=1e-3)
    v2 = load_recipe(configs / "student-v2.yaml")
    assert [s.kind for s in v2.data.sources] == ["pseudo"]  # real pseudo-labeled images only
    o2 = parse_student_options(v2)
    assert (v2.loss.ssi, v2.loss.gm, o2.trim) == (1.0, 2.0, 0.1)
    assert (v2.train.batch_size, v2.train.steps, v2.optim.lr, v2.optim.weight_decay) == (192, 480000, 5e-6, 0.0)
    for r in (v1, v2):
        assert r.model.encoder_init is None and r.loss.objective == "student" and r.data.crop_size == 518
