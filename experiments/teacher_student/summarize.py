"""Print the teacher-student experiment's results as markdown tables: ``summarize.py WORKDIR``."""

from __future__ import annotations

import json
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

    for shift, what in SHIFTS.items():
        if not (work / "eval" / f"teacher-target-test-{shift}").exists():
            continue
        rows = [("teacher", "teacher (labeled source domain only)", "teacher"),
                (f"student-plain-{shift}", "student, pseudo-labels, no perturbation", f"student-plain-{shift}"),
                (f"student-perturb-{shift}", "student + colour jitter / blur / CutMix", f"student-perturb-{shift}"),
                (f"student-align-{shift}", "student + perturbations + feature alignment", f"student-align-{shift}")]
        print(f"**Shift `{shift}`** ({what}); source = indoor rooms with checker textures.\n")
        print("| model | shifted AbsRel | shifted delta1 | source AbsRel | source delta1 | training time |")
        print("|---|---|---|---|---|---|")
        for model, label, step in rows:
            t = times.get(step)
            print(f"| {label} | {metric(model, f'target-test-{shift}', 'abs_rel')} | "
                  f"{metric(model, f'target-test-{shift}', 'delta1')} | {metric(model, 'source-test', 'abs_rel')} | "
                  f"{metric(model, 'source-test', 'delta1')} | {'-' if t is None else f'{t / 60:.1f} min'} |")
        for b in ("constant", "ground-plane"):
            test = f"target-test-{shift}"
            print(f"| baseline `{b}` | {metric(f'baseline-{b}', test, 'abs_rel')} | "
                  f"{metric(f'baseline-{b}', test, 'delta1')} | | | |")
        print()
    print("| step | wall time |")
    print("|---|---|")
    for name, secs in times.items():
        print(f"| {name} | {secs:.0f} s |")
    print(f"| sum of the steps | {sum(times.values()) / 60:.1f} min |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/teacher_student"))
