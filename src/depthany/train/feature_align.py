"""Feature alignment (Depth Anything V1 section 3.3): keep the student's encoder close to a frozen encoder.

    L_feat = mean over patch tokens i of (1 - cos(f_i, f'_i)) * [cos(f_i, f'_i) <= margin]

``f`` are the student's final-norm patch tokens, ``f'`` those of a frozen encoder (DINOv2 in the paper) on the
same input image. Tokens whose similarity already exceeds the margin (0.85) are excluded, so the depth task
may move features away from the frozen ones where it needs to (V1 Table 12: AbsRel 0.188 without the margin,
0.175 with 0.85, ViT-S). Excluded tokens count as 0 in a mean over *all* tokens of the image; the paper does
not say whether it divides by all tokens or by the kept ones.

There is no projector (a randomly initialised one lets this loss dominate early training, V1 section 3.3),
so the frozen encoder must have the student's width: :func:`load_frozen_encoder` refuses other widths.

The student's tokens come from its own forward pass, the one that predicts depth: :class:`FinalTokens`
records the output of the encoder's shared final norm with a forward hook. A second forward through a
``DistributedDataParallel`` model would break DDP's one-forward-one-backward bookkeeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import zoo
from ..models import DepthAnything
from ..models.vit import DinoVisionTransformer
from ..weights import WeightsError, load_into
from ..weights.config import infer_encoder
from .build import _read
from .config import RecipeError


def feature_alignment_loss(student: Tensor, frozen: Tensor, margin: float = 0.85) -> tuple[Tensor, Tensor]:
    """Per-image alignment loss with the tolerance margin.

    Args:
        student: (B, N, D) student patch tokens (carry the gradient).
        frozen: (B, N, D) frozen-encoder patch tokens for the same images (no gradient needed).
        margin: tokens with cosine similarity above this are excluded (>= 1.0: no margin).

    Returns:
        (loss, kept): (B,) mean over the N tokens of ``(1 - cos) * [cos <= margin]``, and (B,) the fraction of
        tokens still aligned (cos <= margin). Both computed in float32.
    """
    if student.shape != frozen.shape:
        raise ValueError(f"student tokens {tuple(student.shape)} and frozen tokens {tuple(frozen.shape)} differ")
    cos = F.cosine_similarity(student.float(), frozen.float().detach(), dim=-1, eps=1e-8)
    # margin >= 1 means no cut at all (rounding can put a cosine a hair above 1)
    keep = (cos <= margin).to(cos.dtype) if margin < 1.0 else torch.ones_like(cos)
    return ((1.0 - cos) * keep).mean(1), keep.mean(1)


class FinalTokens:
    """Records a :class:`DepthAnything`'s final-norm patch tokens during its normal forward pass.

    The encoder applies its shared final norm once per tapped layer, in ``arch.layers`` order; the tap of the
    last block is the final feature (what ``encoder_features`` computes). Use::

        tokens = FinalTokens(model)
        with tokens.capture():
            depth = ddp_model(x)
        f = tokens.get()          # (B, N, D), part of the same autograd graph as ``depth``

    Raises:
        RecipeError: the model does not tap its last block (no final feature in the forward pass).
    """

    def __init__(self, model: DepthAnything) -> None:
        arch = model.arch
        last = arch.encoder.depth - 1
        if last not in arch.layers:
            raise RecipeError(f"loss.options.align: feature alignment uses the final encoder block, but the "
                              f"student taps blocks {list(arch.layers)} of {arch.encoder.depth}")
        self.model = model
        self.position = arch.layers.index(last)
        self.calls = len(arch.layers)
        self._outputs: list[Tensor] = []
        self._active = False
        self._handle = model.pretrained.norm.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        if self._active:
            self._outputs.append(output)

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Record during the ``with`` block (one forward pass)."""
        self._outputs = []
        self._active = True
        try:
            yield
        finally:
            self._active = False

    def get(self) -> Tensor:
        """(B, N, D) final-norm patch tokens of the captured forward pass (CLS token removed)."""
        if len(self._outputs) != self.calls:
            raise RuntimeError(f"expected {self.calls} final-norm calls in one forward pass, saw {len(self._outputs)}")
        return self._outputs[self.position][:, 1:]

    def remove(self) -> None:
        """Detach the hook from the model."""
        self._handle.remove()


class FrozenEncoder(nn.Module):
    """A DINOv2 encoder with frozen weights; ``forward`` gives final-norm patch tokens (B, N, D), no gradient."""

    def __init__(self, encoder: DinoVisionTransformer, source: str) -> None:
        super().__init__()
        self.pretrained = encoder  # the official prefix, so load_into(encoder_only=True) fills it
        self.source = source
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenEncoder:
        return super().train(False)  # always in eval mode

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.pretrained.forward_features(x)[:, 1:]


def load_frozen_encoder(ref: str, student: zoo.Arch, key: str = "loss.options.align.encoder") -> FrozenEncoder:
    """Read the encoder of a checkpoint (DINOv2 pretraining file, any Depth Anything checkpoint or zoo name)
    as a frozen alignment target for a student of architecture ``student``.

    Raises:
        RecipeError: unreadable weights, or an encoder whose width or patch size differs from the student's.
    """
    ckpt = _read(ref, key)
    try:
        if ckpt.spec is not None:
            enc = ckpt.spec.arch.encoder
        elif ckpt.arch is not None:
            enc = ckpt.arch.encoder
        else:
            enc = infer_encoder(ckpt.state_dict, ckpt.path)
    except WeightsError as e:
        raise RecipeError(f"{key}: {e}") from None
    s = student.encoder
    if enc.embed_dim != s.embed_dim or enc.patch_size != s.patch_size:
        raise RecipeError(
            f"{key}: {ref} holds a {enc.name} encoder ({enc.embed_dim} wide, patch {enc.patch_size}) but the "
            f"student's {s.name} is {s.embed_dim} wide (patch {s.patch_size}). Depth Anything aligns without a "
            "projector, so the widths must match: use the DINOv2 checkpoint of the student's size (e.g. "
            "dinov2_vits14 for a ViT-S student) or set loss.options.align.weight=0")
    frozen = FrozenEncoder(DinoVisionTransformer(enc), str(ckpt.path))
    try:
        load_into(frozen, ckpt, encoder_only=True)
    except WeightsError as e:
        raise RecipeError(f"{key}: {e}") from None
    return frozen
