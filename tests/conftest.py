"""Shared fixtures. Tests are offline, CPU-only and use tiny random models unless marked slow."""

from __future__ import annotations

import os
import tempfile

# Everything a test run writes outside its tmp_path folders goes under one temporary folder, made by the first
# process (the xdist controller, or pytest without xdist), inherited by the xdist workers and removed at the end:
# - cache/: depthany's cache (ONNX exports, OpenVINO IRs, int8 models), never the user's ~/.cache/depthany; shared
#   by the workers, so an export made by one is reused by the other (the cache writes are atomic renames);
# - hf-<pid>/: each process's own offline Hugging Face cache.
_OWN_ROOT = "DEPTHANY_TEST_ROOT" not in os.environ
if _OWN_ROOT:
    os.environ["DEPTHANY_TEST_ROOT"] = tempfile.mkdtemp(prefix="depthany-test-")
TEST_ROOT = os.environ["DEPTHANY_TEST_ROOT"]
# Must happen before huggingface_hub is imported anywhere: it reads these at import time.
_HF_HOME = os.path.join(TEST_ROOT, f"hf-{os.getpid()}")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["DEPTHANY_CACHE_DIR"] = os.path.join(TEST_ROOT, "cache")

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from depthany import zoo  # noqa: E402
from depthany.models import DepthAnything  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# A tiny encoder that exercises exactly the same code as the real sizes.
TINY_ENCODER = zoo.EncoderSpec("test-tiny", embed_dim=32, depth=6, num_heads=2)


def tiny_spec(head: str = "relative", family: str = "v2", max_depth: float | None = None) -> zoo.ModelSpec:
    """A ModelSpec with a 6-block, 32-wide encoder; V1 taps the last four blocks, V2 spreads them."""
    layers = (2, 3, 4, 5) if family == "v1" else (0, 2, 3, 5)
    arch = zoo.Arch(TINY_ENCODER, layers, 16, (8, 16, 32, 32), head, max_depth, family)  # type: ignore[arg-type]
    pre = zoo.V1_PRE if family == "v1" else zoo.V2_PRE
    return zoo.ModelSpec(f"test-tiny-{family}-{head}", arch, pre, (), "Apache-2.0")


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give ``model`` the random weights of :func:`weights_helpers.random_state` (in place), so its output varies
    with the image and spans a real range (about [0, 2] for a relative head), not a near-constant map."""
    from weights_helpers import random_value

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(random_value(name, tuple(p.shape), g))
    return model


def random_model(spec: zoo.ModelSpec, seed: int = 0) -> DepthAnything:
    return randomize(DepthAnything(spec.arch), seed).eval()  # type: ignore[return-value]


def lively_model(spec: zoo.ModelSpec, seed: int = 0) -> DepthAnything:
    """Random weights whose output varies: unit-scale norms and LayerScales, a strong positional embedding.

    (Small random weights everywhere give a near-constant map, where neither the layer taps nor the positional
    interpolation rule change the output by more than the tolerance, so a test could not fail.)
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DepthAnything(spec.arch)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name and name.endswith("weight"):
                    p.normal_(1.0, 0.2)
                elif name.endswith("gamma"):
                    p.normal_(0.5, 0.2)
                elif name.endswith(("pos_embed", "cls_token")):
                    p.normal_(0.0, 1.0)
                elif name.endswith("bias"):
                    p.normal_(0.0, 0.1)
            model.depth_head.scratch.output_conv2[2].bias.fill_(1.0)  # keep relative outputs above the ReLU
    return model.eval()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OWN_ROOT:  # only the process that made the folder removes it
        import shutil

        shutil.rmtree(TEST_ROOT, ignore_errors=True)


@pytest.fixture
def tiny() -> zoo.ModelSpec:
    return tiny_spec()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def smooth_image() -> np.ndarray:
    """(120, 160, 3) uint8 RGB with smooth gradients and some structure."""
    h, w = 120, 160
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 100 * np.sin(x / 13.0) * np.cos(y / 17.0)
    g = 255 * x / w
    b = 255 * (1 - y / h)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


@pytest.fixture
def hf_cache() -> Path:
    """The (temporary, offline) Hugging Face cache folder tests may populate."""
    p = Path(os.environ["HF_HUB_CACHE"])
    p.mkdir(parents=True, exist_ok=True)
    return p


def put_in_hf_cache(cache: Path, repo_id: str, files: dict[str, Path], repo_type: str = "model",
                    commit: str = "0" * 40) -> Path:
    """Create the real huggingface_hub cache layout (refs/main + snapshots/<commit>/...) for offline tests."""
    import shutil

    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    for name, src in files.items():
        dst = snap / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return snap


__all__ = ["TINY_ENCODER", "dataclasses", "lively_model", "put_in_hf_cache", "random_model", "randomize", "tiny_spec"]
