"""Metric fine-tuning: the V2 metric recipes, relative -> metric encoder init, SILog with range masking, and
training from the evaluation readers' training splits (NYUv2 .mat, KITTI Eigen train list)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image
from torch import Tensor, nn

from conftest import randomize
from depthany import zoo
from depthany.eval.crops import crop_box, kb_crop_offset
from depthany.eval.datasets import open_dataset
from depthany.runtime.dist import DistEnv
from depthany.train import RecipeError, load_recipe, train
from depthany.train.augment import nearest_source_indices, sample_crop
from depthany.train.build import build_model, recipe_spec
from depthany.train.config import DataCfg, LossCfg, SourceCfg
from depthany.train.data import SOURCE_KINDS, build_sources
from depthany.train.eval_sources import EvalSplitSource, KITTITrainSource, NYUv2TrainSource, sample_arrays
from depthany.train.objectives import MetricObjective
from depthany.train.optim import lr_factor
from depthany.train.progress import read_metrics
from depthany.train.v2_metric_sources import HypersimSource, VKITTI2Source, hypersim_distance_to_planar
from depthany.train.validate import Validator
from depthany.weights import load_model, save_weights
from train_worlds import write_planes

CONFIGS = Path(__file__).parent.parent / "configs"
CI = CONFIGS / "ci-tiny.yaml"
PRE = zoo.get_spec("da2-mini").preprocess


def quiet(_: str) -> None:
    pass


# ------------------------------------------------------------------------------------------------ recipes


@pytest.mark.parametrize("name,max_depth", [("metric-indoor.yaml", 20.0), ("metric-outdoor.yaml", 80.0)])
def test_metric_recipes_follow_the_official_dist_train(name: str, max_depth: float) -> None:
    r = load_recipe(CONFIGS / name)
    spec = recipe_spec(r)
    assert spec.arch == zoo.make_arch("vitl", "v2", "metric", max_depth)  # = the released V2-Large metric arch
    assert spec.arch == zoo.get_spec(f"da2-metric-{'indoor' if max_depth == 20 else 'outdoor'}-large").arch
    assert r.model.encoder_init == "da2-large" and r.model.init is None  # encoder from the relative model
    o = r.optim
    assert (o.lr, o.decoder_lr_mult, o.weight_decay, o.betas) == (5e-6, 10.0, 0.01, (0.9, 0.999))
    assert (o.schedule, o.poly_power, o.warmup_steps) == ("poly", 0.9, 0)
    assert (r.loss.objective, r.loss.silog_lambda, r.loss.min_depth) == ("metric", 0.5, 0.001)
    assert (r.data.crop_size, r.data.scale, r.data.hflip) == (518, (1.0, 1.0), 0.5)
    assert r.train.batch_size == 32  # 8 GPUs x 4
    # poly decay lr * (1 - it / total) ** 0.9 as train.py
    total = r.train.steps
    assert lr_factor(0, total, o) == 1.0
    assert lr_factor(total // 2, total, o) == pytest.approx((1 - (total // 2) / total) ** 0.9, rel=1e-12)


def test_mini_synth_recipe_is_a_small_metric_recipe() -> None:
    r = load_recipe(CONFIGS / "metric-mini-synth.yaml")
    spec = recipe_spec(r)
    assert spec.arch == zoo.make_arch("vitt", "v2", "metric", 20.0)  # da2-mini with a 20 m metric head
    assert r.model.encoder_init is not None and r.loss.objective == "metric"
    assert r.data.scale == (1.0, 1.0) and r.optim.schedule == "poly"
    assert spec.preprocess.input_size == r.data.crop_size  # trains and evaluates at the same scale
    assert "encoder initialised from" in spec.description


# -------------------------------------------------------------------------------------- relative -> metric


def _ci(*sets: str):  # noqa: ANN202
    return load_recipe(CI, ["data.sources.0.path=unused", *sets])


@pytest.mark.parametrize("fmt,filename", [("depthany", "rel.safetensors"), ("official", "rel.pth")])
def test_relative_to_metric_init_loads_exactly_the_encoder(tmp_path: Path, fmt: str, filename: str) -> None:
    rel = _ci()
    rel_spec = recipe_spec(rel)
    donor = randomize(build_model(rel, rel_spec), seed=7)  # weights that differ from any fresh init
    path = save_weights(donor.state_dict(), rel_spec, tmp_path / filename, fmt=fmt)

    metric = ("model.head=metric", "model.max_depth=20")
    torch.manual_seed(0)
    fresh = build_model(_ci(*metric), recipe_spec(_ci(*metric)))
    torch.manual_seed(0)
    got = build_model(_ci(*metric, f"model.encoder_init={path}"), recipe_spec(_ci(*metric)))
    sd, ref, init = got.state_dict(), donor.state_dict(), fresh.state_dict()
    enc = [k for k in sd if k.startswith("pretrained.")]
    head = [k for k in sd if not k.startswith("pretrained.")]
    assert enc and head and len(enc) + len(head) == len(sd)
    for k in enc:  # bitwise the relative model's encoder
        assert sd[k].dtype == ref[k].dtype and torch.equal(sd[k], ref[k]), k
    for k in head:  # the head is exactly what the seed gives without any init: untouched
        assert torch.equal(sd[k], init[k]), k
    assert not torch.equal(sd["depth_head.scratch.output_conv2.0.weight"],
                           ref["depth_head.scratch.output_conv2.0.weight"])
    # a metric head outputs metres in (0, max_depth) from the first step
    with torch.no_grad():
        out = got.eval()(torch.randn(1, 3, 42, 42))
    assert out.shape == (1, 42, 42) and 0 < out.min() and out.max() < 20


def test_full_init_from_a_relative_model_is_refused_for_a_metric_recipe(tmp_path: Path) -> None:
    rel = _ci()
    path = save_weights(build_model(rel, recipe_spec(rel)).state_dict(), recipe_spec(rel),
                        tmp_path / "rel.safetensors")
    metric = _ci("model.head=metric", "model.max_depth=20", f"model.init={path}")
    with pytest.raises(RecipeError, match=r"model.init: .*relative-head model.*metric head.*model.encoder_init"):
        build_model(metric, recipe_spec(metric))
    wide = _ci("model.head=metric", "model.max_depth=20", "model.custom.embed_dim=64",
               f"model.encoder_init={path}")
    with pytest.raises(RecipeError, match=r"model.encoder_init: .*do not fit"):
        build_model(wide, recipe_spec(wide))


# ----------------------------------------------------------------------------------------------- SILog


class Fixed(nn.Module):
    """A 'network' that returns a fixed (B, H, W) prediction, so the objective's value can be computed by hand."""

    def __init__(self, pred: Tensor) -> None:
        super().__init__()
        self.pred = nn.Parameter(pred.clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.pred


def _objective(max_depth: float = 20.0, lam: float = 0.5) -> MetricObjective:
    return MetricObjective(LossCfg(silog_lambda=lam, min_depth=0.001), max_depth)


def test_silog_of_a_constant_ratio_is_abs_log_over_sqrt2() -> None:
    gt = torch.tensor([[[0.5, 1.0, 2.0, 7.5], [3.0, 4.0, 11.0, 19.0]]], dtype=torch.float64)
    batch = {"image": torch.zeros(1, 3, 2, 4), "depth": gt, "valid": torch.ones_like(gt, dtype=torch.bool)}
    for c in (0.5, 1.3, 4.0):
        got = _objective()(Fixed(gt * c), batch)["silog"].item()
        # d = -ln c everywhere: sqrt(d^2 - 0.5 d^2) = |ln c| / sqrt(2)
        assert got == pytest.approx(abs(math.log(c)) / math.sqrt(2), rel=1e-6)  # the objective runs in fp32
    assert _objective(lam=1.0)(Fixed(gt * 3.0), batch)["silog"].item() < 1e-5  # lambda 1: fully scale-invariant


def test_silog_counts_exactly_the_pixels_in_min_max_range() -> None:
    gt = torch.tensor([[[0.0005, 0.001, 0.5, 2.0], [5.0, 20.0, 20.5, 60.0]]], dtype=torch.float64)
    pred = torch.tensor([[[9.0, 0.002, 0.4, 2.5], [4.0, 10.0, 1.0, 0.01]]], dtype=torch.float64)
    valid = torch.ones_like(gt, dtype=torch.bool)
    valid[0, 1, 0] = False  # 5.0 is in range but flagged invalid
    batch = {"image": torch.zeros(1, 3, 2, 4), "depth": gt, "valid": valid}
    got = _objective(max_depth=20.0)(Fixed(pred), batch)["silog"].item()
    # the official rule: valid & min_depth <= gt <= max_depth, both ends inclusive
    keep = np.array([0.001, 0.5, 2.0, 20.0]), np.array([0.002, 0.4, 2.5, 10.0])
    d = np.log(keep[0]) - np.log(keep[1])
    assert got == pytest.approx(math.sqrt(np.mean(d**2) - 0.5 * np.mean(d) ** 2), rel=1e-6)
    # with max_depth 80 the 20.5 and 60 m pixels count as well
    wide = _objective(max_depth=80.0)(Fixed(pred), batch)["silog"].item()
    d2 = np.log([0.001, 0.5, 2.0, 20.0, 20.5, 60.0]) - np.log([0.002, 0.4, 2.5, 10.0, 1.0, 0.01])
    assert wide == pytest.approx(math.sqrt(np.mean(d2**2) - 0.5 * np.mean(d2) ** 2), rel=1e-6)


# --------------------------------------------------------------------------- eval readers' training splits


def _png16(path: Path, depth_m: np.ndarray, scale: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(depth_m * scale).astype(np.uint16)).save(path)


def _png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


@pytest.fixture
def nyu(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A labeled .mat in MATLAB v7.3 layout (HDF5, 512-byte header userblock, axes reversed: (N, C, W, H)) with
    56 x 42 frames, and a v5 splits.mat with 1-based column vectors: train = 1, 3, 5; test = 2, 4."""
    rng = np.random.default_rng(3)
    n, w, h = 5, 56, 42
    images = rng.integers(0, 256, (n, 3, w, h), dtype=np.uint8)
    raw = rng.uniform(0.5, 9.5, (n, w, h)).astype(np.float32)
    raw[:, :, :4] = 0.0  # no Kinect value in the top 4 rows (H is the last axis in h5py order)
    root = tmp_path / "nyu"
    root.mkdir()
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w", userblock_size=512) as f:
        f["images"], f["depths"], f["rawDepths"] = images, raw + 0.25, raw
    with open(root / "nyu_depth_v2_labeled.mat", "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ") + b"\0" * 8
                 + b"\x00\x02" + b"IM")
    sio.savemat(root / "splits.mat", {"trainNdxs": np.array([[1.0], [3.0], [5.0]]),
                                      "testNdxs": np.array([[2.0], [4.0]])})
    return root, images, raw


def _data(crop: int, hflip: float = 0.0) -> DataCfg:
    return DataCfg(crop_size=crop, scale=(1.0, 1.0), hflip=hflip)


def _unnormalise(img: Tensor) -> np.ndarray:
    m = torch.tensor(PRE.mean).view(3, 1, 1)
    s = torch.tensor(PRE.std).view(3, 1, 1)
    return (img * s + m).permute(1, 2, 0).numpy()


def test_nyu_train_split_from_the_labeled_mat(nyu: tuple[Path, np.ndarray, np.ndarray]) -> None:
    root, images, raw = nyu
    src = NYUv2TrainSource(SourceCfg(str(root), kind="nyuv2"), _data(42), PRE)
    assert len(src) == 3 and src.split == "train"  # trainNdxs 1, 3, 5
    for index, i0 in enumerate((0, 2, 4)):
        seed = 100 + index
        p = sample_crop(42, 56, 42, (1.0, 1.0), 0.0, np.random.default_rng(seed))
        out = src.load(index, np.random.default_rng(seed))
        frame = raw[i0].T  # (W, H) -> (H, W) metres
        want = frame[p.top:p.top + 42, p.left:p.left + 42]
        assert out["depth"].dtype == torch.float32 and np.array_equal(out["depth"].numpy(), want)
        assert np.array_equal(out["valid"].numpy(), want > 0)
        rgb = images[i0].transpose(2, 1, 0)[p.top:p.top + 42, p.left:p.left + 42] / 255.0
        assert np.abs(_unnormalise(out["image"]) - rgb).max() < 1e-5  # same size: the bicubic resize is exact
    assert not src.load(0, np.random.default_rng(0))["valid"][:4].any()  # the missing Kinect rows
    # DataLoader workers rebuild the reader (an open HDF5 handle neither forks nor pickles safely)
    clone = pickle.loads(pickle.dumps(src))
    assert torch.equal(clone.load(1, np.random.default_rng(1))["depth"], src.load(1, np.random.default_rng(1))["depth"])


def test_nyu_test_split_is_refused_unless_asked_for(nyu: tuple[Path, np.ndarray, np.ndarray]) -> None:
    root, _, _ = nyu
    with pytest.raises(RecipeError, match=r"data.sources.0.split: 'test' is the nyuv2 benchmark's test split"):
        NYUv2TrainSource(SourceCfg(str(root), split="test", kind="nyuv2"), _data(42), PRE, "data.sources.0")
    ok = NYUv2TrainSource(SourceCfg(str(root), split="test", kind="nyuv2", options={"allow_test_split": True}),
                          _data(42), PRE)
    assert len(ok) == 2


def _kitti(root: Path) -> dict[str, np.ndarray]:
    """Two annotated frames (left and right camera) of one drive, 375 x 1242 (2011_09_26 size), and the Eigen
    train list with a ``None`` line, in the BTS format."""
    rng = np.random.default_rng(4)
    drive, out = "2011_09_26_drive_0001_sync", {}
    lines = []
    for cam in ("image_02", "image_03"):
        depth = np.where(rng.random((375, 1242)) < 0.2, rng.uniform(1.0, 85.0, (375, 1242)), 0.0)
        _png16(root / "train" / drive / "proj_depth" / "groundtruth" / cam / "0000000005.png", depth, 256.0)
        _png(root / "2011_09_26" / drive / cam / "data" / "0000000005.png",
             rng.integers(0, 256, (375, 1242, 3), dtype=np.uint8))
        out[cam] = np.round(depth * 256.0) / 256.0
        lines.append(f"2011_09_26/{drive}/{cam}/data/0000000005.png "
                     f"{drive}/proj_depth/groundtruth/{cam}/0000000005.png 721.5377")
    lines.append(f"2011_09_26/{drive}/image_02/data/0000000006.png None 721.5377")
    (root / "eigen_train_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return out


def test_kitti_eigen_train_list_kb_crop_and_nearest_resize(tmp_path: Path) -> None:
    gt = _kitti(tmp_path)
    reader = open_dataset("kitti", tmp_path, "eigen_train")
    assert reader.ids == ["2011_09_26_drive_0001_sync/0000000005", "2011_09_26_drive_0001_sync/image_03/0000000005"]
    assert reader.dropped == {"gt_none": 1}
    src = KITTITrainSource(SourceCfg(str(tmp_path), kind="kitti"), _data(350), PRE)
    assert len(src) == 2
    top, left = kb_crop_offset(375, 1242)
    for index, cam in enumerate(("image_02", "image_03")):
        p = sample_crop(352, 1216, 350, (1.0, 1.0), 0.0, np.random.default_rng(9))
        assert p.resized == (350, 1209)  # short side 352 -> 350, aspect kept
        out = src.load(index, np.random.default_rng(9))
        frame = gt[cam][top:top + 352, left:left + 1216].astype(np.float32)  # /256, KB crop
        rows = nearest_source_indices(352, 350, p.top, 350)
        cols = nearest_source_indices(1216, 1209, p.left, 350)
        want = frame[np.ix_(rows, cols)]
        assert np.array_equal(out["depth"].numpy(), want)  # nearest: every value is a GT value
        assert np.array_equal(out["valid"].numpy(), want > 0)


def test_valid_crop_keeps_only_the_evaluation_box(tmp_path: Path) -> None:
    _kitti(tmp_path)
    sample = open_dataset("kitti", tmp_path, "eigen_train").load(0)
    rgb, depth, valid = sample_arrays(sample, "kitti_garg")
    t, b, le, r = crop_box(depth.shape, "kitti_garg")  # in KB-crop coordinates, as ZoeDepth/Marigold
    inside = np.zeros_like(valid)
    inside[t:b, le:r] = True
    assert rgb.shape == (352, 1216, 3)
    assert np.array_equal(valid, (sample.depth > 0) & inside) and valid.sum() > 0
    assert np.all(depth[~valid] == 0) and np.array_equal(depth[valid], sample.depth[valid])


def test_eval_sources_are_registered_and_errors_name_the_key(tmp_path: Path,
                                                             nyu: tuple[Path, np.ndarray, np.ndarray]) -> None:
    root, _, _ = nyu
    assert {"nyuv2", "kitti", "eval"} <= set(SOURCE_KINDS)
    r = load_recipe(CI, [f"data.sources.0.path={root}", "data.sources.0.kind=nyuv2",
                         f"data.sources.1.path={root}", "data.sources.1.kind=eval",
                         "data.sources.1.options={dataset: nyuv2, depth: filled}"])
    nyu_src, generic = build_sources(r.data, PRE)
    assert isinstance(nyu_src, NYUv2TrainSource) and type(generic) is EvalSplitSource and len(generic) == 3
    a, b = (s.load(0, np.random.default_rng(0))["depth"] for s in (nyu_src, generic))
    assert torch.allclose(b[a > 0] - a[a > 0], torch.tensor(0.25))  # the filled depths are raw + 0.25 here
    bad = [
        ({"path": str(root), "kind": "nyuv2", "options": {"colour": "red"}}, r"data.sources.0.options: .*colour"),
        ({"path": str(tmp_path / "none"), "kind": "nyuv2"}, r"data.sources.0.path: .*does not exist"),
        ({"path": str(root), "kind": "eval"}, r"data.sources.0.options.dataset: expected one of"),
        ({"path": str(root), "kind": "nyuv2", "options": {"valid_crop": "garg"}}, r"data.sources.0.options.valid_crop"),
    ]
    for entry, pattern in bad:
        with pytest.raises(RecipeError, match=pattern):
            build_sources(DataCfg(sources=(SourceCfg(**entry),), crop_size=42), PRE)


# ---------------------------------------------------------------------------------------- a metric run


def test_metric_finetune_from_a_relative_run_reduces_silog(tmp_path: Path) -> None:
    folder = write_planes(tmp_path / "planes", n=12, seed=0)
    val = write_planes(tmp_path / "val", n=4, seed=2)
    rel = train(load_recipe(CI, [f"data.sources.0.path={folder}", "train.steps=4", "train.ckpt_every=0"]),
                tmp_path / "relative", echo=quiet)
    assert rel.final_weights is not None
    r = load_recipe(CI, [
        f"data.sources.0.path={folder}", f"data.val.path={val}", "model.head=metric", "model.max_depth=10",
        f"model.encoder_init={rel.final_weights}", "data.scale=[1.0, 1.0]", "optim.schedule=poly",
        "optim.warmup_steps=0", "train.steps=30", "train.log_every=1", "train.ckpt_every=0",
    ])
    spec = recipe_spec(r)
    torch.manual_seed(r.seed)  # the loop's initial model
    before = Validator(r.data.val, spec, r.data.crop_size).run(build_model(r, spec), DistEnv(0, 1, 0, torch.device("cpu")))
    res = train(r, tmp_path / "metric", echo=quiet)
    silog = [x["silog"] for x in read_metrics(tmp_path / "metric" / "metrics.jsonl", "train")]
    assert len(silog) == 30
    # measured (seeds 0, 1, 2): SILog 0.33 -> 0.19, 0.38 -> 0.21, 0.37 -> 0.22 (first / last 5 steps);
    # val AbsRel 0.30 -> 0.13, 0.41 -> 0.14, 0.46 -> 0.16
    first, last = np.mean(silog[:5]), np.mean(silog[-5:])
    assert last < 0.7 * first, (first, last)
    assert res.last_val is not None and res.last_val["abs_rel"] < 0.7 * before["abs_rel"], (before, res.last_val)
    _, exported = load_model(weights=res.final_weights)
    assert (exported.arch.head, exported.arch.max_depth) == ("metric", 10.0)


# ----------------------------------------------------------------------- V2 metric training lists


def _official_hypersim_distance_to_depth(distance: np.ndarray) -> np.ndarray:
    """Re-written here from Depth-Anything-V2 ``metric_depth/dataset/hypersim.py::hypersim_distance_to_depth``
    (commit a561b849ebae10a6f5ef49e26c83cbbcd36c71bf): float32 image-plane points built with ``np.linspace`` from
    -W/2 + 0.5 to W/2 - 0.5 (and the same for rows) at z = 886.81 px, then distance / ||point||_2 * focal."""
    h, w, focal = 768, 1024, 886.81
    xs = np.linspace(-0.5 * w + 0.5, 0.5 * w - 0.5, w).astype(np.float32)
    ys = np.linspace(-0.5 * h + 0.5, 0.5 * h - 0.5, h).astype(np.float32)
    plane = np.stack([np.broadcast_to(xs[None, :], (h, w)), np.broadcast_to(ys[:, None], (h, w)),
                      np.full((h, w), focal, np.float32)], axis=2)
    return distance / np.linalg.norm(plane, 2, 2) * focal


def test_hypersim_distance_to_planar_matches_the_official_conversion() -> None:
    rng = np.random.default_rng(3)
    distance = rng.uniform(0.5, 30.0, (768, 1024)).astype(np.float32)
    distance[:2, :5] = np.nan  # no geometry stays no geometry
    ref = _official_hypersim_distance_to_depth(distance)
    planar = hypersim_distance_to_planar(distance)
    assert planar.dtype == np.float32 and np.isnan(planar[:2, :5]).all()
    np.testing.assert_allclose(planar, ref, rtol=1e-6)
    # the check can fail: principal point on a pixel corner instead of its centre (no +0.5) is off by > 1e-6
    x = np.arange(1024) - 512.0
    y = np.arange(768) - 384.0
    corner = distance * (886.81 / np.sqrt(x[None, :] ** 2 + y[:, None] ** 2 + 886.81**2))
    assert np.nanmax(np.abs(corner - ref) / ref) > 1e-4


def test_hypersim_distance_to_planar_recovers_a_tilted_plane() -> None:
    """Geometry, independently of the formula: rays through the pixel centres of a pinhole camera (fx = fy = f,
    principal point at the image centre) hit the plane n . X = 4; the distance to the hit point goes in, its z
    must come out."""
    h, w, f = 768, 1024, 886.81
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)  # pixel centres, continuous coordinates
    rays = np.stack([(u - w / 2) / f, (v - h / 2) / f, np.ones_like(u)], axis=-1)  # K^-1 [u, v, 1]
    normal = np.array([0.2, -0.3, 1.0]) / np.linalg.norm([0.2, -0.3, 1.0])
    points = rays * (4.0 / (rays @ normal))[..., None]
    planar = hypersim_distance_to_planar(np.linalg.norm(points, axis=-1).astype(np.float32))
    np.testing.assert_allclose(planar, points[..., 2], rtol=3e-7)  # float32 in, float32 out
    assert np.ptp(points[..., 2]) > 1.0  # tilted: depth varies by metres across the image


def test_hypersim_and_vkitti2_sources_decode_the_official_conventions(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    h, w = 56, 70
    distance = rng.uniform(1.0, 15.0, (h, w)).astype(np.float16)  # Hypersim stores float16 metres
    distance[:3] = np.nan  # no geometry
    scene = tmp_path / "hs" / "ai_001_001" / "images"
    scene.mkdir(parents=True)
    with h5py.File(scene / "frame.0000.depth_meters.hdf5", "w") as f:
        f["dataset"] = distance
    _png(scene / "frame.0000.tonemap.jpg", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (tmp_path / "hs" / "train.txt").write_text(
        "/mnt/data/hypersim/ai_001_001/images/frame.0000.tonemap.jpg "
        "/mnt/data/hypersim/ai_001_001/images/frame.0000.depth_meters.hdf5\n")
    cfg = SourceCfg(str(tmp_path / "hs"), kind="hypersim", options={"strip_prefix": "/mnt/data/hypersim/"})
    hs = HypersimSource(cfg, _data(56), PRE)
    p = sample_crop(h, w, 56, (1.0, 1.0), 0.0, np.random.default_rng(0))
    out = hs.load(0, np.random.default_rng(0))
    want = hypersim_distance_to_planar(distance.astype(np.float32))[:, p.left:p.left + 56]
    assert np.array_equal(out["valid"].numpy(), np.isfinite(want)) and not out["valid"][:3].any()
    assert np.array_equal(out["depth"].numpy()[3:], want[3:]) and (out["depth"][:3] == 0).all()

    cm = rng.integers(100, 9000, (h, w)).astype(np.uint16)
    cm[:5] = 65535  # VKITTI 2 sky: 655.35 m
    cm[5, :4] = 8000  # exactly 80 m: still valid (<= 80)
    _png16(tmp_path / "vk" / "Scene01" / "clone" / "depth_00000.png", cm.astype(np.float64), 1.0)
    _png(tmp_path / "vk" / "Scene01" / "clone" / "rgb_00000.jpg", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (tmp_path / "vk" / "list.txt").write_text("Scene01/clone/rgb_00000.jpg Scene01/clone/depth_00000.png\n")
    vk = VKITTI2Source(SourceCfg(str(tmp_path / "vk"), kind="vkitti2",
                                 options={"list_file": str(tmp_path / "vk" / "list.txt")}), _data(56), PRE)
    out = vk.load(0, np.random.default_rng(0))
    metres = (cm.astype(np.float64) / 100.0).astype(np.float32)[:, p.left:p.left + 56]
    keep = metres <= 80.0
    assert np.array_equal(out["valid"].numpy(), keep) and not out["valid"][:5].any() and out["valid"][5, 0]
    assert np.array_equal(out["depth"].numpy()[keep], metres[keep]) and (out["depth"][~keep] == 0).all()
    assert {"hypersim", "vkitti2"} <= set(SOURCE_KINDS)
    with pytest.raises(RecipeError, match=r"data.sources.0.options.list_file: .*not found"):
        VKITTI2Source(SourceCfg(str(tmp_path / "vk"), kind="vkitti2"), _data(56), PRE, "data.sources.0")
    with pytest.raises(RecipeError, match=r"data.sources.0.options: .*list_file and strip_prefix"):
        VKITTI2Source(SourceCfg(str(tmp_path / "vk"), kind="vkitti2", options={"scale": 100}), _data(56), PRE,
                      "data.sources.0")
