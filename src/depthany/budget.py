"""The network-input budget: one rule, used by every verb, the server and the Python API.

The official resize is a lower bound: the *shorter* side becomes the input size (518), the longer one follows
the aspect ratio. That is right for photos and wrong for strips: a 2x3000 image becomes a 518x777,000 network
input, two million tokens (it ran for minutes at 6+ GB without finishing). So the network input has a budget in
**patch tokens** (``(h / 14) * (w / 14)``; the class token is not counted).

Rule (:func:`fit_network_size`):

1. Compute the official network size (:func:`depthany.transforms.network_size`). If it has at most
   ``max_tokens`` tokens it is used unchanged: every ordinary image gets exactly the official input.
2. Otherwise shrink it to fit, keeping the image's aspect ratio as far as whole patches allow: the shorter side
   gets ``n = floor(sqrt(max_tokens / aspect))`` patches, the longer one ``round(n * aspect)`` (but no more than
   fits). The output is still resized to the image's own size; the result's metadata says what happened.
3. A shrunk input is never larger than the image itself, unless the input size asks for more: its long side
   gets at most ``cap = max(round(L / 14), s)`` patches, ``L`` being the image's long side in pixels and ``s``
   the official short side in patches (37 at input size 518); when the cap binds, the short side is scaled with
   it (``max(1, round(cap / aspect))`` patches) so the aspect ratio is still kept as far as whole patches allow.
   Without the cap a thin strip was upsampled along its length as much as across it: a 2x3000 strip keeps 2
   patches across, so rule 2 made it 28x42,000 (6,000 tokens, over a minute on the bundled model); capped it
   runs at 14x2996 (214 tokens). The cap binds only where rule 2 would upsample the long side beyond both the
   image and the input size: thin strips and columns, and small over-budget images (a 100x900 panorama runs at
   98x896 instead of 476x4284). Images within the budget, and large ones, are untouched.
4. An image so thin that even one patch on its short side does not fit (``aspect > max_tokens``) cannot be run
   without distorting it out of recognition: :class:`InputBudgetError`, naming the sizes.

Default budget: :data:`DEFAULT_MAX_TOKENS` = 10,952 tokens = 8x the 37x37 tokens of a 518x518 input. It keeps a
panorama up to 8:1 (518x4144) at the full official resolution, and 16:9 frames up to input size 1092 and 4:3
photos up to input size 1260. Attention grows with the square of the tokens: a full-budget input costs up to
~64x the attention of a 518x518 one (measured numbers in ``docs/performance.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PATCH_TOKENS_518 = 37 * 37  # tokens of the official 518x518 input
DEFAULT_MAX_TOKENS = 8 * PATCH_TOKENS_518  # 10,952
MAX_TOKENS_HELP = ("Network-input budget in patch tokens, (h/14)*(w/14); the default is 8x a 518x518 input. A larger "
                   "network input is shrunk to fit (aspect kept, output at the image's size); an image too thin to "
                   "fit fails with a message. See docs/performance.md.")


class InputBudgetError(ValueError):
    """An image cannot be fitted into the network-input budget (the message names the sizes and the option)."""


@dataclass(frozen=True)
class NetworkFit:
    """Where an image runs.

    Attributes:
        image_size: (H, W) of the image, pixels.
        official_size: (h, w) the official resize asks for (multiples of the patch size).
        network_size: (h, w) actually used: ``official_size`` unless it exceeded the budget.
        max_tokens: the budget applied.
        patch: the patch size (14).
    """

    image_size: tuple[int, int]
    official_size: tuple[int, int]
    network_size: tuple[int, int]
    max_tokens: int
    patch: int = 14

    @property
    def shrunk(self) -> bool:
        """True when the network size was reduced to fit the budget."""
        return self.network_size != self.official_size

    @property
    def tokens(self) -> int:
        """Patch tokens of the network input."""
        return count_tokens(*self.network_size, self.patch)

    @property
    def official_tokens(self) -> int:
        """Patch tokens the official resize would have used."""
        return count_tokens(*self.official_size, self.patch)

    def note(self) -> str:
        """One line for logs and stderr: what was shrunk and why."""
        return shrink_note(self.as_meta(), self.image_size)

    def as_meta(self) -> dict[str, object]:
        """JSON-ready description for a result's ``meta["input_budget"]``."""
        return {"max_tokens": self.max_tokens, "tokens": self.tokens, "shrunk": self.shrunk,
                "official_size": list(self.official_size), "official_tokens": self.official_tokens,
                "network_size": list(self.network_size)}


def shrink_note(budget: dict[str, Any], image_size: tuple[int, int]) -> str:
    """One line (for stderr and logs) from a result's ``meta["input_budget"]`` and its (H, W) image size."""
    (h, w), (oh, ow), (nh, nw) = image_size, budget["official_size"], budget["network_size"]
    return (f"{w}x{h} image: the official {ow}x{oh} network input has {budget['official_tokens']:,} tokens, over "
            f"the budget of "
            f"{budget['max_tokens']:,} (--max-tokens); ran at {nw}x{nh} ({budget['tokens']:,} tokens), output "
            f"still {w}x{h}")


def count_tokens(height: int, width: int, patch: int = 14) -> int:
    """Patch tokens of an (height, width) network input."""
    return (height // patch) * (width // patch)


def check_max_tokens(max_tokens: int) -> int:
    """Return ``max_tokens`` if it is a whole number >= 1.

    Raises:
        ValueError: naming the argument.
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    return max_tokens


def fit_network_size(height: int, width: int, input_size: int = 518, multiple: int = 14,
                     max_tokens: int = DEFAULT_MAX_TOKENS) -> NetworkFit:
    """The network input size for an (height, width) image under the budget (see the module docstring).

    Raises:
        InputBudgetError: the image cannot be fitted (aspect ratio above ``max_tokens``).
        ValueError: bad sizes or budget.
    """
    from .transforms import network_size  # here, not at import: the CLI reads this module without torch

    check_max_tokens(max_tokens)
    return fit_official_size((height, width), network_size(height, width, input_size, multiple), max_tokens,
                             multiple)


def fit_official_size(image_size: tuple[int, int], official: tuple[int, int], max_tokens: int = DEFAULT_MAX_TOKENS,
                      multiple: int = 14, shape: tuple[int, int] | None = None) -> NetworkFit:
    """Fit a family's own network size ``official`` = (h, w) for an ``image_size`` = (H, W) image into the budget.

    Rules 1-4 of the module docstring: unchanged when it fits, else shrunk keeping the aspect ratio of
    ``shape`` (default: the image; a family that stretches every image to one fixed size passes that size).

    Raises:
        InputBudgetError: ``shape`` is too elongated for the budget.
        ValueError: a bad budget.
    """
    check_max_tokens(max_tokens)
    height, width = shape if shape is not None else image_size
    fit = NetworkFit(image_size, official, official, max_tokens, multiple)
    if fit.tokens <= max_tokens:
        return fit
    short, long = min(height, width), max(height, width)
    aspect = long / short
    n_short = min(math.floor(math.sqrt(max_tokens / aspect)), min(official) // multiple)
    if n_short < 1:
        w, h = image_size[1], image_size[0]
        raise InputBudgetError(
            f"a {w}x{h} image (aspect ratio {aspect:,.0f}:1) cannot be fitted into {max_tokens:,} network "
            f"tokens: its short side would be below one {multiple}-pixel patch; raise --max-tokens to at least "
            f"{math.ceil(aspect):,} or crop the image")
    n_long = max(1, min(max_tokens // n_short, round(n_short * aspect), max(official) // multiple))
    # rule 3: no longer than the image itself (its own long side in patches, or the official short side)
    cap = max(round(max(image_size) / multiple), min(official) // multiple)
    if n_long > cap:
        n_long, n_short = cap, min(n_short, max(1, round(cap / aspect)))
    shape_hw = (n_short, n_long) if height <= width else (n_long, n_short)
    return NetworkFit(image_size, official, (shape_hw[0] * multiple, shape_hw[1] * multiple), max_tokens, multiple)
