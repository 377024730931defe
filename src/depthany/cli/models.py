"""``depthany models``: list the model zoo (sizes, output kind, licence, whether the weights are on disk)."""

from __future__ import annotations

import json

import click


def _short_licence(text: str) -> str:
    return text.split(" (")[0]


def _params(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with full licences and aliases.")
def models(as_json: bool) -> None:
    """List every zoo model: name, family, encoder, parameters, output, licence, cached, repo.

    CACHED is "yes" when the weights are already in the Hugging Face cache (or bundled), "no" when they would
    be downloaded on first use, "not available" for a bundled file missing from this installation and
    "not released" when no weights were ever published.
    """
    from ..weights.catalog import model_rows

    rows = model_rows()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    header = ("NAME", "FAMILY", "ENCODER", "PARAMS", "OUTPUT", "LICENCE", "CACHED", "REPO")
    table = [header] + [(r.name, r.family, r.encoder, _params(r.params), r.output, _short_licence(r.licence),
                         r.cached, r.repo) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
