"""Progress lines of long jobs (training, pseudo-labelling): durations for elapsed time and ETA."""

from __future__ import annotations

import math


def format_duration(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"``; ``"?"`` for unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
