"""Print the teacher-student experiment's results as a markdown table: ``summarize.py WORKDIR``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = [("teacher", "teacher (labeled source domain only)"),
        ("student-plain", "student, pseudo-labels, no perturbation"),
        ("student-perturb", "student + colour jitter / blur / CutMix"),
        ("student-align", "student + perturbations + feature alignment")]


def main(work: Path) -> None:
    times = {}
    for line in (work / "times.tsv").read_text().splitlines():
        name, secs, _ = line.split("\t", 2)
        times[name] = float(secs)

    def metric(model: str, test: str, key: str) -> str:
        p = work / "eval" / f"{model}-{test}" / "metrics.json"
        return f"{json.loads(p.read_text())['metrics'][key]:.4f}" if p.exists() else "-"

    print("| model | shifted AbsRel | shifted delta1 | source AbsRel | source delta1 | train time |")
    print("|---|---|---|---|---|---|")
    for key, label in ROWS:
        t = times.get(key)
        print(f"| {label} | {metric(key, 'target-test', 'abs_rel')} | {metric(key, 'target-test', 'delta1')} | "
              f"{metric(key, 'source-test', 'abs_rel')} | {metric(key, 'source-test', 'delta1')} | "
              f"{'-' if t is None else f'{t / 60:.1f} min'} |")
    print()
    print("| step | wall time |")
    print("|---|---|")
    for name, secs in times.items():
        print(f"| {name} | {secs:.0f} s |")
    print(f"| total | {sum(times.values()) / 60:.1f} min |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/teacher_student"))
