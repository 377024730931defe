"""2D rotary position embedding (RoPE) on a patch grid, as Depth Anything 3's any-view encoder applies it.

Each attention head's channels are split in half: the first half is rotated by the token's row, the second by
its column. Within a half, channel pairs ``(j, j + n/2)`` turn by ``position * base ** (-2j / n)`` (the
"rotate-half" layout, not interleaved pairs). No parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_inv_freq(n: int, base: float, device: torch.device | None = None) -> Tensor:
    """(n/2,) float32 inverse frequencies ``base ** (-2j / n)`` for a half of ``n`` channels."""
    return 1.0 / (base ** (torch.arange(0, n, 2, device=device).float() / n))


def _rotate_1d(x: Tensor, pos: Tensor, base: float) -> Tensor:
    """Rotate (B, h, N, n) by integer positions (B, N)."""
    angles = pos.to(torch.float32)[:, None, :, None] * rope_inv_freq(x.shape[-1], base, x.device)
    angles = torch.cat((angles, angles), dim=-1).to(x.dtype)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * angles.cos() + rotated * angles.sin()


def apply_rope_2d(x: Tensor, pos: Tensor, base: float = 100.0) -> Tensor:
    """Apply 2D RoPE to queries or keys.

    Args:
        x: (B, heads, N, head_dim) with head_dim divisible by 4.
        pos: (B, N, 2) integer (row, column) position of every token.
        base: frequency base (100 in DA3).

    Returns:
        (B, heads, N, head_dim), same dtype.
    """
    if x.shape[-1] % 4:
        raise ValueError(f"2D RoPE needs a head dim divisible by 4, got {x.shape[-1]}")
    rows, cols = x.chunk(2, dim=-1)
    return torch.cat((_rotate_1d(rows, pos[..., 0], base), _rotate_1d(cols, pos[..., 1], base)), dim=-1)


def grid_positions(ph: int, pw: int, special: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Token positions for ``special`` leading tokens (class/camera) followed by a ph x pw patch grid.

    Returns:
        (within-view, cross-view), each (special + ph*pw, 2) int64: within a view patches sit at
        (row + 1, col + 1) and special tokens at (0, 0); across views every patch sits at (1, 1), so RoPE only
        separates patches from the special tokens there (DA3's ``pos_nodiff``).
    """
    rows = torch.arange(ph, device=device).repeat_interleave(pw)
    cols = torch.arange(pw, device=device).repeat(ph)
    patches = torch.stack((rows, cols), dim=-1) + 1
    lead = torch.zeros(special, 2, dtype=torch.long, device=device)
    local = torch.cat((lead, patches))
    cross = torch.cat((lead, torch.ones_like(patches)))
    return local, cross
