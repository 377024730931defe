"""mmseg's ``Feature2Pyramid`` neck: four same-resolution ViT feature maps -> a 4-level pyramid.

mmseg/models/necks/featurepyramid.py (open-mmlab/mmsegmentation), as the Depth Anything V1 configs use it with
``rescales=[4, 2, 1, 0.5]``: level 0 is upsampled x4 (ConvTranspose 2x2/2, norm, GELU, ConvTranspose 2x2/2),
level 1 x2 (one ConvTranspose 2x2/2), level 2 is kept, level 3 is max-pooled 2x2/2 (floor for odd sizes).
mmseg's norm defaults to SyncBN; this is ``BatchNorm2d`` (convert with
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` for multi-process training).
With 14-pixel patches the levels have strides 3.5, 7, 14 and 28 pixels.
"""

from __future__ import annotations

from torch import Tensor, nn


class Feature2Pyramid(nn.Module):
    """(B, D, h, w) x 4 -> (B, D, 4h, 4w), (B, D, 2h, 2w), (B, D, h, w), (B, D, h//2, w//2) for rescales
    (4, 2, 1, 0.5); (2, 1, 0.5, 0.25) is mmseg's other supported set."""

    def __init__(self, embed_dim: int, rescales: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)) -> None:
        super().__init__()
        if tuple(rescales) not in ((4.0, 2.0, 1.0, 0.5), (2.0, 1.0, 0.5, 0.25)):
            raise ValueError(f"Feature2Pyramid rescales must be (4, 2, 1, 0.5) or (2, 1, 0.5, 0.25), got {rescales}")
        self.rescales = tuple(rescales)
        d = embed_dim
        ops: list[nn.Module] = []
        for k in self.rescales:
            if k == 4:
                self.upsample_4x = nn.Sequential(nn.ConvTranspose2d(d, d, kernel_size=2, stride=2), nn.BatchNorm2d(d),
                                                 nn.GELU(), nn.ConvTranspose2d(d, d, kernel_size=2, stride=2))
                ops.append(self.upsample_4x)
            elif k == 2:
                self.upsample_2x = nn.Sequential(nn.ConvTranspose2d(d, d, kernel_size=2, stride=2))
                ops.append(self.upsample_2x)
            elif k == 1:
                self.identity = nn.Identity()
                ops.append(self.identity)
            elif k == 0.5:
                self.downsample_2x = nn.MaxPool2d(kernel_size=2, stride=2)
                ops.append(self.downsample_2x)
            else:
                self.downsample_4x = nn.MaxPool2d(kernel_size=4, stride=4)
                ops.append(self.downsample_4x)
        self._ops = ops  # plain list: the modules are registered under their mmseg names above

    def forward(self, inputs: list[Tensor]) -> list[Tensor]:
        if len(inputs) != len(self._ops):
            raise ValueError(f"Feature2Pyramid takes {len(self._ops)} feature maps, got {len(inputs)}")
        return [op(x) for op, x in zip(self._ops, inputs)]
