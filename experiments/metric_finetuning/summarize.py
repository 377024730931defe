"""Print the metric fine-tuning experiment's results as markdown tables: ``summarize.py WORKDIR``.

Per test set: for each head and initialisation, the mean over seeds of the per-run AbsRel, RMSE, delta1 and
SILog x100 (each run's metric is its mean over the test images), +- the standard error over seeds; then the
paired difference DA init - random init (same head, same seed), mean +- standard error over seeds.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

TESTS = {"indoor-test": "in-domain: held-out indoor rooms, the training texture families",
         "indoor-zs": "zero-shot: indoor rooms with the three other texture families",
         "outdoor-zs": "zero-shot: outdoor scenes (another world family), pixels up to 10 m"}
HEADS = {"zoedepth": "ZoeDepth head", "v2": "V2 sigmoid head"}
INITS = {"da": "relative da2-mini", "random": "random"}
KEYS = ("abs_rel", "rmse", "delta1", "silog_bts")


def mean_se(xs: list[float]) -> str:
    if not xs:
        return "-"
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return f"{m:.3f}"
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))
    return f"{m:.3f} +- {se:.3f}"


def main(work: Path) -> None:
    times: dict[str, float] = {}
    for line in (work / "times.tsv").read_text().splitlines():
        name, secs, _ = line.split("\t", 2)
        times[name] = float(secs)

    def metrics(name: str, test: str) -> dict[str, float] | None:
        p = work / "eval" / f"{name}-{test}" / "metrics.json"
        return json.loads(p.read_text())["metrics"] if p.exists() else None

    seeds = sorted({int(n.rsplit("-s", 1)[1]) for n in times if n.startswith("train-")})
    print(f"Seeds {seeds}; every number is a mean over seeds +- its standard error (n = {len(seeds)}).\n")
    for test, what in TESTS.items():
        print(f"**{test}** ({what})\n")
        print("| head | init | AbsRel | RMSE (m) | delta1 | SILog x100 |")
        print("|---|---|---|---|---|---|")
        for head, hname in HEADS.items():
            for init, iname in INITS.items():
                runs = [metrics(f"{head}-{init}-s{s}", test) for s in seeds]
                runs_ok = [r for r in runs if r is not None]
                cells = [mean_se([r[k] for r in runs_ok]) for k in KEYS]
                print(f"| {hname} | {iname} | " + " | ".join(cells) + " |")
        const = metrics("constant", test)
        if const is not None:
            print("| constant (median training depth) | - | " + " | ".join(f"{const[k]:.3f}" for k in KEYS) + " |")
        print()
        print("| head | DA - random, paired by seed | AbsRel | RMSE (m) | delta1 | SILog x100 |")
        print("|---|---|---|---|---|---|")
        for head, hname in HEADS.items():
            cells = []
            for k in KEYS:
                d = []
                for s in seeds:
                    a, b = metrics(f"{head}-da-s{s}", test), metrics(f"{head}-random-s{s}", test)
                    if a is not None and b is not None:
                        d.append(a[k] - b[k])
                cells.append(mean_se(d))
            print(f"| {hname} | | " + " | ".join(cells) + " |")
        print("\n| head | ZoeDepth - V2, paired by init and seed | AbsRel | RMSE (m) | delta1 | SILog x100 |")
        print("|---|---|---|---|---|---|")
        for init, iname in INITS.items():
            cells = []
            for k in KEYS:
                d = []
                for s in seeds:
                    a, b = metrics(f"zoedepth-{init}-s{s}", test), metrics(f"v2-{init}-s{s}", test)
                    if a is not None and b is not None:
                        d.append(a[k] - b[k])
                cells.append(mean_se(d))
            print(f"| {iname} init | | " + " | ".join(cells) + " |")
        print()
    print("| run | training time (min) |")
    print("|---|---|")
    for head in HEADS:
        for init in INITS:
            ts = [times[f"train-{head}-{init}-s{s}"] / 60 for s in seeds if f"train-{head}-{init}-s{s}" in times]
            if ts:
                print(f"| {head} {init} | {', '.join(f'{t:.1f}' for t in ts)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/metric_finetuning"))
