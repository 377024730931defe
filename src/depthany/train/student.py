"""The student objective (``loss.objective: student``): labeled + pseudo-labeled images + feature alignment.

    loss = labeled * L_l + pseudo * L_u + align.weight * L_feat

* ``L_l``, labeled images: ``ssi * L_ssi + gm * L_gm`` against 1 / depth (the teacher stage's loss).
* ``L_u``, pseudo-labeled images: the same terms against the teacher's disparity, each CutMix region
  against its own label and weighted by area, the largest ``trim`` fraction of per-pixel losses ignored
  (V2: 0.1; V1: 0). See :mod:`depthany.train.student_losses`.
* ``L_feat``, pseudo-labeled images only: :func:`~depthany.train.feature_align.feature_alignment_loss`
  between the student's final-norm tokens (from its own forward pass) and a frozen encoder's on the same
  input; the encoder is ``align.encoder`` or else ``model.encoder_init`` (the DINOv2 the student started
  from, as in the paper).

V1 averages the three terms (a common factor of 1/3, which Adam all but ignores); the weights here are plain
multipliers. Each term is an expectation over its images. So that the result does not depend on how a batch
is cut into processes and accumulation steps, every image's loss is multiplied by ``weight / share`` (share =
that kind's fraction of ``data.sources`` weight) and summed over the micro-batch, divided by the micro-batch
size: a batch drawn in the configured proportions gets exactly ``labeled * mean(L_l) + pseudo * mean(L_u) +
...``, and N processes optimise what one process with the whole batch would.

Logged terms: ``labeled``, ``pseudo``, ``align`` (their contributions to ``loss``) and ``align_kept`` (the
fraction of tokens still below the margin, averaged over pseudo-labeled images).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..models import DepthAnything
from .build import recipe_spec
from .config import Recipe, RecipeError
from .feature_align import FinalTokens, FrozenEncoder, feature_alignment_loss, load_frozen_encoder
from .objectives import Batch, Objective
from .strict import FieldError, from_dict
from .student_data import STUDENT_KEYS
from .student_losses import pseudo_losses, region_losses

STUDENT_SOURCE_KINDS = ("labeled", "pseudo")


@dataclass(frozen=True)
class AlignCfg:
    """Feature alignment: ``weight`` (0 = off), tolerance ``margin`` (1.0 = none), frozen ``encoder``
    (checkpoint path or zoo name; None = ``model.encoder_init``)."""

    weight: float = 1.0
    margin: float = 0.85
    encoder: str | None = None


@dataclass(frozen=True)
class StudentCfg:
    """``loss.options`` of the student objective (the relative-loss weights are ``loss.ssi``, ``loss.gm``)."""

    labeled: float = 1.0
    pseudo: float = 1.0
    trim: float = 0.0
    align: AlignCfg = field(default_factory=AlignCfg)


def parse_student_options(recipe: Recipe) -> StudentCfg:
    """Strictly parse and range-check ``loss.options``.

    Raises:
        RecipeError: naming the key.
    """
    try:
        cfg: StudentCfg = from_dict(StudentCfg, recipe.loss.options, "loss.options.")
    except FieldError as e:
        raise RecipeError(f"{e.key}: {e.message}") from None
    checks = [(cfg.labeled >= 0, "labeled", f"must be >= 0, got {cfg.labeled}"),
              (cfg.pseudo >= 0, "pseudo", f"must be >= 0, got {cfg.pseudo}"),
              (0 <= cfg.trim < 1, "trim", f"must be in [0, 1) (V2: 0.1), got {cfg.trim}"),
              (cfg.align.weight >= 0, "align.weight", f"must be >= 0, got {cfg.align.weight}"),
              (-1 <= cfg.align.margin <= 1, "align.margin", f"is a cosine in [-1, 1], got {cfg.align.margin}")]
    for ok, key, message in checks:
        if not ok:
            raise RecipeError(f"loss.options.{key}: {message}")
    return cfg


def source_shares(recipe: Recipe) -> tuple[float, float]:
    """(labeled share, pseudo-labeled share) of the ``data.sources`` weights.

    Raises:
        RecipeError: a source of another kind, or no pseudo-labeled source.
    """
    for i, s in enumerate(recipe.data.sources):
        if s.kind not in STUDENT_SOURCE_KINDS:
            raise RecipeError(f"data.sources.{i}.kind: the student objective reads kinds "
                              f"{' and '.join(STUDENT_SOURCE_KINDS)}, got {s.kind!r}")
    total = sum(s.weight for s in recipe.data.sources)
    pseudo = sum(s.weight for s in recipe.data.sources if s.kind == "pseudo")
    if pseudo <= 0 or total <= 0:
        raise RecipeError("data.sources: the student objective needs a source of kind pseudo with weight > 0 "
                          "(the output of depthany pseudo-label)")
    return (total - pseudo) / total, pseudo / total


class StudentObjective(Objective):
    """See the module docstring. ``frozen`` is the alignment encoder (None: no alignment)."""

    needs = STUDENT_KEYS

    def __init__(self, recipe: Recipe, cfg: StudentCfg, shares: tuple[float, float],
                 frozen: FrozenEncoder | None) -> None:
        self.cfg, self.frozen = cfg, frozen
        self.w_ssi, self.w_gm, self.scales = recipe.loss.ssi, recipe.loss.gm, recipe.loss.gm_scales
        share_l, share_u = shares
        self.share_u = share_u
        self.c_labeled = cfg.labeled / share_l if share_l > 0 else 0.0
        self.c_pseudo = cfg.pseudo / share_u
        self.c_align = cfg.align.weight / share_u
        self._tokens: FinalTokens | None = None

    def to(self, device: Any) -> StudentObjective:
        if self.frozen is not None:
            self.frozen.to(device)
        return self

    def _capture(self, model: nn.Module) -> FinalTokens:
        inner = model.module if isinstance(model, DistributedDataParallel) else model
        if self._tokens is None or self._tokens.model is not inner:
            if self._tokens is not None:
                self._tokens.remove()
            if not isinstance(inner, DepthAnything):
                raise TypeError(f"feature alignment needs a DepthAnything model, got {type(inner).__name__}")
            self._tokens = FinalTokens(inner)
        return self._tokens

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        tokens = self._capture(model) if self.frozen is not None else None
        with tokens.capture() if tokens is not None else contextlib.nullcontext():
            pred = model(batch["image"]).float()  # losses in fp32 even under bf16 autocast
        n = pred.shape[0]
        pseudo = batch["pseudo"].bool()
        labeled = ~pseudo
        zero = pred.sum() * 0.0  # keeps every term attached to the graph, even when a group is absent
        terms: dict[str, Tensor] = {"labeled": zero, "pseudo": zero}

        if labeled.any() and self.c_labeled > 0:
            ssi, gm = region_losses(pred[labeled], batch["target"][labeled], batch["valid"][labeled], self.scales)
            terms["labeled"] = self.c_labeled * (self.w_ssi * ssi + self.w_gm * gm).sum() / n
        if pseudo.any():
            ssi, gm = pseudo_losses(pred[pseudo], batch["target"][pseudo], batch["target_mix"][pseudo],
                                    batch["box"][pseudo], batch["valid"][pseudo], self.scales, self.cfg.trim)
            terms["pseudo"] = self.c_pseudo * (self.w_ssi * ssi + self.w_gm * gm).sum() / n
        if tokens is not None and self.frozen is not None:
            terms["align"], terms["align_kept"] = zero, zero.detach()
            if pseudo.any():
                student = tokens.get()[pseudo]
                target = self.frozen(batch["image"][pseudo])
                per_image, kept = feature_alignment_loss(student, target, self.cfg.align.margin)
                terms["align"] = self.c_align * per_image.sum() / n
                terms["align_kept"] = kept.sum() / n / self.share_u
        total = sum(terms[k] for k in ("labeled", "pseudo", "align") if k in terms)
        return {"loss": total, **{k: v.detach() for k, v in terms.items()}}  # type: ignore[dict-item]


def _student(recipe: Recipe, head: str, max_depth: float | None) -> Objective:
    """Factory registered as ``student`` in :data:`depthany.train.objectives.OBJECTIVES`."""
    if head != "relative":
        raise RecipeError("loss.objective: 'student' trains a relative head (model.head: relative); Depth "
                          "Anything's metric models are fine-tuned from a relative student afterwards")
    cfg = parse_student_options(recipe)
    shares = source_shares(recipe)
    frozen = None
    if cfg.align.weight > 0:
        ref = cfg.align.encoder or recipe.model.encoder_init
        if not ref:
            raise RecipeError("loss.options.align.encoder: feature alignment needs a frozen encoder: set it (a "
                              "DINOv2 checkpoint of the student's size, or e.g. the teacher's weights) or "
                              "model.encoder_init, or turn alignment off with loss.options.align.weight=0")
        frozen = load_frozen_encoder(ref, recipe_spec(recipe).arch,
                                     "loss.options.align.encoder" if cfg.align.encoder else "model.encoder_init")
    return StudentObjective(recipe, cfg, shares, frozen)
