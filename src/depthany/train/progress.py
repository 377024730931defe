"""Loss averaging between log lines, throughput / ETA, and the JSONL metrics file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import write_text_atomic
from ..runtime.dist import DistEnv, all_reduce_sum
from ..runtime.progress import format_duration


class Window:
    """Sums of per-step values (loss terms, gradient norm) since the last log line.

    Its state goes into checkpoints, so a log line whose window spans a resume averages exactly the same
    steps as an uninterrupted run.
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def mean(self, env: DistEnv) -> dict[str, float]:
        """Averages over the window's steps and over all processes (a collective: every rank must call it)."""
        keys = sorted(self.sums)
        t = torch.tensor([self.sums[k] for k in keys] + [float(self.steps)], dtype=torch.float64)
        t = all_reduce_sum(t, env)
        n = max(t[-1].item(), 1.0)
        return {k: t[i].item() / n for i, k in enumerate(keys)}

    def reset(self) -> None:
        self.sums, self.steps = {}, 0

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "steps": self.steps}

    def load(self, state: dict[str, Any]) -> None:
        self.sums, self.steps = dict(state["sums"]), int(state["steps"])


def format_line(record: dict[str, Any], total: int) -> str:
    """One human-readable progress line for a ``train`` record."""
    skip = {"kind", "step", "lr", "lr_decoder", "lr_head", "beta1", "grad_norm", "images_per_s", "eta_s", "elapsed_s"}
    terms = "  ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in skip)
    return (f"step {record['step']}/{total}  {terms}  lr {record['lr']:.2e}  |g| {record['grad_norm']:.3g}  "
            f"{record['images_per_s']:.1f} img/s  eta {format_duration(record['eta_s'])}")


class MetricsLog:
    """Append-only JSONL file, one record per line (written by rank 0 only)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def start(self, keep_until: int | None) -> None:
        """Begin a session: keep records with ``step <= keep_until`` (resume) or start empty (``None``).

        Records past a resumed checkpoint belong to steps that will run again; dropping them keeps one
        record per step.
        """
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if keep_until is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= keep_until:
                        kept.append(line)
                except json.JSONDecodeError:  # a line cut by a crash
                    continue
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a metrics file, optionally only those of one ``kind`` (``train``, ``val``, ``start``)."""
    out = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in out if kind is None or r.get("kind") == kind]
