"""The README's commands work as written.

Every ``depthany ...`` line in the README's bash blocks is checked:

* commands that need nothing but this repository (the bundled model, ``examples/``, files made by earlier
  README commands) are **run** in a scratch copy of the repository and must succeed;
* commands that need a download (an official zoo model) or your own data (``photo.jpg``, ``data/nyu``, ...),
  or that serve forever (``serve``, ``demo``), are **parsed**: the verb must exist and every flag must be one
  of its options, so a renamed flag breaks this test.

The Python block is executed too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from depthany import zoo
from depthany.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NEEDS_DOWNLOAD = tuple(n for n in zoo.list_models() if n != zoo.BUNDLED_NAME)
USER_DATA = ("photo.jpg", "photos/", "room.jpg", "walk.mp4", "data/", "known.csv", "lidar.png", "preds/",
             "depth_anything_v2_vits.pth", "da2-small.safetensors", "shards/", "labeled/", "labels/")
LONG_RUNNING = ("serve", "demo")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """``depthany`` command lines of the bash blocks (comments stripped, continuations joined)."""
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("depthany "):
                out.append(line)
    return out


def _runnable(cmd: str) -> bool:
    words = shlex.split(cmd)
    if words[1] in LONG_RUNNING or any(w in NEEDS_DOWNLOAD for w in words):
        return False
    return not any(w.startswith(USER_DATA) or w in USER_DATA for w in words)


COMMANDS = _commands()
RUNNABLE = [c for c in COMMANDS if _runnable(c)]
PARSED = [c for c in COMMANDS if not _runnable(c)]


def test_readme_has_both_kinds_of_commands() -> None:
    assert len(RUNNABLE) >= 6 and len(PARSED) >= 6
    assert "make demo" in README and "make test" in README


def _options(command) -> set[str]:  # noqa: ANN001 - a click command
    opts = set()
    for p in command.params:
        opts.update(getattr(p, "opts", ()))
        opts.update(getattr(p, "secondary_opts", ()))
    return opts


@pytest.mark.parametrize("cmd", PARSED)
def test_readme_command_parses(cmd: str) -> None:
    import click

    words = shlex.split(cmd)[1:]
    ctx = click.Context(cli)
    command = cli.get_command(ctx, words[0])
    assert command is not None, f"unknown verb in README: {cmd}"
    if isinstance(command, click.Group):  # e.g. `calibrate fit`
        sub = command.get_command(ctx, words[1])
        assert sub is not None, f"unknown sub-verb in README: {cmd}"
        command, words = sub, words[1:]
    known = _options(command) | {"--help", "-h"}
    for w in words[1:]:
        if w.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", w):
            assert w.split("=")[0] in known, f"README uses {w!r}, which `{words[0]}` does not have: {cmd}"


def test_readme_runnable_commands_and_python_block(tmp_path: Path) -> None:
    """Run, in order, every README command that needs nothing outside the repository, then the Python block."""
    if not (ROOT / "src/depthany/assets/da2-mini.safetensors").exists():
        pytest.skip("the bundled model is not in this checkout")
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("examples", "configs"):
        shutil.copytree(ROOT / name, work / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("depthany")
    for cmd in RUNNABLE:
        args = [str(exe), *shlex.split(cmd)[1:]]
        res = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"README command failed: {cmd}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    assert (work / "out/depth/park_trees.npy").exists()
    assert (work / "out/examples_depth.mp4").stat().st_size > 0
    assert (work / "runs/ci/final.safetensors").exists()
    assert (work / "out/seg/park_trees_overlay.png").exists() and (work / "out/eval-seg/metrics.json").exists()
    for block in _blocks("python"):
        res = subprocess.run([sys.executable, "-c", block], cwd=work, env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, f"README Python block failed:\n{block}\n{res.stderr[-2000:]}"
