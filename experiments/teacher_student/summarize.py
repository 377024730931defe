"""Print the teacher-student experiment's results as markdown tables: ``summarize.py WORKDIR``."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

SHIFTS = {"textures": "indoor, other texture families", "outdoor": "outdoor scenes, all texture families"}


def main(work: Path) -> None:
    times: dict[str, float] = {}
    for line in (work / "times.tsv").read_text().splitlines():
        name, secs, _ = line.split("\t", 2)
        times[name] = float(secs)

    def metric(model: str, test: str, key: str) -> str:
        p = work / "eval" / f"{model}-{test}" / "metrics.json"
        return f"{json.loads(p.read_text())['metrics'][key]:.4f}" if p.exists() else "-"

    def paired(model: str, test: str, key: str) -> str:
        """Mean per-image difference to the teacher on the same test images, +- its standard error."""
        def per_image(m: str) -> dict[str, float]:
            p = work / "eval" / f"{m}-{test}" / "per_image.csv"
            if not p.exists():
                return {}
            return {r["id"]: float(r[key]) for r in csv.DictReader(p.open()) if r["status"] == "ok"}
        a, b = per_image(model), per_image("teacher")
        d = [a[k] - b[k] for k in a.keys() & b.keys()]
        if model == "teacher" or len(d) < 2:
            return ""
        mean = sum(d) / len(d)
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
        return f"{mean:+.4f} +- {se:.4f}"

    for shift, what in SHIFTS.items():
        if not (work / "eval" / f"teacher-target-test-{shift}").exists():
            continue
        rows = [("teacher", "teacher (labeled source domain only)", "teacher"),
                (f"student-plain-{shift}", "student, pseudo-labels, no perturbation", f"student-plain-{shift}"),
                (f"student-perturb-{shift}", "student + colour jitter / blur / CutMix", f"student-perturb-{shift}"),
                (f"student-align-{shift}", "student + perturbations + feature alignment", f"student-align-{shift}")]
        print(f"**Shift `{shift}`** ({what}); source = indoor rooms with checker textures.\n")
        print("| model | shifted AbsRel | vs teacher | shifted delta1 | vs teacher | source AbsRel | source delta1 "
              "| training time |")
        print("|---|---|---|---|---|---|---|---|")
        test = f"target-test-{shift}"
        for model, label, step in rows:
            t = times.get(step)
            print(f"| {label} | {metric(model, test, 'abs_rel')} | {paired(model, test, 'abs_rel')} | "
                  f"{metric(model, test, 'delta1')} | {paired(model, test, 'delta1')} | "
                  f"{metric(model, 'source-test', 'abs_rel')} | {metric(model, 'source-test', 'delta1')} | "
                  f"{'-' if t is None else f'{t / 60:.1f} min'} |")
        for b in ("constant", "ground-plane"):
            print(f"| baseline `{b}` | {metric(f'baseline-{b}', test, 'abs_rel')} | | "
                  f"{metric(f'baseline-{b}', test, 'delta1')} | | | | |")
        print()
    print("| step | wall time |")
    print("|---|---|")
    for name, secs in times.items():
        print(f"| {name} | {secs:.0f} s |")
    print(f"| sum of the steps | {sum(times.values()) / 60:.1f} min |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/teacher_student"))
