"""Human-readable tables for a benchmark report (text for the terminal, Markdown for the docs)."""

from __future__ import annotations

from typing import Any

COLUMNS = ("model", "size", "batch", "backend", "precision", "model ms", "x base", "e2e ms", "x base e2e",
           "img/s", "GFLOP/s", "% peak", "peak MB", "mem x base", "max rel err", "AbsRel")


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def rows(report: dict[str, Any]) -> list[list[str]]:
    """One list of cell strings per result, in :data:`COLUMNS` order."""
    out = []
    for r in report["results"]:
        mem = r.get("memory", {})
        out.append([
            r["model"], f"{r['height']}x{r['width']}", str(r["batch"]), r["backend"], r["precision"],
            _fmt(r["model_ms"]["median_ms"], ".0f"), _fmt(r.get("speedup_model"), ".2f"),
            _fmt(r.get("e2e_ms", {}).get("median_ms"), ".0f"), _fmt(r.get("speedup_e2e"), ".2f"),
            _fmt(r.get("throughput_img_s"), ".2f"), _fmt(r.get("gflop_s"), ".0f"),
            _fmt(100 * r["peak_fraction"] if "peak_fraction" in r else None, ".0f"),
            _fmt(mem.get("peak_rss_mb"), ".0f") if "error" not in mem else "err",
            _fmt(r.get("memory_ratio"), ".2f"),
            _fmt(r["errors"]["max_rel"], ".1e"), _fmt(100 * r["errors"]["absrel"], ".3f") + "%",
        ])
    return out


def header(report: dict[str, Any]) -> str:
    """Machine, versions and measured peaks in a few lines."""
    m, v = report["machine"], report["versions"]
    cpu = m["cpu"]
    lines = [f"machine: {cpu['model']}, {cpu['logical_cores']} logical cores, {m.get('memory_gb')} GB, "
             f"flags {' '.join(cpu['flags'])}; torch threads {m['torch_threads']}"]
    if "gpu" in m:
        lines.append(f"gpu: {m['gpu']['name']} ({m['gpu']['memory_gb']} GB)")
    lines.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    for p, peak in report.get("peaks", {}).items():
        in_run = [r["peak_gflop_s_in_run"] for r in report["results"]
                  if r["precision"] == p and "peak_gflop_s_in_run" in r]
        during = f" (median during the runs {min(in_run):.0f}-{max(in_run):.0f})" if in_run else ""
        lines.append(f"measured {p} matmul peak: {peak['gflops']:.0f} GFLOP/s at the start{during}; "
                     "'% peak' uses the median during the same rounds")
    cfg = report["config"]
    lines.append(f"weights: {cfg['weights']}; {cfg['repeats']} timed rounds after {cfg['warmup']} warm-up, "
                 "paths interleaved; times are medians; 'x base' = transformers (SDPA, fp32) median / ours")
    if "int8" in report:
        q = report["int8"]
        gate = q.get("gate") or {}
        measured = (f"AbsRel {100 * gate['absrel']:.3f} %, delta1 {gate['delta1']:.4f} on {gate['images']} held-out "
                    "images" if gate.get("absrel") is not None else "no gate report")
        lines.append(f"int8 model: {q['int8_model']} ({q['source']}; gate against fp32: {measured})")
    for s in report.get("skipped", []):
        lines.append(f"skipped {s['backend']} {s['precision']}: {s['reason']}")
    return "\n".join(lines)


def text_table(report: dict[str, Any]) -> str:
    """Aligned plain-text table."""
    body = rows(report)
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(COLUMNS)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*COLUMNS), *(fmt.format(*r) for r in body)])


def markdown_table(report: dict[str, Any]) -> str:
    """GitHub-flavoured Markdown table (for docs/performance.md)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(report)]
    return "\n".join(lines)
