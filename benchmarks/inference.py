"""Inference speed, memory and accuracy per backend and precision, against transformers in the same run.

Runs ``depthany.bench.run_bench`` over the target matrix (ViT-S and ViT-B; 518x518 and 518x686; batch 1 and
4), writes the full JSON and a Markdown table, and prints each target of the speed issue as met / not met:

* exact path (fp32, within 1e-5 of PyTorch fp32): >= 2x transformers' default, model-only and end to end;
* fast path: >= 3.5x transformers' default, AbsRel vs fp32 < 1.5 %, share of the measured matmul peak;
* peak memory (fresh process per job) <= transformers' for the same job.

Usage (CPU, 2 threads, the machine of docs/performance.md)::

    python benchmarks/inference.py --threads 2
    python benchmarks/inference.py --quick                       # ViT-S, 518x686, batch 1, 3 rounds
    python benchmarks/inference.py --device cuda --precisions fp32,bf16,fp16 --batches 1,8

Times are medians of interleaved rounds; on a shared machine rerun on an idle one before quoting numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from depthany.bench import BenchConfig, run_bench
from depthany.bench.report import header, markdown_table, text_table

# Published GPU latencies (ms, batch 1, 518x518) for context on CUDA runs: V1 README.
PUBLISHED_MS = {"da2-small": {"V100": 12, "A100": 8}, "da2-base": {"V100": 13, "A100": 9},
                "da2-large": {"V100": 20, "A100": 13}}
EXACT_SPEEDUP, FAST_SPEEDUP, FAST_ABSREL = 2.0, 3.5, 0.015


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(h), int(w)) for h, w in (s.lower().split("x") for s in text.split(",")))


def targets(results: list[dict[str, Any]]) -> list[str]:
    """One line per (model, size, batch): the best exact and fast paths against the issue's targets."""
    lines = []
    groups: dict[tuple[str, int, int, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["model"], r["height"], r["width"], r["batch"]), []).append(r)
    for (model, h, w, b), rows in groups.items():
        ours = [r for r in rows if r["backend"] != "transformers" and "speedup_model" in r]
        if not ours:
            continue
        exact = [r for r in ours if r["precision"] == "fp32" and r["errors"]["max_rel"] <= 1e-5]
        fast = [r for r in ours if r["precision"] != "fp32" and r["errors"]["absrel"] < FAST_ABSREL]
        line = f"{model} {h}x{w} b{b}:"
        if exact:
            e = max(exact, key=lambda r: r["speedup_model"])
            ok = e["speedup_model"] >= EXACT_SPEEDUP and e.get("speedup_e2e", 0) >= EXACT_SPEEDUP
            line += (f" exact {e['backend']} x{e['speedup_model']:.2f} model / x{e.get('speedup_e2e', 0):.2f} e2e "
                     f"(max rel err {e['errors']['max_rel']:.1e}) {'MET' if ok else 'NOT MET'};")
        if fast:
            f = max(fast, key=lambda r: r["speedup_model"])
            ok = f["speedup_model"] >= FAST_SPEEDUP
            line += (f" fast {f['backend']} {f['precision']} x{f['speedup_model']:.2f} model / "
                     f"x{f.get('speedup_e2e', 0):.2f} e2e, AbsRel {100 * f['errors']['absrel']:.2f} %, "
                     f"{100 * f.get('peak_fraction', 0):.0f} % of the measured {f['precision']} matmul peak "
                     f"{'MET' if ok else 'NOT MET'};")
        mem = [r for r in ours if r.get("memory_ratio")]
        if mem:
            worst = max(mem, key=lambda r: r["memory_ratio"])
            line += f" memory worst {worst['backend']} {worst['precision']} x{worst['memory_ratio']:.2f} of transformers"
        lines.append(line)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="da2-small,da2-base")
    ap.add_argument("--sizes", default="518x518,518x686")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--backends", default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--quick", action="store_true", help="ViT-S, 518x686, batch 1, 3 rounds")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    if args.quick:
        args.models, args.sizes, args.batches, args.repeats = "da2-small", "518x686", "1", 3
    args.out.mkdir(parents=True, exist_ok=True)
    reports = []
    for model in args.models.split(","):
        cfg = BenchConfig(model=model, backends=tuple(args.backends.split(",")),
                          precisions=tuple(args.precisions.split(",")), sizes=_sizes(args.sizes),
                          batches=tuple(int(b) for b in args.batches.split(",")), device=args.device,
                          threads=args.threads, repeats=args.repeats, memory=not args.no_memory)
        report = run_bench(cfg, log=lambda s: print(s, flush=True))
        print(header(report))
        print(text_table(report), flush=True)
        reports.append(report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"inference-{platform.node() or 'host'}-{args.device.replace(':', '')}-{stamp}"
    (args.out / f"{name}.json").write_text(json.dumps(reports, indent=2, default=str) + "\n")
    md = "\n\n".join(header(r).replace("\n", "  \n") + "\n\n" + markdown_table(r) for r in reports)
    (args.out / f"{name}.md").write_text(md + "\n")
    print(f"\nwrote {args.out / name}.json and .md\n\ntargets (transformers default = 1.00x):")
    for r in reports:
        for line in targets(r["results"]):
            print("  " + line)
    if args.device.startswith("cuda"):
        print("published batch-1 latencies (V1 README, ms):", json.dumps(PUBLISHED_MS))


if __name__ == "__main__":
    main()
