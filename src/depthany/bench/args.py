"""Parsers for comma-separated CLI lists used by `depthany bench` and `depthany export` (``518x686,518x518``; ``1,4``)."""

from __future__ import annotations

import click

from ..zoo import PATCH_SIZE


def parse_sizes(text: str, multiple: int = PATCH_SIZE, param: str = "--size") -> tuple[tuple[int, int], ...]:
    """``"518x518,518x686"`` -> ((518, 518), (518, 686)); each side a positive multiple of ``multiple``."""
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not HEIGHTxWIDTH, e.g. 518x686", param_hint=param) from None
        if h < multiple or w < multiple or h % multiple or w % multiple:
            raise click.BadParameter(f"{part}: height and width must be positive multiples of {multiple}",
                                     param_hint=param)
        sizes.append((h, w))
    if not sizes:
        raise click.BadParameter("give at least one size", param_hint=param)
    return tuple(sizes)


def parse_ints(text: str, param: str) -> tuple[int, ...]:
    """``"1,4"`` -> (1, 4); every value >= 1."""
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers", param_hint=param) from None
    if not vals or min(vals) < 1:
        raise click.BadParameter("values must be integers >= 1", param_hint=param)
    return vals


def parse_choices(text: str, choices: tuple[str, ...], param: str) -> tuple[str, ...]:
    """``"fp32,bf16"`` -> ("fp32", "bf16"), each checked against ``choices``."""
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vals if v not in choices]
    if bad or not vals:
        raise click.BadParameter(f"{', '.join(bad) or text!r}: choose from {', '.join(choices)}", param_hint=param)
    return vals
