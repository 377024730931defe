"""One set of model options for every verb: the click commands are introspected, so a verb that grows its own
``--device`` (or drifts to another default) fails here, and the README's table must say the same defaults."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from depthany.budget import DEFAULT_MAX_TOKENS
from depthany.cli.main import VERBS, cli
from depthany.cli.options import DEFAULTS, SharedOption

ROOT = Path(__file__).resolve().parents[1]

# verb -> the shared options it takes (a verb that loses one, or gains an unshared copy, fails)
EXPECTED: dict[str, set[str]] = {
    "predict": {"model", "weights", "device", "precision", "input_size", "cmap", "max_tokens"},
    "video": {"model", "weights", "device", "precision", "input_size", "cmap", "max_tokens"},
    "serve": {"model", "weights", "device", "precision", "input_size", "cmap", "max_tokens"},
    "demo": {"weights", "device", "precision", "cmap", "max_tokens"},
    "eval": {"model", "weights", "device", "precision", "input_size", "max_tokens"},
    "pseudo-label": {"model", "device", "precision", "input_size", "max_tokens"},
    "controlnet-data": {"model", "device", "precision", "input_size", "max_tokens"},
    "generate": {"model", "device", "precision", "input_size"},
    "bench": {"device", "max_tokens"},
    "segment": {"device", "max_tokens"},
    "multiview": {"model", "weights", "device", "input_size"},  # fp32 only; its token bound spans all views
    "calibrate fit": {"model", "weights", "device", "precision", "input_size", "max_tokens"},
    "export": {"weights"},
    "quantize": {"weights", "input_size", "max_tokens"},
    "convert": {"model"},
}
# flags that name one of the shared concepts; any option spelled so must be the shared one, except:
INT8_VERBS = {"predict", "video", "serve"}  # --precision int8: the model `depthany quantize` made (bench: its own)
CONCEPT_FLAGS = {"--model", "--weights", "--device", "--precision", "--input-size", "--cmap", "--max-tokens",
                 "--teacher", "--depth-model", "--depth-input-size"}
OWN = {  # bench measures an architecture (random weights by default) at a list of precisions: other meanings
    ("bench", "--model"), ("bench", "--weights"), ("bench", "--precision"),
    ("segment", "--weights"),  # a segmentation weights file (required), not a depth model's
}


def commands() -> dict[str, click.Command]:
    """Every verb's click command; groups contribute their sub-verbs (``calibrate fit``)."""
    ctx = click.Context(cli)
    out: dict[str, click.Command] = {}
    for verb in VERBS:
        cmd = cli.get_command(ctx, verb)
        if cmd is None:  # an optional dependency of the verb is not installed
            continue
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                out[f"{verb} {sub}"] = cmd.get_command(ctx, sub)  # type: ignore[assignment]
        else:
            out[verb] = cmd
    return out


COMMANDS = commands()


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULTS == {"model": None, "weights": None, "device": "auto", "precision": "fp32", "input_size": None,
                        "cmap": "auto", "max_tokens": DEFAULT_MAX_TOKENS}


@pytest.mark.parametrize("verb", sorted(EXPECTED))
def test_every_verb_uses_the_shared_options_with_one_default(verb: str) -> None:
    if verb not in COMMANDS:
        pytest.skip(f"{verb} is not installed here")
    cmd = COMMANDS[verb]
    shared = {p.shared: p for p in cmd.params if isinstance(p, SharedOption)}
    assert set(shared) == EXPECTED[verb], verb
    ctx = click.Context(cmd)
    for name, p in shared.items():
        assert p.default == DEFAULTS[name], (verb, name, p.default)
        if DEFAULTS[name] is not None and not p.multiple:
            record = p.get_help_record(ctx)
            assert record is not None and f"[default: {DEFAULTS[name]}" in record[1], (verb, name, record)
    for p in cmd.params:
        flags = set(getattr(p, "opts", ())) & CONCEPT_FLAGS
        for flag in flags:
            assert isinstance(p, SharedOption) or (verb, flag) in OWN, f"`{verb} {flag}` is not the shared option"


def test_shared_options_have_one_type_each() -> None:
    """Same parameter type (and range / choices) for a concept wherever it appears."""
    seen: dict[str, str] = {}
    for verb, cmd in COMMANDS.items():
        for p in cmd.params:
            if isinstance(p, SharedOption):
                choices = getattr(p.type, "choices", "")
                if p.shared == "precision":  # the verbs that run a quantised model also take int8, and only they
                    assert ("int8" in choices) == (verb in INT8_VERBS), verb
                    choices = tuple(c for c in choices if c != "int8")
                t = f"{type(p.type).__name__} {choices} {getattr(p.type, 'min', '')}"
                assert seen.setdefault(p.shared, t) == t, (verb, p.shared, t, seen[p.shared])
    assert set(seen) == set(DEFAULTS)


def test_every_model_running_verb_is_listed() -> None:
    """A new verb that loads a model must be added to EXPECTED (and so use the shared options)."""
    for verb, cmd in COMMANDS.items():
        flags = {f for p in cmd.params for f in getattr(p, "opts", ())}
        if flags & (CONCEPT_FLAGS - {"--precision"}):  # `train` has none: its recipe holds them
            assert verb in EXPECTED, verb


def test_cmap_values_are_checked_like_the_library() -> None:
    from click.testing import CliRunner

    r = CliRunner().invoke(cli, ["predict", "x.png", "--out", "o", "--cmap", "jet"])
    assert r.exit_code == 2 and "unknown colour map 'jet'" in r.output
    p = next(p for p in COMMANDS["video"].params if getattr(p, "shared", None) == "cmap")
    assert p.type_cast_value(click.Context(COMMANDS["video"]), "SPECTRAL_R") == "Spectral_r"
    assert p.type_cast_value(click.Context(COMMANDS["video"]), "Auto") == "auto"


def test_readme_table_states_the_shared_defaults() -> None:
    """The README's table of shared options gives each default exactly as the code does."""
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `--([a-z-]+)[^`]*` \| ([^|]+?) \|", readme, flags=re.M))
    for name, default in DEFAULTS.items():
        flag = name.replace("_", "-")
        assert flag in rows, f"README has no row for --{flag}"
        shown = rows[flag].strip().strip("`")
        if default is None:
            assert shown.startswith("none") or shown.startswith("the model"), (flag, shown)
        else:
            assert shown.replace(",", "") == str(default), (flag, shown)


def test_serve_and_bench_defaults_are_the_library_configs() -> None:
    """`serve`'s limits come from ServeConfig and `bench`'s sizes/precisions from BenchConfig: written once
    (the 40 MP default upload size appears once in the source)."""
    from depthany.bench.config import BenchConfig
    from depthany.serve.config import MiB, ServeConfig

    defaults = {p.name: p.default for p in COMMANDS["serve"].params} if "serve" in COMMANDS else None
    cfg = ServeConfig()
    if defaults is not None:
        assert defaults["max_pixels"] == cfg.max_pixels == 40_000_000
        assert defaults["max_upload_mb"] * MiB == cfg.max_upload_bytes
        assert (defaults["max_batch"], defaults["max_queue"], defaults["shutdown_grace"]) == (
            cfg.max_batch, cfg.max_queue, cfg.shutdown_grace_s)
    src = ROOT / "src" / "depthany"
    hits = [p for p in src.rglob("*.py") if re.search(r"40_?000_?000", p.read_text())]
    assert hits == [src / "serve" / "config.py"], hits
    bench = {p.name: p.default for p in COMMANDS["bench"].params}
    b = BenchConfig()
    assert bench["size"] == ",".join(f"{h}x{w}" for h, w in b.sizes) and bench["model"] == b.model
    assert bench["precision"] == ",".join(b.precisions) and bench["repeats"] == b.repeats
