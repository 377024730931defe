"""Print the encoder comparison's results as markdown tables: ``summarize.py WORKDIR``.

Every encoder is fine-tuned with the same seeds; differences between two encoders are taken seed by seed (the
same seed means the same head initialisation, data order and augmentations) and reported as mean +- standard
error of those paired differences.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ENCODERS = [("teacher", "(a) depth teacher (teacher recipe)"),
            ("align", "(b) student + feature alignment"),
            ("noalign", "(c) student, no alignment"),
            ("random", "(d) random init")]
PAIRS = [("align", "noalign", "alignment: (b) - (c)"), ("teacher", "random", "(a) - (d)"),
         ("align", "random", "(b) - (d)"), ("noalign", "random", "(c) - (d)"), ("align", "teacher", "(b) - (a)")]
TASKS = {"seg": ("mIoU", "aAcc"), "depth": ("abs_rel", "delta1")}


def mean_se(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, math.nan
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def main(work: Path) -> None:
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for task, keys in TASKS.items():
        for enc, _ in ENCODERS:
            for p in sorted((work / "eval").glob(f"{task}-{enc}-s*/metrics.json")):
                seed = int(p.parent.name.rsplit("-s", 1)[1])
                metrics = json.loads(p.read_text())["metrics"]
                for k in keys:
                    values.setdefault((task, enc, k), {})[seed] = float(metrics[k])

    def cell(task: str, enc: str, key: str, fmt: str) -> str:
        v = values.get((task, enc, key), {})
        if not v:
            return "-"
        m, se = mean_se(list(v.values()))
        per_seed = ", ".join(format(v[s], fmt) for s in sorted(v))
        return f"{m:{fmt}} +- {se:{fmt}} ({per_seed})"

    def paired(task: str, a: str, b: str, key: str, fmt: str) -> str:
        va, vb = values.get((task, a, key), {}), values.get((task, b, key), {})
        seeds = sorted(va.keys() & vb.keys())
        if len(seeds) < 2:
            return "-"
        m, se = mean_se([va[s] - vb[s] for s in seeds])
        return f"{m:+{fmt}} +- {se:{fmt}} ({abs(m) / se:.1f} SE)" if se > 0 else f"{m:+{fmt}} +- 0"

    seeds = sorted({s for v in values.values() for s in v})
    print(f"Seeds {', '.join(map(str, seeds))}; each cell: mean +- standard error over seeds (per-seed values).\n")
    print("| encoder | seg mIoU (%) | seg aAcc (%) | depth AbsRel | depth delta1 |")
    print("|---|---|---|---|---|")
    for enc, label in ENCODERS:
        print(f"| {label} | {cell('seg', enc, 'mIoU', '.2f')} | {cell('seg', enc, 'aAcc', '.2f')} | "
              f"{cell('depth', enc, 'abs_rel', '.4f')} | {cell('depth', enc, 'delta1', '.4f')} |")
    print("\nPaired differences (same seed), mean +- standard error (|mean| / SE):\n")
    print("| comparison | seg mIoU | depth AbsRel (lower is better) | depth delta1 |")
    print("|---|---|---|---|")
    for a, b, label in PAIRS:
        print(f"| {label} | {paired('seg', a, b, 'mIoU', '.2f')} | {paired('depth', a, b, 'abs_rel', '.4f')} | "
              f"{paired('depth', a, b, 'delta1', '.4f')} |")

    times: dict[str, float] = {}
    for f in (work / "pretrain" / "times.tsv", work / "times.tsv"):
        if f.exists():
            for line in f.read_text().splitlines():
                name, secs, _ = line.split("\t", 2)
                times[name] = float(secs)

    def total(prefix: str) -> str:
        ts = [t for n, t in times.items() if n.startswith(prefix)]
        return f"{sum(ts) / 60:.1f} min over {len(ts)} runs (mean {sum(ts) / len(ts) / 60:.1f})" if ts else "-"

    print("\n| step | wall time |")
    print("|---|---|")
    for prefix, label in (("synth-source", "worlds for the encoders (source, source-test)"),
                          ("synth-pool", "outdoor pool"), ("synth-target", "outdoor test"),
                          ("teacher", "(a) teacher training"), ("pseudo-label", "pseudo-labelling the pool"),
                          ("student-perturb", "(c) student without alignment"),
                          ("student-align", "(b) student with alignment"),
                          ("synth-train", "fine-tuning worlds"), ("synth-test", "fine-tuning test worlds"),
                          ("seg-", "segmentation fine-tuning"), ("depth-", "depth fine-tuning"),
                          ("eval-seg", "segmentation evaluations"), ("eval-depth", "depth evaluations")):
        print(f"| {label} | {total(prefix)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
