"""The official DINOv2 positional-embedding resize as two small interpolation matrices (export friendly).

The official rule (:func:`depthany.models.vit.interpolate_pos_embed`) calls ``F.interpolate(bicubic,
scale_factor=((ph + 0.1) / 37, (pw + 0.1) / 37))``. Exporters either bake that scale into the graph (the model
then fails or is wrong at other sizes) or need ``size=``, which samples at different positions. Bicubic
resizing is separable and linear, so the same result is ``A_h @ P @ A_w^T`` where ``A_h`` (ph, 37) and ``A_w``
(pw, 37) hold PyTorch's cubic weights (a = -0.75) at PyTorch's source coordinates for the official scale. The
matrices are built from the input's height and width with plain tensor ops, so an exported graph stays exact at
every size. The weights follow the kernel's own float32 formulas; only the summation order differs, so results
agree with ``F.interpolate`` to float rounding (about 1e-7 relative).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.vit import POS_OFFSET

CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic kernel parameter


def _fma(a: Tensor | float, b: Tensor, c: float) -> Tensor:
    """float32 ``a * b + c`` rounded once, like a fused multiply-add (the product of two float32 numbers is exact
    in float64, and so is the sum here, so the only rounding is the final cast)."""
    return (torch.as_tensor(a, dtype=torch.float64) * b.to(torch.float64) + c).to(torch.float32)


def _cubic_weights(t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """PyTorch's four cubic-convolution coefficients for fractional offsets ``t`` in [0, 1] (float32, any shape).

    Evaluated as x86 builds of PyTorch do (the compiler contracts the Horner steps into fused multiply-adds);
    plain float32 evaluation would differ by about 1e-6.
    """
    a = CUBIC_A

    def near(x: Tensor) -> Tensor:  # |x| <= 1: ((a + 2) x - (a + 3)) x x + 1
        return _fma(_fma(a + 2, x, -(a + 3)) * x, x, 1.0)

    def far(x: Tensor) -> Tensor:  # 1 < |x| < 2: ((a x - 5a) x + 8a) x - 4a
        return _fma(_fma(_fma(a, x, -5 * a), x, 8 * a), x, -4 * a)

    return far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)


def bicubic_matrix(n_out: int, n_in: int, arange_out: Tensor) -> Tensor:
    """(n_out, n_in) float32 matrix M with ``M @ v`` = PyTorch bicubic resize of v along one axis.

    The scale factor is the official DINOv2 one, (n_out + 0.1) / n_in, so for n_out == n_in the matrix is *not*
    the identity (the official code skips the resize only when both sides equal the grid; see
    :func:`pos_embed_matrices`).

    Args:
        n_out: output length (a symbolic int during export).
        n_in: the stored grid side (37).
        arange_out: ``arange(n_out)`` as float32, (n_out,); passed in so its length stays symbolic in export.
    """
    # scalar_tensor (not as_tensor) keeps a symbolic size symbolic under torch.export
    n = torch.scalar_tensor(n_out, dtype=torch.float64, device=arange_out.device)
    # PyTorch gets scale_factor s in double and uses (float)(1.0 / s) as the source step, in float32.
    inv = (1.0 / ((n + POS_OFFSET) / n_in)).to(torch.float32)
    real = _fma(inv, arange_out + 0.5, -0.5)  # source coordinate, align_corners=False, no clamping (cubic)
    base = torch.clamp(torch.floor(real), max=float(n_in - 1))
    lam = torch.clamp(real - base, 0.0, 1.0)
    cols = torch.arange(n_in, dtype=torch.float32, device=arange_out.device)
    mat = torch.zeros(arange_out.shape[0], n_in, dtype=torch.float32, device=arange_out.device)
    for k, w in enumerate(_cubic_weights(lam)):
        idx = torch.clamp(base + (k - 1), 0.0, float(n_in - 1))  # border taps are clamped and add up
        mat = mat + (idx[:, None] == cols[None, :]).to(torch.float32) * w[:, None]
    return mat


def pos_embed_matrices(ph: int, pw: int, grid: int, device: torch.device | None = None
                       ) -> tuple[Tensor, Tensor]:
    """(A_h (ph, grid), A_w (pw, grid)) float32; both exact one-hot identities when ph == pw == grid.

    The identity case reproduces the official shortcut (a 518x518 input uses the stored table unchanged):
    multiplying by exact ones and adding exact zeros leaves every value bit-identical.
    """
    ah_range = torch.arange(ph, dtype=torch.float32, device=device)
    aw_range = torch.arange(pw, dtype=torch.float32, device=device)
    a_h = bicubic_matrix(ph, grid, ah_range)
    a_w = bicubic_matrix(pw, grid, aw_range)
    cols = torch.arange(grid, dtype=torch.float32, device=device)
    same = (torch.scalar_tensor(ph, device=device) == grid) & (torch.scalar_tensor(pw, device=device) == grid)
    a_h = torch.where(same, (ah_range[:, None] == cols[None, :]).to(torch.float32), a_h)
    a_w = torch.where(same, (aw_range[:, None] == cols[None, :]).to(torch.float32), a_w)
    return a_h, a_w


def resize_pos_embed(pos_embed: Tensor, grid: int, ph: int, pw: int) -> Tensor:
    """Official DINOv2 positional-embedding resize via interpolation matrices.

    Args:
        pos_embed: (1, 1 + grid*grid, D) stored table.
        grid: side of the stored grid (37 for every released model).
        ph, pw: patch-grid height and width (symbolic ints during export).

    Returns:
        (1, 1 + ph*pw, D) in ``pos_embed``'s dtype; equal to
        :func:`depthany.models.vit.interpolate_pos_embed` up to float rounding, bit-identical at ph == pw == grid.
    """
    dtype = pos_embed.dtype
    pos = pos_embed.float()
    d = pos.shape[-1]
    cls_pos, patch = pos[:, :1], pos[0, 1:].reshape(grid, grid, d)
    a_h, a_w = pos_embed_matrices(ph, pw, grid, pos.device)
    # Width first, then height (the order of PyTorch's separable kernel). Only 2-D matmuls: some runtimes
    # (OpenVINO CPU) reject broadcast matmuls of different ranks with dynamic shapes.
    by_col = patch.permute(0, 2, 1).reshape(grid * d, grid)  # (grid*D, grid): rows (y, d), columns x
    resized_w = torch.matmul(by_col, a_w.t())  # (grid*D, pw)
    resized_w = resized_w.reshape(grid, d, -1).permute(0, 2, 1).reshape(grid, -1)  # (grid, pw*D)
    out = torch.matmul(a_h, resized_w).reshape(1, -1, d)  # (1, ph*pw, D)
    return torch.cat((cls_pos, out), dim=1).to(dtype)
