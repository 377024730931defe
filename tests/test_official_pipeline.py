"""``depthany predict --format npy`` against an independent re-implementation of the official inference code.

The oracle (tests/official_oracle.py) follows the official scripts step by step with OpenCV and numpy:

* V2 ``DepthAnythingV2.infer_image``: ``cv2.imread`` -> BGR2RGB -> ``/ 255.0`` -> Resize(lower bound, multiple
  of 14, INTER_CUBIC) -> NormalizeImage -> PrepareForNet -> forward -> ``F.interpolate(bilinear,
  align_corners=True)`` to the image size;
* V1 ``run.py``: the same preprocessing at a fixed 518, then ``F.interpolate(bilinear, align_corners=False)``.

Only the network itself is shared (a tiny random DepthAnything; its equivalence to the official modules is
tested in test_models.py and test_parity_nonsquare.py). The CLI loads the same weights from a depthany
.safetensors file and must agree within 1e-6 of the output range (the requirement is 1e-4; on this machine the
two are bit-identical, while resizing with F.interpolate instead of the cv2-exact resize gave up to 7e-4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from conftest import random_model, tiny_spec
from depthany.cli.main import cli
from depthany.weights import save_weights
from official_oracle import official_tensor, official_v1_run_py, official_v2_infer_image

cv2 = pytest.importorskip("cv2")

def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 90 * np.sin(x / 9) * np.cos(y / 7), 255 * x / w, 255 * (1 - y / h)], -1)
    img[h // 4:h // 2, w // 3:2 * w // 3] = (240, 30, 40)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / (ref.max() - ref.min()))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, Path]]:
    out = {}
    folder = tmp_path_factory.mktemp("official")
    for family in ("v2", "v1"):
        spec = tiny_spec(family=family)
        net = random_model(spec, seed=11 if family == "v2" else 12)
        out[family] = (net, save_weights(net.state_dict(), spec, folder / f"{family}.safetensors"))
    return out


def run_cli(images: list[Path], weights: Path, out: Path, *extra: str) -> None:
    args = ["predict", *map(str, images), "--weights", str(weights), "--out", str(out), "--format", "npy",
            "--device", "cpu", "--backend", "torch", *extra]  # the reference engine; others are within 1e-5
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize("input_size, shapes", [
    (518, {"land": (45, 61), "tiny": (20, 30)}),
    (280, {"port": (64, 40)}),
])
def test_v2_infer_image(tmp_path: Path, models, input_size: int, shapes: dict[str, tuple[int, int]]) -> None:
    net, weights = models["v2"]
    paths = []
    for name, (h, w) in shapes.items():
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(photo(h, w, h * w)).save(paths[-1])
    extra = [] if input_size == 518 else ["--input-size", str(input_size)]
    run_cli(paths, weights, tmp_path / "out", *extra)
    for p in paths:
        ref = official_v2_infer_image(net, cv2.imread(str(p)), input_size)
        got = np.load(tmp_path / "out" / f"{p.stem}.npy")
        assert got.shape == ref.shape and got.dtype == np.float32
        assert relative_error(got, ref) <= 1e-6, p.name


def test_v1_run_py(tmp_path: Path, models) -> None:
    net, weights = models["v1"]
    jpg = tmp_path / "cam.jpg"
    Image.fromarray(photo(50, 37, 3)).save(jpg, quality=92)  # JPEG: cv2 and Pillow decode it identically
    png = tmp_path / "wide.png"
    Image.fromarray(photo(31, 70, 4)).save(png)
    run_cli([jpg, png], weights, tmp_path / "out")
    for p in (jpg, png):
        ref = official_v1_run_py(net, cv2.imread(str(p)))
        got = np.load(tmp_path / "out" / f"{p.stem}.npy")
        assert got.shape == ref.shape
        assert relative_error(got, ref) <= 1e-6, p.name


def test_the_corner_rule_matters(tmp_path: Path, models) -> None:
    """The check can fail: V2 output resized the V1 way is measurably different at these sizes."""
    net, _ = models["v2"]
    raw = cv2.cvtColor(photo(45, 61, 1), cv2.COLOR_RGB2BGR)
    v2 = official_v2_infer_image(net, raw, 140)
    with torch.no_grad():
        depth = net(official_tensor(raw, 140))
    wrong = F.interpolate(depth[:, None], (45, 61), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert relative_error(wrong, v2) > 1e-3
