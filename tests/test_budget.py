"""The network-input budget (depthany.budget): the rule, the Python API, ``depthany predict`` and ``depthany video``.

The rule is checked against hand-derived sizes and against invariants over a sweep of image sizes (ordinary
images keep the official size exactly; shrunk ones fit, keep their aspect ratio and are the largest that fit);
the predictor's output for a shrunk image is checked against an independent OpenCV + model + bilinear oracle.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import random_model, tiny_spec
from depthany import transforms
from depthany.budget import (
    DEFAULT_MAX_TOKENS,
    InputBudgetError,
    count_tokens,
    fit_network_size,
)
from depthany.cli.main import cli
from depthany.predictor import DepthPredictor
from depthany.weights import save_weights

cv2 = pytest.importorskip("cv2")


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: two oversubscribed threads on a busy 2-core box are far slower
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_predictor() -> DepthPredictor:
    spec = tiny_spec()
    return DepthPredictor(random_model(spec, seed=3), spec, "cpu", input_size=70)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    spec = tiny_spec()
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    return save_weights(random_model(spec, seed=3).state_dict(), spec, path, fmt="depthany")


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ the rule


def test_default_is_eight_times_518x518_and_keeps_panoramas_at_full_resolution() -> None:
    assert DEFAULT_MAX_TOKENS == 8 * 37 * 37 == 10_952
    # 4:1 and 8:1 panoramas at the official 518: 37 x 148 and 37 x 296 patches, both within the budget
    for h, w, net in [(500, 2000, (518, 2072)), (500, 4000, (518, 4144)), (4000, 500, (4144, 518))]:
        fit = fit_network_size(h, w)
        assert fit.network_size == fit.official_size == net and not fit.shrunk


# (H, W, input size, max tokens) -> network (h, w), derived by hand from the rule in depthany.budget:
# n_short = floor(sqrt(T / aspect)) patches, n_long = min(T // n_short, round(n_short * aspect), official);
# then no larger than the image: cap = max(round(L / 14), official short patches); if n_long > cap,
# n_long = cap and n_short = min(n_short, max(1, round(cap / aspect))).
SHRUNK = [
    # the strip and the column of issue 12: official 518 x 777,000; aspect 1500, sqrt(10952/1500) = 2.70 -> 2,
    # round(2 * 1500) = 3000 patches (42,000 px: 14x the strip's length); cap = max(round(3000/14), 37) = 214,
    # so n_long = 214 and n_short = max(1, round(214 / 1500)) = 1
    ((2, 3000, 518, DEFAULT_MAX_TOKENS), (14, 2996)),
    ((3000, 2, 518, DEFAULT_MAX_TOKENS), (2996, 14)),
    # a small 9:1 panorama: 34 x 306 patches as below, but cap = max(round(900/14), 37) = 64 < 306:
    # n_long = 64, n_short = min(34, round(64 / 9) = 7) = 7
    ((100, 900, 518, DEFAULT_MAX_TOKENS), (98, 896)),
    # 1080p at input size 1260: official 90 x 160 = 14,400 tokens; aspect 16/9: sqrt(10952 / 1.778) = 78.5 -> 78,
    # min(10952 // 78 = 140, round(138.7) = 139, 160) = 139 > cap = max(round(1920/14) = 137, 90): 137 x
    # min(78, round(137 / 1.778) = 77)
    ((1080, 1920, 1260, DEFAULT_MAX_TOKENS), (1078, 1918)),
    # a 9:1 panorama: official 37 x 333 = 12,321 tokens; sqrt(10952/9) = 34.88 -> 34; round(34 * 9) = 306
    # (cap = max(round(4500/14), 37) = 321: not binding)
    ((500, 4500, 518, DEFAULT_MAX_TOKENS), (476, 4284)),
    # test-time resolution 2058 on 480x640: official 147 x 196; sqrt(10952 / (4/3)) = 90.6 -> 90; 120 (T//90 = 121);
    # the input size asks for more than the image: cap = max(round(640/14), 147) = 147, not binding
    ((480, 640, 2058, DEFAULT_MAX_TOKENS), (1260, 1680)),
    # a small budget: 480x640 at 518 is 37 x 49 = 1813 tokens; sqrt(1000 / (4/3)) = 27.4 -> 27; round(36) = 36
    ((480, 640, 518, 1000), (378, 504)),
    # square: sqrt(1000) = 31.6 -> 31; the long side is capped by T // 31 = 32 and the aspect: 31
    ((600, 600, 518, 500), (308, 308)),
]


@pytest.mark.parametrize("hwsb, expected", SHRUNK)
def test_shrunk_sizes_pinned(hwsb: tuple[int, int, int, int], expected: tuple[int, int]) -> None:
    h, w, s, budget = hwsb
    fit = fit_network_size(h, w, s, 14, budget)
    assert fit.network_size == expected and fit.shrunk and fit.tokens <= budget
    assert fit.official_size == transforms.network_size(h, w, s)
    meta = fit.as_meta()
    assert meta["shrunk"] is True and meta["network_size"] == list(expected) and meta["max_tokens"] == budget


def test_too_thin_is_a_named_error_and_bad_budgets_are_refused() -> None:
    with pytest.raises(InputBudgetError, match=r"20000x1 image .*cannot be fitted into 10,952 .*--max-tokens"):
        fit_network_size(1, 20000)
    with pytest.raises(InputBudgetError, match="1x20000 image"):
        fit_network_size(20000, 1)
    # fits when raised: 1 x 20000 patches keep the aspect; capped at round(20000 / 14) = 1429 patches (20,006 px)
    assert fit_network_size(1, 20000, max_tokens=20000).network_size == (14, 20006)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_tokens must be an integer >= 1"):
            fit_network_size(100, 100, max_tokens=bad)  # type: ignore[arg-type]


def test_rule_invariants_over_a_sweep_of_image_sizes() -> None:
    """Ordinary images keep the official size exactly; others fit, keep the aspect ratio within whole-patch
    rounding, are never longer than the image (or the input size) in whole patches, and are the largest such
    aspect-keeping size that fits (one more patch on the short side would not, or the long side is capped)."""
    rng = np.random.default_rng(0)
    sizes = [(int(h), int(w)) for h, w in np.exp(rng.uniform(0, np.log(20000), (400, 2)))]
    sizes += [(480, 640), (1080, 1920), (3000, 4000), (9000, 12000), (1, 1), (2, 3000), (3000, 2)]
    for budget in (DEFAULT_MAX_TOKENS, 1369, 300):
        for s in (518, 266, 1022):
            for h, w in sizes:
                official = transforms.network_size(h, w, s)
                try:
                    fit = fit_network_size(h, w, s, 14, budget)
                except InputBudgetError:
                    assert max(h, w) / min(h, w) > budget  # only images thinner than budget:1 are refused
                    continue
                nh, nw = fit.network_size
                assert nh % 14 == 0 and nw % 14 == 0 and nh >= 14 and nw >= 14
                if count_tokens(*official) <= budget:
                    assert fit.network_size == official, (h, w, s, budget)
                    continue
                assert fit.tokens <= budget and nh <= official[0] and nw <= official[1]
                short, long_ = sorted((nh // 14, nw // 14))
                aspect = max(h, w) / min(h, w)
                cap = max(round(max(h, w) / 14), min(official) // 14)
                assert long_ <= cap, (h, w, s, budget)
                assert (nh >= nw) == (h >= w) or nh == nw
                if long_ == cap:  # capped: the short side follows the cap (at least one patch)
                    assert short == 1 or abs(short - cap / aspect) <= 0.5 + 1e-9 or long_ == budget // short
                else:
                    assert abs(long_ - short * aspect) <= 0.5 + 1e-9 or long_ == budget // short
                    assert (short + 1) ** 2 * aspect > budget or short == min(official) // 14


# ------------------------------------------------------------------------------------------------ Python API


def test_budget_never_changes_an_ordinary_images_output(tiny_predictor: DepthPredictor) -> None:
    unbounded = tiny_predictor.with_settings(max_tokens=10**9)
    default = tiny_predictor.with_settings(max_tokens=DEFAULT_MAX_TOKENS)
    for h, w in [(48, 64), (64, 48), (30, 120), (97, 131), (240, 320)]:
        rgb = noise(h, w, seed=h + w)
        a, b = default.predict(rgb), unbounded.predict(rgb)
        assert a.network_size == b.network_size == transforms.network_size(h, w, 70)
        assert np.array_equal(a.values, b.values) and a.meta["input_budget"]["shrunk"] is False
    # the comparison can fail: a budget below the image's official tokens changes the output
    small = tiny_predictor.with_settings(max_tokens=20)
    rgb = noise(48, 64)
    assert not np.array_equal(small.predict(rgb).values, unbounded.predict(rgb).values)


def official_like(model: torch.nn.Module, rgb: np.ndarray, size: tuple[int, int], corners: bool) -> np.ndarray:
    """Independent oracle: the official steps (float64 /255, cv2 INTER_CUBIC, ImageNet normalisation, model,
    bilinear back to the image size) at a given network size."""
    img = cv2.resize(rgb / 255.0, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    img = (img - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None]
    with torch.inference_mode():
        out = model(x)
    return torch.nn.functional.interpolate(out[:, None], rgb.shape[:2], mode="bilinear",
                                           align_corners=corners)[0, 0].numpy()


def test_strip_runs_at_the_default_budget(tiny_predictor: DepthPredictor) -> None:
    """The input of issue 12 at the default budget and the official 518: 214 tokens (no longer than the strip
    itself), output at its size (the column is the same computation transposed; see the tests below)."""
    p = tiny_predictor.with_settings(input_size=518)
    for h, w, net in [(2, 3000, (14, 2996))]:
        rgb = noise(h, w, seed=h)
        r = p.predict(rgb)
        assert r.values.shape == (h, w) and r.values.dtype == np.float32 and np.isfinite(r.values).all()
        assert r.network_size == net
        assert r.meta["input_budget"] == {"max_tokens": DEFAULT_MAX_TOKENS, "tokens": 214, "shrunk": True,
                                          "official_size": list(transforms.network_size(h, w, 518)),
                                          "official_tokens": count_tokens(*transforms.network_size(h, w, 518)),
                                          "network_size": list(net)}


def test_shrunk_output_matches_an_independent_oracle(tiny_predictor: DepthPredictor) -> None:
    p = tiny_predictor.with_settings(max_tokens=30)
    rgb = noise(90, 200, seed=7)
    r = p.predict(rgb)
    # official 70x154 (5 x 11 = 55 tokens); aspect 2.22: sqrt(30 / 2.22) = 3.7 -> 3 x round(6.7) = 7 patches
    assert r.network_size == (42, 98)
    ref = official_like(p.model, rgb, (42, 98), p.spec.preprocess.output_align_corners)
    np.testing.assert_allclose(r.values, ref, rtol=1e-5, atol=1e-6)


def test_too_thin_image_raises_a_named_error_and_batches_carry_on(tmp_path: Path,
                                                                  tiny_predictor: DepthPredictor) -> None:
    p = tiny_predictor.with_settings(max_tokens=2000)
    thin = tmp_path / "line.png"
    Image.fromarray(noise(1, 5000)).save(thin)
    with pytest.raises(InputBudgetError, match="^" + re.escape(f"{thin}: a 5000x1 image")):
        p.predict(str(thin))
    out = dict(p.iter_predict([noise(40, 50), str(thin), noise(2, 3000), noise(3000, 2)]))
    assert isinstance(out[1], InputBudgetError)
    assert out[0].values.shape == (40, 50) and out[2].values.shape == (2, 3000)  # type: ignore[union-attr]
    assert out[2].meta["input_budget"]["shrunk"] and out[2].network_size == (14, 2996)  # type: ignore[union-attr]
    assert out[3].values.shape == (3000, 2) and out[3].network_size == (2996, 14)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="max_tokens must be an integer"):
        DepthPredictor(p.model, p.spec, max_tokens=0)


# ------------------------------------------------------------------------------------------------ predict


def test_predict_cli_strip_and_column_carry_on_with_a_named_failure(tmp_path: Path, weights: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name, arr in [("strip", noise(2, 3000)), ("column", noise(3000, 2)), ("line", noise(1, 5000)),
                      ("photo", noise(30, 40))]:
        Image.fromarray(arr).save(src / f"{name}.png")
    r = CliRunner().invoke(cli, ["predict", str(src), "--weights", str(weights), "--out", str(tmp_path / "out"),
                                 "--format", "npy,color,png16", "--backend", "torch", "--input-size", "70",
                                 "--max-tokens", "2000"], catch_exceptions=False)
    assert r.exit_code == 1, r.stderr
    assert "done: 3 ok, 1 failed" in r.stderr
    assert f"FAILED {src / 'line.png'}: a 5000x1 image (aspect ratio 5,000:1) cannot be fitted" in r.stderr
    assert f"note: {src / 'strip.png'}: 3000x2 image" in r.stderr and "ran at 2996x14" in r.stderr
    assert f"note: {src / 'column.png'}: 2x3000 image" in r.stderr and "budget 2,000 tokens" in r.stderr
    assert np.load(tmp_path / "out" / "strip.npy").shape == (2, 3000)
    import json

    side = json.loads((tmp_path / "out" / "strip_depth16.json").read_text())  # the file says it ran smaller
    assert side["network_size"] == [14, 2996] and side["input_budget"]["official_size"] == [70, 105000]
    assert "input_budget" not in json.loads((tmp_path / "out" / "photo_depth16.json").read_text())
    assert np.load(tmp_path / "out" / "column.npy").shape == (3000, 2)
    assert Image.open(tmp_path / "out" / "column_color.png").size == (2, 3000)
    assert np.load(tmp_path / "out" / "photo.npy").shape == (30, 40)
    assert not (tmp_path / "out" / "line.npy").exists()


def test_every_verb_has_the_max_tokens_option() -> None:
    from depthany.cli.main import VERBS

    for verb in ("predict", "video", "serve", "demo", "eval", "pseudo-label", "bench"):
        r = CliRunner().invoke(cli, [verb, "--help"])
        if r.exit_code != 0 and "is missing" in r.output:
            continue
        assert verb in VERBS and "--max-tokens" in r.output, verb
        assert "10952" in r.output, verb


# ------------------------------------------------------------------------------------------------ video


def test_video_strip_and_column_frames(tmp_path: Path, weights: Path) -> None:
    pytest.importorskip("av")
    from depthany.video import VideoEncoder

    for h, w in [(2, 3000), (3000, 2)]:
        video = tmp_path / f"thin_{h}x{w}.mp4"
        enc = VideoEncoder(video, h, w, Fraction(1, 30), Fraction(30), 18, "ultrafast")
        for i in range(2):
            enc.write(noise(h, w, seed=i), i)
        enc.close()
        raw = tmp_path / f"thin_{h}x{w}.npz"
        r = CliRunner().invoke(cli, ["video", str(video), "-o", str(tmp_path / f"out_{h}x{w}.mp4"), "--weights",
                                     str(weights), "--input-size", "70", "--max-tokens", "2000", "--raw", "npz",
                                     "--raw-out", str(raw), "--quiet", "--layout", "depth"], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        assert f"{w}x{h} image: the official" in r.stderr and "ran at" in r.stderr
        with np.load(raw) as z:
            frames = [z[f"frame_{i:06d}"] for i in range(2)]
        assert all(f.shape == (h, w) and np.isfinite(f).all() for f in frames)


def test_video_of_too_thin_frames_is_a_named_error(tmp_path: Path, weights: Path) -> None:
    pytest.importorskip("av")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.fromarray(noise(1, 5000, seed=i)).save(frames / f"f{i:03d}.png")
    r = CliRunner().invoke(cli, ["video", str(frames), "-o", str(tmp_path / "o.mp4"), "--weights", str(weights),
                                 "--input-size", "70", "--max-tokens", "2000", "--quiet"])
    assert r.exit_code == 1
    assert f"{frames}: frames of a 5000x1 image (aspect ratio 5,000:1) cannot be fitted" in r.stderr


def test_peak_memory_stays_bounded_for_a_large_image_resize() -> None:
    """The exact float64 resize of a 6-megapixel image goes band by band: the official whole-image float64
    conversion (144 MB; 154 MB traced peak for the whole-image path) is never made."""
    import tracemalloc

    rgb = noise(2000, 3000)
    tracemalloc.start()
    x = transforms.preprocess(rgb, tiny_spec().preprocess, 518)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert x.shape == (1, 3, 518, 784)
    assert peak < 100e6, peak / 1e6  # measured 88 MB: a 25 MB band, (2000, 784) float64 rows, the output
    assert math.isclose(rgb.nbytes / 1e6, 18.0)


def test_output_encoders_work_in_bands_with_the_same_numbers(monkeypatch) -> None:
    """The colour map and png16 quantisation run in bands of rows on large maps; forced here on a small map
    with NaN, inf and a constant region, the results equal the one-band ones (tests/test_io_* check those
    against the official formulas)."""
    from depthany.io import colormap, depth

    rng = np.random.default_rng(0)
    v = rng.normal(5, 2, (123, 77)).astype(np.float32)
    v[3, :10], v[50, 5], v[60:70, 20:30] = np.nan, np.inf, 4.0
    whole = colormap.colorize(v, "turbo"), depth.png16_encode(v), depth.png16_encode(v, 0.01, 1.0)
    monkeypatch.setattr(colormap, "ROW_BAND_PIXELS", 97)
    monkeypatch.setattr(depth, "_BAND_PIXELS", 97)
    banded = colormap.colorize(v, "turbo"), depth.png16_encode(v), depth.png16_encode(v, 0.01, 1.0)
    assert np.array_equal(whole[0], banded[0])
    for (a_codes, a_meta), (b_codes, b_meta) in zip(whole[1:], banded[1:]):
        assert np.array_equal(a_codes, b_codes) and a_meta == b_meta
    assert whole[2][1]["clipped_pixels"] > 0  # values below the offset clip: the count is summed over bands


def test_video_frames_over_the_pixel_limit_are_refused_by_name(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from depthany.video import VideoEncoder, VideoReadError, open_source

    video = tmp_path / "v.mp4"
    with VideoEncoder(video, 32, 48, Fraction(1, 30), Fraction(30), 18, "ultrafast") as enc:
        enc.write(noise(32, 48), 0)
    with pytest.raises(VideoReadError, match=r"v\.mp4: 48x32 frames = 1,536 pixels exceed the limit of 1,000"):
        open_source(video, max_pixels=1000)
    with open_source(video) as src:  # the default limit is the image one (178,956,970 pixels)
        assert [f.rgb.shape for f in src] == [(32, 48, 3)]


def test_eval_source_and_demo_report_a_shrunk_input(tmp_path: Path, weights: Path, caplog) -> None:
    import logging

    from depthany.eval.sources import ModelSource
    from depthany.serve.demo import DemoBackend, ModelChoice

    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=70, max_tokens=2000)
    source = ModelSource(predictor)
    assert source.describe()["max_tokens"] == 2000
    with caplog.at_level(logging.WARNING, logger="depthany.eval.sources"):
        values = source.predict("strip-1", lambda: noise(2, 3000), (2, 3000))
    assert values.shape == (2, 3000) and "strip-1: 3000x2 image: the official" in caplog.text

    Image.fromarray(noise(2, 3000)).save(tmp_path / "strip.png")
    demo = DemoBackend([ModelChoice("tiny", weights=weights)], workdir=tmp_path / "demo", max_tokens=2000)
    out = demo.run(tmp_path / "strip.png", "tiny", input_size=70)
    assert out.result.values.shape == (2, 3000) and "network input shrunk to the budget" in out.info
    with pytest.raises(InputBudgetError, match="cannot be fitted"):
        Image.fromarray(noise(1, 5000)).save(tmp_path / "line.png")
        demo.run(tmp_path / "line.png", "tiny", input_size=70)
