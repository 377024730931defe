"""Dataset readers on small files written here in each benchmark's exact on-disk format (the formats and their
upstream sources: docs/reference/evaluation_facts.md section 5)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from depthany.data.rgbd import RGBDWriter
from depthany.eval.datasets import DatasetError, open_dataset
from depthany.eval.datasets.eth3d import read_eth3d_depth
from depthany.eval.datasets.sintel import read_dpt, write_dpt


def _rgb(rng, h, w) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png16(path: Path, depth_m: np.ndarray, scale: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(depth_m * scale).astype(np.uint16)).save(path)


def _png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


# ------------------------------------------------------------------------------------------------ NYUv2


@pytest.fixture
def nyu_data(rng):
    n = 4
    images = rng.integers(0, 256, (n, 3, 640, 480), dtype=np.uint8)  # h5py order (N, C, W, H)
    raw = rng.uniform(0.5, 9.5, (n, 640, 480)).astype(np.float32)
    raw[:, :5] = 0.0  # missing raw Kinect values
    filled = raw + 0.25
    return images, raw, filled


def _write_mat(root: Path, images, raw, filled) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w", userblock_size=512) as f:
        f["images"], f["depths"], f["rawDepths"] = images, filled, raw
    with open(root / "nyu_depth_v2_labeled.mat", "r+b") as fh:  # the MATLAB v7.3 header in the userblock
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ") + b"\0" * 8
                 + b"\x00\x02" + b"IM")
    sio.savemat(root / "splits.mat", {"trainNdxs": np.array([[1.0], [4.0]]), "testNdxs": np.array([[2.0], [3.0]])})


def test_nyu_mat_axis_order_split_base_and_depth_variants(tmp_path, nyu_data) -> None:
    images, raw, filled = nyu_data
    _write_mat(tmp_path, images, raw, filled)
    ds = open_dataset("nyuv2", tmp_path)
    assert ds.options()["layout"] == "mat" and ds.ids == ["0002", "0003"]  # 1-based testNdxs 2, 3
    s = ds.load(0)
    assert s.depth.shape == (480, 640) and s.depth.dtype == np.float32
    assert np.array_equal(s.depth, raw[1].T)  # testNdxs 2 -> 0-based 1
    rgb = s.rgb()
    assert rgb.shape == (480, 640, 3) and np.array_equal(rgb, images[1].transpose(2, 1, 0))
    assert np.array_equal(open_dataset("nyuv2", tmp_path, depth="filled").load(0).depth, filled[1].T)
    assert open_dataset("nyuv2", tmp_path, "train").ids == ["0001", "0004"]
    st = ds.settings("relative")
    assert (st.min_depth, st.max_depth, st.crop) == (1e-3, 10.0, "nyu_eigen")


def test_nyu_index_base_is_identical_across_layouts(tmp_path, nyu_data) -> None:
    images, raw, filled = nyu_data
    _write_mat(tmp_path / "mat", images, raw, filled)
    for i0 in (1, 2):  # the test split, 0-based
        rgb, d, f = images[i0].transpose(2, 1, 0), raw[i0].T, filled[i0].T
        bts = tmp_path / "bts" / "official_splits" / "test" / "kitchen"
        _png(bts / f"rgb_{i0:05d}.jpg", np.ascontiguousarray(rgb))  # BTS: 0-based enumerate index
        _png16(bts / f"sync_depth_{i0:05d}.png", d, 1000.0)
        mg = tmp_path / "marigold" / "test" / "kitchen_0004"
        _png(mg / f"rgb_{i0 + 1:04d}.png", np.ascontiguousarray(rgb))  # Marigold: 1-based
        _png16(mg / f"depth_{i0 + 1:04d}.png", d, 1000.0)
        _png16(mg / f"filled_{i0 + 1:04d}.png", f, 1000.0)
    mat, bts_ds, mg_ds = (open_dataset("nyuv2", tmp_path / x) for x in ("mat", "bts", "marigold"))
    assert bts_ds.options()["layout"] == "bts" and mg_ds.options()["layout"] == "marigold"
    assert mat.ids == bts_ds.ids == mg_ds.ids == ["0002", "0003"]
    for k in range(2):
        ref = mat.load(k).depth
        assert np.abs(bts_ds.load(k).depth - ref).max() <= 0.0005 + 1e-6  # mm quantisation
        assert np.abs(mg_ds.load(k).depth - ref).max() <= 0.0005 + 1e-6
    assert np.abs(open_dataset("nyuv2", tmp_path / "marigold", depth="filled").load(0).depth - filled[1].T).max() < 6e-4
    with pytest.raises(DatasetError, match="raw depth only"):
        open_dataset("nyuv2", tmp_path / "bts", depth="filled")


def test_nyu_list_files_fix_the_sample_set(tmp_path, nyu_data) -> None:
    images, raw, _ = nyu_data
    for i0 in (0, 1, 2):
        rgb = np.ascontiguousarray(images[i0].transpose(2, 1, 0))
        bts = tmp_path / "bts" / "official_splits" / "test" / "office"
        _png(bts / f"rgb_{i0:05d}.jpg", rgb)
        _png16(bts / f"sync_depth_{i0:05d}.png", raw[i0].T, 1000.0)
        mg = tmp_path / "mg" / "test" / "office_0005"
        _png(mg / f"rgb_{i0 + 1:04d}.png", rgb)
        _png16(mg / f"depth_{i0 + 1:04d}.png", raw[i0].T, 1000.0)
    (tmp_path / "bts" / "nyudepthv2_test_files_with_gt.txt").write_text(
        "office/rgb_00002.jpg office/sync_depth_00002.png 518.8579\noffice/rgb_00000.jpg office/sync_depth_00000.png 518.8579\n")
    (tmp_path / "mg" / "filename_list_test.txt").write_text(
        "test/office_0005/rgb_0003.png test/office_0005/depth_0003.png test/office_0005/filled_0003.png\n"
        "test/office_0005/rgb_0001.png test/office_0005/depth_0001.png test/office_0005/filled_0001.png\n")
    bts_ds, mg_ds = open_dataset("nyuv2", tmp_path / "bts"), open_dataset("nyuv2", tmp_path / "mg")
    assert bts_ds.ids == mg_ds.ids == ["0003", "0001"]  # list order kept; 0-based 2 == 1-based 3
    assert np.abs(bts_ds.load(0).depth - raw[2].T).max() <= 5e-4 + 1e-6
    assert bts_ds.load(1).meta["scene"] == "office"


def test_nyu_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(DatasetError, match="cannot tell the layout"):
        open_dataset("nyuv2", tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("nyuv2", tmp_path / "nope")


# ------------------------------------------------------------------------------------------------ KITTI


def _kitti(tmp_path: Path, rng, gt_bits: int = 16) -> np.ndarray:
    drive = "2011_09_26_drive_0002_sync"
    depth = np.where(rng.random((375, 1242)) < 0.3, rng.uniform(1, 85, (375, 1242)), 0.0)
    gt = tmp_path / "train" / drive / "proj_depth" / "groundtruth" / "image_02" / "0000000069.png"
    if gt_bits == 16:
        _png16(gt, depth, 256.0)
    else:
        _png(gt, np.zeros((375, 1242, 3), np.uint8))
    _png(tmp_path / "2011_09_26" / drive / "image_02" / "data" / "0000000069.png", _rgb(rng, 375, 1242))
    (tmp_path / "eigen_test_files_with_gt.txt").write_text(
        f"2011_09_26/{drive}/image_02/data/0000000069.png {drive}/proj_depth/groundtruth/image_02/0000000069.png 721.5377\n"
        f"2011_09_26/{drive}/image_02/data/0000000070.png None 721.5377\n")
    return depth


def test_kitti_list_png16_and_kb_crop(tmp_path, rng) -> None:
    depth = _kitti(tmp_path, rng)
    ds = open_dataset("kitti", tmp_path)
    assert ds.ids == ["2011_09_26_drive_0002_sync/0000000069"] and ds.dropped == {"gt_none": 1}
    s = ds.load(0)
    assert s.depth.shape == (352, 1216) and s.full_shape == (375, 1242) and s.offset == (23, 13)
    ref = (np.round(depth * 256) / 256)[23:375, 13:1229]
    assert np.abs(s.depth - ref).max() < 1e-5
    assert np.abs(s.depth - depth[23:375, 13:1229]).max() <= 1 / 512 + 1e-6  # quantisation 1/256 m
    assert s.rgb().shape == (352, 1216, 3)
    assert open_dataset("kitti", tmp_path, kb_crop=False).load(0).depth.shape == (375, 1242)
    rel, met = ds.settings("relative"), ds.settings("metric")
    assert (rel.min_depth, rel.max_depth, rel.crop) == (1e-5, 80.0, "kitti_eigen")
    assert (met.min_depth, met.max_depth, met.crop) == (1e-3, 80.0, "kitti_garg")


def test_kitti_crop_orders_through_the_reader(tmp_path, rng) -> None:
    from depthany.eval.protocols import valid_mask

    _kitti(tmp_path, rng)
    ds = open_dataset("kitti", tmp_path)
    s, st = ds.load(0), ds.settings("relative")
    in_range = (s.depth > 1e-5) & (s.depth < 80)
    for order, (r0, r1, c0, c1) in (("kb_then_fraction", (117, 321, 43, 1172)),
                                    ("fraction_on_full", (124 - 23, 342 - 23, 44 - 13, 1197 - 13))):
        box = np.zeros_like(in_range)
        box[r0:r1, c0:c1] = True
        got = valid_mask(s.depth, st.replace(crop_order=order), s.mask, s.full_shape, s.offset)
        assert np.array_equal(got, in_range & box), order


def test_kitti_rejects_8bit_gt_and_missing_list(tmp_path, rng) -> None:
    _kitti(tmp_path, rng, gt_bits=8)
    with pytest.raises(DatasetError, match="16-bit"):
        open_dataset("kitti", tmp_path).load(0)
    with pytest.raises(DatasetError, match="--list"):
        open_dataset("kitti", tmp_path / "train")


# ------------------------------------------------------------------------------------------------ Sintel


def test_sintel_dpt_round_trip_and_dataset(tmp_path, rng) -> None:
    d = rng.uniform(0.1, 100, (436, 1024)).astype(np.float32)
    p = tmp_path / "training" / "depth" / "alley_1" / "frame_0001.dpt"
    p.parent.mkdir(parents=True)
    write_dpt(p, d)
    assert p.stat().st_size == 1_785_868 and p.read_bytes()[:4] == b"PIEH"
    assert np.array_equal(read_dpt(p), d)
    _png(tmp_path / "training" / "final" / "alley_1" / "frame_0001.png", _rgb(rng, 436, 1024))
    ds = open_dataset("sintel", tmp_path)
    assert ds.ids == ["alley_1/frame_0001"] and ds.load(0).rgb().shape == (436, 1024, 3)
    with pytest.raises(DatasetError, match="image not found"):
        open_dataset("sintel", tmp_path, image_pass="clean").load(0).rgb()


def test_sintel_rejects_wrong_tag_huge_size_and_truncation(tmp_path) -> None:
    bad = tmp_path / "bad.dpt"
    bad.write_bytes(b"PIEX" + struct.pack("<ii", 2, 2) + np.zeros(4, "<f4").tobytes())
    with pytest.raises(DatasetError, match="wrong .dpt tag"):
        read_dpt(bad)
    bad.write_bytes(b"PIEH" + struct.pack("<ii", 20000, 10000))  # w*h = 2e8 >= 1e8
    with pytest.raises(DatasetError, match="implausible"):
        read_dpt(bad)
    bad.write_bytes(b"PIEH" + struct.pack("<ii", -3, 4))
    with pytest.raises(DatasetError, match="implausible"):
        read_dpt(bad)
    bad.write_bytes(b"PIEH" + struct.pack("<ii", 4, 4) + np.zeros(15, "<f4").tobytes())
    with pytest.raises(DatasetError, match="holds 15"):
        read_dpt(bad)


# ------------------------------------------------------------------------------------------------ DDAD


def test_ddad_gt_png_over_256(tmp_path, rng) -> None:
    d = np.where(rng.random((40, 60)) < 0.5, rng.uniform(1, 150, (40, 60)), 0.0)
    _png16(tmp_path / "000150_gt.png", d, 256.0)
    _png(tmp_path / "000150_rgb.png", _rgb(rng, 40, 60))
    ds = open_dataset("ddad", tmp_path)
    s = ds.load(0)
    assert ds.ids == ["000150"] and np.abs(s.depth - d).max() <= 1 / 512 + 1e-6 and s.rgb().shape == (40, 60, 3)
    assert ds.settings("relative").max_depth == 200.0 and ds.settings("metric").crop == "kitti_garg"


# ------------------------------------------------------------------------------------------------ ETH3D


def test_eth3d_raw_float32_with_inf_and_size_parameter(tmp_path, rng) -> None:
    h, w = 8, 12
    d = np.full((h, w), np.inf, np.float32)
    d[2:5, 3:9] = rng.uniform(1, 20, (3, 6))
    gt = tmp_path / "depth" / "pipes_dslr_depth" / "pipes" / "ground_truth_depth" / "dslr_images" / "DSC_0001.JPG"
    gt.parent.mkdir(parents=True)
    d.astype("<f4").tofile(gt)
    _png(tmp_path / "rgb" / "pipes" / "images" / "dslr_images" / "DSC_0001.JPG", _rgb(rng, h, w))
    ds = open_dataset("eth3d", tmp_path, gt_size=(h, w))  # no list: found by glob
    s = ds.load(0)
    assert ds.ids == ["pipes/DSC_0001"] and (s.depth == 0).sum() == h * w - 18
    assert np.array_equal(s.depth[2:5, 3:9], d[2:5, 3:9]) and s.rgb().shape == (h, w, 3)
    (tmp_path / "eth3d_filename_list.txt").write_text(
        "rgb/pipes/images/dslr_images/DSC_0001.JPG "
        "depth/pipes_dslr_depth/pipes/ground_truth_depth/dslr_images/DSC_0001.JPG\n")
    assert open_dataset("eth3d", tmp_path, gt_size=(h, w)).options()["list_file"].endswith("eth3d_filename_list.txt")
    with pytest.raises(DatasetError, match="4032x6048 float32 has 97542144"):
        read_eth3d_depth(gt)  # default size
    st = ds.settings("relative")
    assert math.isinf(st.max_depth) and st.min_depth == 1e-5 and st.alignment_max_res == 1024


# ------------------------------------------------------------------------------------------------ DIODE


def test_diode_npy_depth_and_mask(tmp_path, rng) -> None:
    for domain in ("indoors", "outdoor"):
        scan = tmp_path / "val" / domain / "scene_00019" / "scan_00183"
        scan.mkdir(parents=True)
        stem = f"00019_00183_{domain}_000_010"
        np.save(scan / f"{stem}_depth.npy", rng.uniform(0.5, 50, (768, 1024, 1)).astype(np.float32))
        np.save(scan / f"{stem}_depth_mask.npy", (rng.random((768, 1024)) < 0.7).astype(np.float32))
        _png(scan / f"{stem}.png", _rgb(rng, 768, 1024))
    ds = open_dataset("diode", tmp_path)
    assert len(ds) == 2 and ds.ids[0] == "indoors/scene_00019/scan_00183/00019_00183_indoors_000_010"
    s = ds.load(0)
    assert s.depth.shape == (768, 1024) and s.mask is not None and s.mask.dtype == bool
    assert open_dataset("diode", tmp_path, "outdoor").ids == [ds.ids[1]]
    assert ds.settings("relative").mask_mode == "mask_only"
    assert open_dataset("diode", tmp_path, "indoors").settings("metric").crop == "nyu_eigen"
    with pytest.raises(DatasetError, match="indoors or --split outdoor"):
        ds.settings("metric")


# ------------------------------------------------------------------------------------------------ file list / RGB-D


def test_filelist_png_npy_and_mask(tmp_path, rng) -> None:
    d = rng.uniform(1, 10, (10, 12))
    _png16(tmp_path / "d" / "a.png", d, 1000.0)
    np.save(tmp_path / "d" / "b.npy", d.astype(np.float32))
    np.save(tmp_path / "d" / "b_mask.npy", np.eye(10, 12))
    for n in ("a", "b"):
        _png(tmp_path / "rgb" / f"{n}.png", _rgb(rng, 10, 12))
    lst = tmp_path / "list.txt"
    lst.write_text("rgb/a.png d/a.png\nrgb/b.png d/b.npy d/b_mask.npy\nrgb/c.png None\n")
    with pytest.raises(DatasetError, match="depth-scale"):
        open_dataset("filelist", tmp_path, list_file=lst)
    ds = open_dataset("filelist", tmp_path, list_file=lst, depth_scale=1000.0)
    assert ds.ids == ["rgb/a", "rgb/b"] and ds.dropped == {"gt_none": 1}
    assert np.abs(ds.load(0).depth - d).max() <= 5e-4 + 1e-6 and ds.load(1).mask.sum() == 10
    with pytest.raises(ValueError, match="does not take option"):
        open_dataset("filelist", tmp_path, list_file=lst, gt_size=(1, 2))


def test_filelist_reads_the_zoedepth_nyu_train_list(tmp_path, rng) -> None:
    """The official nyudepthv2_train_files_with_gt.txt writes '/scene/rgb_N.jpg /scene/sync_depth_N.png focal'
    (LiheYoung/Depth-Anything @ 1d03336, metric_depth/train_test_inputs/); its loader strips the leading slash."""
    d = rng.uniform(1, 10, (10, 12))
    _png16(tmp_path / "kitchen_0028b" / "sync_depth_00045.png", d, 1000.0)
    _png(tmp_path / "kitchen_0028b" / "rgb_00045.png", _rgb(rng, 10, 12))
    lst = tmp_path / "nyudepthv2_train_files_with_gt.txt"
    lst.write_text("/kitchen_0028b/rgb_00045.png /kitchen_0028b/sync_depth_00045.png 518.8579\n")
    ds = open_dataset("filelist", tmp_path, list_file=lst, depth_scale=1000.0)
    assert ds.ids == ["kitchen_0028b/rgb_00045"] and ds.load(0).mask is None
    assert np.abs(ds.load(0).depth - d).max() <= 5e-4 + 1e-6 and ds.load(0).rgb().shape == (10, 12, 3)
    absolute = tmp_path / "abs.txt"  # a path that exists as written is still used as written
    absolute.write_text(f"{tmp_path}/kitchen_0028b/rgb_00045.png {tmp_path}/kitchen_0028b/sync_depth_00045.png\n")
    (tmp_path / "elsewhere").mkdir()
    ds = open_dataset("filelist", tmp_path / "elsewhere", list_file=absolute, depth_scale=1000.0)
    assert ds.load(0).depth.shape == (10, 12)


def test_rgbd_folder(tmp_path, rng) -> None:
    with RGBDWriter(tmp_path, depth_encoding="npy") as w:
        for k in range(2):
            valid = np.ones((16, 20), bool)
            valid[0] = False
            w.write(f"s{k}", _rgb(rng, 16, 20), rng.uniform(1, 5, (16, 20)), valid=valid)
    ds = open_dataset("rgbd", tmp_path)
    s = ds.load(1)
    assert ds.ids == ["s0", "s1"] and s.mask is not None and not s.mask[0].any() and s.mask[1:].all()
    assert s.rgb().shape == (16, 20, 3) and math.isinf(ds.settings("relative").max_depth)


@pytest.mark.slow
def test_eth3d_full_size_file_and_downsampled_fit(tmp_path, rng) -> None:
    """A real-size 4032x6048 raw float32 GT (97,542,144 bytes), read with the default size and scored with the
    1024 px fit: an exactly affine disparity prediction still scores zero at full resolution."""
    from depthany.eval.runner import evaluate
    from depthany.eval.sources import DirectorySource

    h, w = 4032, 6048
    d = np.full((h, w), np.inf, np.float32)
    sparse = rng.random((h, w)) < 0.05
    d[sparse] = rng.uniform(0.5, 60, int(sparse.sum()))
    gt = tmp_path / "courtyard" / "ground_truth_depth" / "dslr_images" / "DSC_0286.JPG"
    gt.parent.mkdir(parents=True)
    d.astype("<f4").tofile(gt)
    assert gt.stat().st_size == 97_542_144
    ds = open_dataset("eth3d", tmp_path)
    assert ds.load(0).depth.shape == (h, w)
    preds = tmp_path / "preds" / "courtyard"
    preds.mkdir(parents=True)
    disp = np.where(np.isfinite(d), 1.0 / np.where(np.isfinite(d), d, 1.0), 0.5).astype(np.float32)
    np.save(preds / "DSC_0286.npy", 2.0 * disp + 0.1)
    rep = evaluate(ds, DirectorySource(tmp_path / "preds"), "disparity_lsq_eval_depth", progress=False)
    row = rep.rows[0]
    assert row["status"] == "ok" and row["n_valid"] == int(sparse.sum()) and row["n_fit"] < row["n_valid"]
    assert row["abs_rel"] < 1e-5 and row["delta1"] == 1.0
