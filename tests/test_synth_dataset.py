"""Synthetic worlds, datasets: the folder reads back with RGBDFolder, worker count does not change a byte,
interrupted runs resume without touching finished samples, splits are stable, and the CLI is thin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from depthany.cli.synth import parse_size, synth
from depthany.data.rgbd import RGBDFolder, png16_scale_for
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate, is_val, iter_samples, render_sample, stem_for

CFG = WorldConfig(width=48, height=40, kind="mixed")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("depth_format", ["npy", "png16"])
def test_folder_reads_back_to_the_rendered_arrays(tmp_path: Path, depth_format: str) -> None:
    report = generate(tmp_path, 4, CFG, seed=9, depth_format=depth_format)
    assert (report.rendered, report.skipped) == (4, 0)
    folder = RGBDFolder(tmp_path)
    assert folder.info["depth_kind"] == "planar_z" and folder.info["seed"] == 9
    assert [folder[i].stem for i in range(len(folder))] == [stem_for(i) for i in range(4)]
    scale = png16_scale_for(CFG.depth_limit)
    for i in range(4):
        view, scene = render_sample(9, i, CFG)
        s = folder[i]
        np.testing.assert_array_equal(s.rgb, view.rgb)
        np.testing.assert_array_equal(s.valid, view.valid)
        assert s.intrinsics == pytest.approx(view.intrinsics, rel=1e-12)
        assert s.meta["scene"] == json.loads(json.dumps(scene.to_dict()))
        expected = np.where(view.valid, view.depth, 0)
        if depth_format == "npy":
            np.testing.assert_array_equal(s.depth, expected)
        else:  # uint16 steps of 1/scale metres, rounded to nearest
            np.testing.assert_allclose(s.depth, expected, atol=0.5 / scale + 1e-6)
        assert (s.depth[~s.valid] == 0).all()


def test_worker_count_does_not_change_a_byte(tmp_path: Path) -> None:
    generate(tmp_path / "one", 5, CFG, seed=2, workers=1, val_fraction=0.4)
    generate(tmp_path / "two", 5, CFG, seed=2, workers=2, val_fraction=0.4)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) > 20
    assert one == two


def test_resume_renders_only_missing_samples(tmp_path: Path) -> None:
    generate(tmp_path, 4, CFG, seed=1)
    before = _files(tmp_path)
    finished = tmp_path / "rgb" / f"{stem_for(0)}.png"
    mtime = finished.stat().st_mtime_ns
    # Simulate a crash in the middle of sample 2: its meta (written last) is cut short, its image torn.
    (tmp_path / "meta" / f"{stem_for(2)}.json").write_text('{"intrinsics": [1, 2')
    (tmp_path / "rgb" / f"{stem_for(2)}.png").write_bytes(b"\x89PNG torn")
    (tmp_path / "meta" / f"{stem_for(3)}.json").unlink()
    report = generate(tmp_path, 4, CFG, seed=1)
    assert (report.rendered, report.skipped) == (2, 2)
    assert _files(tmp_path) == before
    assert finished.stat().st_mtime_ns == mtime  # finished samples are not rewritten
    extended = generate(tmp_path, 6, CFG, seed=1)
    assert (extended.rendered, extended.skipped) == (2, 4)
    assert json.loads((tmp_path / "dataset.json").read_text())["count"] == 6


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    generate(tmp_path, 1, CFG, seed=1)
    with pytest.raises(ValueError, match="seed: folder has 1, this run 2"):
        generate(tmp_path, 1, CFG, seed=2)
    with pytest.raises(ValueError, match="textures"):
        generate(tmp_path, 1, WorldConfig(48, 40, "mixed", ("checker",)), seed=1)


def test_splits_are_exact_and_stable_under_extension(tmp_path: Path) -> None:
    assert [i for i in range(20) if is_val(i, 0.25)] == [3, 7, 11, 15, 19]
    assert sum(is_val(i, 0.1) for i in range(1000)) == 100
    generate(tmp_path, 8, CFG, val_fraction=0.25)
    val = (tmp_path / "splits" / "val.txt").read_text().split()
    train = (tmp_path / "splits" / "train.txt").read_text().split()
    assert val == [stem_for(3), stem_for(7)] and len(train) == 6
    assert len(RGBDFolder(tmp_path, split="val")) == 2
    assert json.loads((tmp_path / "meta" / f"{stem_for(3)}.json").read_text())["split"] == "val"


def test_generate_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        generate(tmp_path, -1)
    with pytest.raises(ValueError, match="workers"):
        generate(tmp_path, 1, workers=0)
    with pytest.raises(ValueError, match="depth_format"):
        generate(tmp_path, 1, depth_format="exr")
    with pytest.raises(ValueError, match="val_fraction"):
        generate(tmp_path, 1, val_fraction=1.0)


def test_cli_writes_a_folder_and_names_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ds"
    res = runner.invoke(synth, ["--out", str(out), "--count", "2", "--size", "32x40", "--kind", "indoor",
                                "--textures", "checker,stripes", "--depth-format", "npy", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 rendered" in res.output
    info = json.loads((out / "dataset.json").read_text())
    assert (info["height"], info["width"], info["textures"]) == (32, 40, ["checker", "stripes"])
    assert RGBDFolder(out)[0].rgb.shape == (32, 40, 3)
    bad = runner.invoke(synth, ["--out", str(out), "--count", "1", "--size", "big"])
    assert bad.exit_code != 0 and "--size" in bad.output
    bad = runner.invoke(synth, ["--out", str(out), "--count", "1", "--textures", "wood"])
    assert bad.exit_code != 0 and "--textures" in bad.output and "wood" in bad.output
    clash = runner.invoke(synth, ["--out", str(out), "--count", "3", "--size", "32x40", "--quiet"])
    assert clash.exit_code != 0 and "different settings" in clash.output
    assert parse_size("256") == (256, 256) and parse_size("256x320") == (256, 320)


def test_on_the_fly_samples_equal_the_written_folder(tmp_path: Path) -> None:
    generate(tmp_path, 3, CFG, seed=4, depth_format="npy", val_fraction=0.5)
    folder = RGBDFolder(tmp_path)
    for i, live in enumerate(iter_samples(range(3), CFG, seed=4, val_fraction=0.5)):
        disk = folder[i]
        assert live.stem == disk.stem
        np.testing.assert_array_equal(live.rgb, disk.rgb)
        np.testing.assert_array_equal(live.depth, disk.depth)
        np.testing.assert_array_equal(live.valid, disk.valid)
        assert live.intrinsics == pytest.approx(disk.intrinsics)
        assert json.loads(json.dumps(live.meta)) == {k: v for k, v in disk.meta.items() if k != "intrinsics"}
