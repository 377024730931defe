"""Segmentation network = the Depth Anything / DINOv2 encoder (``pretrained``) + ``neck`` + ``decode_head``.

The encoder is :class:`depthany.models.vit.DinoVisionTransformer` under the same attribute name as in the
depth models, so the ``pretrained.*`` weights of any relative or metric Depth Anything checkpoint, or of a
DINOv2 pretraining checkpoint, load into it unchanged (:mod:`depthany.seg.weights`). Like the V1 seg backbone
(``semseg/dinov2.py``: ``get_intermediate_layers(x, 4)``), the four taps are the final-normed patch tokens of
the tapped blocks, reshaped to (B, D, H/14, W/14). Tensors in, tensors out: no IO, no resizing of the image.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..models.vit import DinoVisionTransformer
from .linear_head import LinearHead
from .mask2former import Mask2FormerHead, semantic_scores
from .neck import Feature2Pyramid
from .spec import SegSpec


class SegmentationModel(nn.Module):
    """Encoder + neck + head for a :class:`~depthany.seg.spec.SegSpec`.

    ``forward`` takes a normalised (B, 3, H, W) tensor, H and W multiples of 14, and returns the head's raw
    outputs (what the losses need): ``{"logits": (B, C, H/14, W/14)}`` for the linear head,
    ``{"class_logits": (S, B, Q, C+1), "mask_logits": (S, B, Q, H/3.5, W/3.5)}`` for Mask2Former (S decoder
    stages, the last one is the prediction). :meth:`seg_logits` gives per-class scores at image resolution.
    """

    def __init__(self, spec: SegSpec) -> None:
        super().__init__()
        self.spec = spec
        d = spec.encoder.embed_dim
        self.pretrained = DinoVisionTransformer(spec.encoder)
        self.neck: Feature2Pyramid | None = None
        self.decode_head: nn.Module
        if spec.head == "mask2former":
            self.neck = Feature2Pyramid(d, spec.mask2former.neck_rescales)
            self.decode_head = Mask2FormerHead(d, spec.num_classes, spec.mask2former)
        else:
            self.decode_head = LinearHead(d, spec.num_classes, spec.linear.levels)

    @property
    def patch_size(self) -> int:
        return self.spec.encoder.patch_size

    def features(self, x: Tensor) -> list[Tensor]:
        """The four tapped token maps, (B, D, H/14, W/14) each, before the neck."""
        b, _, h, w = x.shape
        ph, pw = h // self.patch_size, w // self.patch_size
        tokens = self.pretrained.get_intermediate_layers(x, self.spec.layers)
        return [t.transpose(1, 2).reshape(b, t.shape[-1], ph, pw) for t in tokens]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.features(x)
        if self.neck is None:
            return {"logits": self.decode_head(feats)}
        cls, masks = self.decode_head(self.neck(feats))
        return {"class_logits": cls, "mask_logits": masks}

    def seg_logits(self, x: Tensor) -> Tensor:
        """Per-class scores at the input size, what mmseg's ``encode_decode`` returns.

        Linear head: logits upsampled bilinearly (``align_corners=False``). Mask2Former: mask logits upsampled
        the same way, then softmax(class) without "no object" x sigmoid(mask), summed over queries. An input
        whose sides are not multiples of 14 is zero-padded at the bottom/right for the encoder and the scores
        are cropped back (mmseg's DINOv2 backbone would refuse such an input).

        Args:
            x: (B, 3, H, W) normalised image.

        Returns:
            (B, C, H, W) float scores.
        """
        h, w = x.shape[-2:]
        p = self.patch_size
        ph, pw = -h % p, -w % p
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        out = self(x)
        size = (h + ph, w + pw)
        if "logits" in out:
            scores = F.interpolate(out["logits"], size=size, mode="bilinear", align_corners=False)
        else:
            scores = semantic_scores(out["class_logits"][-1], out["mask_logits"][-1], size)
        return scores[..., :h, :w]


def build_seg_model(spec: SegSpec) -> SegmentationModel:
    """A randomly initialised model (DINOv2's init for the encoder, mmseg/mmdet's for neck and head), eval mode."""
    return SegmentationModel(spec).eval()
