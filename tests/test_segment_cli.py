"""`depthany segment` through the CLI: the three output formats against independent computations, predict's input
handling and per-file errors, inference options reaching the model, set-up errors, and the work bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from depthany import zoo
from depthany.cli.main import cli
from depthany.models import DepthAnything
from depthany.seg import infer
from depthany.seg.infer import fit_view, segment, segment_with_notes
from depthany.seg.segmenter import Segmenter
from depthany.seg.spec import InferenceCfg
from depthany.seg.weights import save_seg_weights
from depthany.weights import save_weights
from seg_helpers import CLASSES, ENC, lively

WHOLE = InferenceCfg(mode="whole", resize=None)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_seg_weights(lively("linear", 4, inference=WHOLE), tmp_path_factory.mktemp("m") / "seg.safetensors")


def photo(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    """A smooth picture (blobs of colour), so that a random network's labels vary over regions."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 5, 3)).astype(np.uint8)
    rgb = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return rgb


def run(*args: object) -> object:
    return CliRunner().invoke(cli, ["segment", *map(str, args)])


def test_formats_are_labels_palette_and_overlay(tmp_path: Path, model_file: Path) -> None:
    rgbs = {"a": photo(tmp_path / "in" / "a.png", 42, 56, 0), "sub/b": photo(tmp_path / "in" / "sub" / "b.jpg", 30, 45, 1)}
    res = run(tmp_path / "in", "--weights", model_file, "--out", tmp_path / "o", "--format", "labels,color,overlay",
              "--alpha", "0.3")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    seg = Segmenter.from_weights(model_file)
    colours = np.array(CLASSES.colors, np.float64)
    for key in rgbs:
        rgb = np.asarray(Image.open(tmp_path / "in" / (key + (".png" if key == "a" else ".jpg"))).convert("RGB"))
        expected = seg.segment(rgb).labels
        assert len(np.unique(expected)) > 1  # a picture that tells the formats apart
        labels = Image.open(tmp_path / "o" / f"{key}.png")
        assert labels.mode == "L"
        np.testing.assert_array_equal(np.asarray(labels), expected)
        color = Image.open(tmp_path / "o" / f"{key}_color.png")
        assert color.mode == "P"
        np.testing.assert_array_equal(np.asarray(color), expected)  # indices are the labels ...
        palette = np.array(color.getpalette()[: 3 * len(CLASSES)]).reshape(-1, 3)
        np.testing.assert_array_equal(palette, colours)  # ... the palette the class colours
        over = np.asarray(Image.open(tmp_path / "o" / f"{key}_overlay.png"))
        np.testing.assert_array_equal(over, np.round(0.7 * rgb + 0.3 * colours[expected]).astype(np.uint8))
    again = run(tmp_path / "in", "--weights", model_file, "--out", tmp_path / "o", "--format", "labels,color,overlay",
                "--skip-existing")
    assert again.exit_code == 0 and "0 ok, 0 failed, 2 skipped" in again.stderr  # type: ignore[attr-defined]


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path: Path, model_file: Path) -> None:
    photo(tmp_path / "in" / "good.png", 28, 28, 2)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    (tmp_path / "in" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    res = run(tmp_path / "in", tmp_path / "missing.png", "--weights", model_file, "--out", tmp_path / "o")
    assert res.exit_code == 1  # type: ignore[attr-defined]
    err = res.stderr  # type: ignore[attr-defined]
    assert "1 ok, 3 failed" in err and "empty.jpg" in err and "junk.png" in err and "missing.png" in err
    assert (tmp_path / "o" / "good.png").exists() and (tmp_path / "o" / "good_color.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "labels,depth"], "unknown format depth"),
    (["--resize", "big"], "LONGxSHORT"),
    (["--ratios", "1,x"], "comma-separated scale ratios"),
    (["--mode", "slide", "--crop", "896", "--max-tokens", "1000"], "896x896 sliding window (crop) needs 4,096 tokens"),
])
def test_usage_and_setup_errors_exit_2(tmp_path: Path, model_file: Path, args: list[str], message: str) -> None:
    photo(tmp_path / "x.png", 20, 20, 3)
    res = run(tmp_path / "x.png", "--weights", model_file, "--out", tmp_path / "o", *args)
    assert res.exit_code == 2 and message in res.output  # type: ignore[attr-defined]
    assert not (tmp_path / "o" / "x.png").exists()


def test_weights_that_are_not_a_segmentation_model_exit_2(tmp_path: Path) -> None:
    photo(tmp_path / "x.png", 20, 20, 3)
    res = run(tmp_path / "x.png", "--weights", tmp_path / "nope.safetensors", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "nope.safetensors: no such segmentation weights file" in res.output  # type: ignore[attr-defined]
    arch = zoo.Arch(ENC, (0, 1, 2, 3), 16, (8, 16, 32, 32))
    depth = save_weights(DepthAnything(arch).state_dict(), zoo.ModelSpec("d", arch, zoo.V2_PRE, (), "x"),
                         tmp_path / "depth.safetensors")
    res = run(tmp_path / "x.png", "--weights", depth, "--out", tmp_path / "o")
    assert res.exit_code == 2 and "not a depthany segmentation model" in res.output  # type: ignore[attr-defined]


def test_inference_options_reach_the_model(tmp_path: Path) -> None:
    model = lively("linear", 6, inference=InferenceCfg(mode="slide", crop=28, stride=14, resize=(112, 56)))
    weights = save_seg_weights(model, tmp_path / "m.safetensors")
    rgb = photo(tmp_path / "x.png", 44, 70, 7)

    def labels(*args: str) -> np.ndarray:
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        res = run(tmp_path / "x.png", "--weights", weights, "--out", out, "--format", "labels", *args)
        assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
        return np.asarray(Image.open(out / "x.png"))

    cases = {  # CLI options -> the settings they stand for
        (): model.spec.inference,  # the file's own (a recipe's seg.test)
        ("--mode", "slide", "--crop", "42", "--stride", "20", "--resize", "none"):
            InferenceCfg(mode="slide", crop=42, stride=20, resize=None),
        ("--mode", "whole", "--resize", "none"): WHOLE,
        ("--mode", "whole", "--resize", "none", "--ratios", "0.75,1.25", "--flip"):
            InferenceCfg(mode="whole", resize=None, ratios=(0.75, 1.25), flip=True),
    }
    seen = []
    for args, cfg in cases.items():
        got = labels(*args)
        np.testing.assert_array_equal(got, segment(model, rgb, cfg))
        seen.append(got)
    assert all(not np.array_equal(seen[0], s) for s in seen[1:])  # each setting changed the labels


def test_work_per_image_is_bounded(tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = photo(tmp_path / "wide.png", 56, 140, 8)  # 4 x 10 = 40 tokens at full size
    res = run(tmp_path / "wide.png", "--weights", model_file, "--out", tmp_path / "o", "--format", "labels",
              "--max-tokens", "12")
    assert res.exit_code == 0 and "ran at" in res.stderr  # type: ignore[attr-defined]
    got = np.asarray(Image.open(tmp_path / "o" / "wide.png"))
    model = Segmenter.from_weights(model_file).model
    labels, notes = segment_with_notes(model, rgb, WHOLE, max_tokens=12)
    np.testing.assert_array_equal(got, labels)
    assert got.shape == (56, 140) and notes.shrunk
    (h, w), = [v["ran_at"] for v in notes.views]
    assert np.ceil(h / 14) * np.ceil(w / 14) <= 12 and abs(w / h - 2.5) < 0.35  # aspect kept, within budget

    # the view and score-map limits shrink a view too; a view within every bound is left alone
    assert fit_view((1000, 1000), 19, InferenceCfg(mode="slide"), None) == (1000, 1000)
    monkeypatch.setattr(infer, "MAX_VIEW_PIXELS", 250_000)
    assert fit_view((1000, 1000), 19, InferenceCfg(mode="slide"), None) == (500, 500)
    monkeypatch.setattr(infer, "MAX_SCORE_ELEMENTS", 19 * 100 * 100)
    assert fit_view((1000, 1000), 19, InferenceCfg(mode="slide"), None) == (100, 100)


@pytest.mark.parametrize("cfg", [WHOLE, InferenceCfg(mode="whole", resize=None, ratios=(0.5, 1.0), flip=True)])
def test_labels_in_bands_equal_the_whole_score_map(cfg: InferenceCfg, monkeypatch: pytest.MonkeyPatch) -> None:
    model = lively("linear", 9)
    rgb = np.asarray(Image.fromarray(np.random.default_rng(3).integers(0, 255, (6, 7, 3)).astype(np.uint8))
                     .resize((131, 97), Image.BILINEAR))
    full = infer.segment_scores(model, rgb, cfg)
    monkeypatch.setattr(infer, "BAND_ELEMENTS", 4 * 131 * 9)  # bands of 9 rows
    banded = segment(model, rgb, cfg)
    top2 = full.topk(2, dim=0).values
    decided = (top2[0] - top2[1]) > 1e-5  # pixels whose winner is not a float-rounding tie
    assert decided.float().mean() > 0.99
    np.testing.assert_array_equal(banded[decided.numpy()], full.argmax(0).to(torch.uint8).numpy()[decided.numpy()])
