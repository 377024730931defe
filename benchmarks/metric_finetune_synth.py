"""Metric error of a metric fine-tuning run over its checkpoints, on held-out synthetic worlds.

For each run folder (made by ``depthany train`` with a metric recipe and ``train.snapshot_every``) this scores
the network *before training* (rebuilt from the run's ``recipe.yaml`` and seed exactly as the loop builds it:
random head, encoder from ``model.encoder_init``) and every ``snapshots/step_*.pt`` with
``depthany eval --dataset rgbd --protocol zoedepth_metric`` (metres, no alignment, flip averaging), and prints
a Markdown table of AbsRel, RMSE (m), delta1 and the scale-free SILog (BTS form, x100: a constant
prediction scores the spread of log depth, so only per-pixel structure lowers it). The full reports stay in
``--out``.

    .venv/bin/python benchmarks/metric_finetune_synth.py --test data/indoor-test \\
        --run runs/metric-mini --run runs/metric-mini-random --out eval_out/metric-demo

docs/metric_finetuning.md shows the commands that made the runs and the measured table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from depthany.train import load_recipe
from depthany.train.build import build_model, recipe_spec
from depthany.train.checkpoint import export_weights

METRICS = ("abs_rel", "rmse", "delta1", "silog_bts")


def initial_weights(run: Path, out: Path) -> Path:
    """The run's step-0 network (as ``depthany train`` builds it from the recipe and seed) as .safetensors."""
    recipe = load_recipe(run / "recipe.yaml")
    spec = recipe_spec(recipe)
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, spec)
    return export_weights(model.state_dict(), spec, out)


def score(weights: Path, test: Path, out: Path, device: str) -> dict[str, float]:
    """``depthany eval`` of one weights file; returns the mean metrics from its metrics.json."""
    cmd = [sys.executable, "-m", "depthany", "eval", "--weights", str(weights), "--dataset", "rgbd",
           "--root", str(test), "--protocol", "zoedepth_metric", "--device", device, "--out", str(out), "--quiet"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    report = json.loads((out / "metrics.json").read_text())
    return {k: float(report["metrics"][k]) for k in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=Path, required=True, help="held-out RGB-D folder (e.g. depthany synth output)")
    ap.add_argument("--run", type=Path, action="append", required=True, help="run folder; repeat for several")
    ap.add_argument("--out", type=Path, default=Path("eval_out/metric-finetune"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rows = []
    for run in args.run:
        total = load_recipe(run / "recipe.yaml").train.steps
        points = [(0, initial_weights(run, args.out / run.name / "step_00000000.safetensors"))]
        points += [(int(p.stem.split("_")[1]), p) for p in sorted((run / "snapshots").glob("step_*.pt"))]
        for step, weights in points:
            t0 = time.perf_counter()
            m = score(weights, args.test, args.out / run.name / f"step_{step:08d}", args.device)
            rows.append((run.name, step, total, m))
            print(f"{run.name} step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in m.items())
                  + f"  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print("| run | step | AbsRel | RMSE (m) | delta1 | SILog x100 |")
    print("|---|---|---|---|---|---|")
    for name, step, total, m in rows:
        print(f"| {name} | {step} ({100 * step / total:.0f}%) | {m['abs_rel']:.3f} | {m['rmse']:.3f} | "
              f"{m['delta1']:.3f} | {m['silog_bts']:.1f} |")


if __name__ == "__main__":
    main()
