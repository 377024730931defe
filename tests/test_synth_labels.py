"""Semantic labels of synthetic worlds: exact like the depth (they follow the geometry the renderer hit), stored
with their class table, and folders written before labels existed still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from depthany.data.classes import ClassTable, make_table
from depthany.data.rgbd import RGBDFolder
from depthany.synth import Scene, WorldConfig, make_scene, render
from depthany.synth.dataset import generate, iter_samples, render_sample
from depthany.synth.labels import SYNTH_CLASSES, label_image

IDX = {n: i for i, n in enumerate(SYNTH_CLASSES.names)}


def _on_plane(values: np.ndarray, target: float, depth: np.ndarray, rel: float) -> bool:
    """Every value within ``rel`` x (1 + depth) metres of ``target`` (float32 depth limits the precision)."""
    return bool((np.abs(values - target) <= rel * (1 + depth)).all())


def _world_points(scene: Scene, depth: np.ndarray) -> np.ndarray:
    """(3, H, W) world coordinates of each pixel's surface point (from the planar depth)."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    return scene.camera.unproject(u, v, np.where(np.isfinite(depth), depth, 0))


def test_indoor_labels_follow_the_room_geometry() -> None:
    seen = {"floor": 0, "ceiling": 0, "wall": 0}
    for index in range(4):
        scene = make_scene(5, index, WorldConfig(64, 48, "indoor"))
        view = render(scene)
        assert view.labels is not None and view.labels.dtype == np.uint8
        # the label of every pixel is the class of the primitive its ray hit
        np.testing.assert_array_equal(view.labels, np.array([IDX[n] for n in scene.labels])[view.shape_id])
        assert not (view.labels == IDX["sky"]).any() and np.isfinite(view.depth).all()  # a closed room: no sky
        p = _world_points(scene, view.depth)
        room_x = max(s.offset for s in scene.shapes[2:6] if s.normal == (1.0, 0.0, 0.0))
        room_y = max(s.offset for s in scene.shapes[2:6] if s.normal == (0.0, 1.0, 0.0))
        masks = {name: view.labels == IDX[name] for name in seen}
        for name, m in masks.items():
            seen[name] += int(m.sum())
        assert _on_plane(p[2][masks["floor"]], 0.0, view.depth[masks["floor"]], 1e-4)
        assert _on_plane(p[2][masks["ceiling"]], scene.shapes[1].offset, view.depth[masks["ceiling"]], 1e-4)
        # wall pixels lie on one of the four wall planes
        dist = np.min(np.abs(np.stack([p[0], p[0] - room_x, p[1], p[1] - room_y])), axis=0)
        assert _on_plane(dist[masks["wall"]], 0.0, view.depth[masks["wall"]], 1e-4)
        # and pixels of other classes are mostly off those planes (a chair leg touches the floor at one row)
        others = ~(masks["floor"] | masks["ceiling"] | masks["wall"])
        off = (np.abs(p[2]) > 1e-3) & (np.abs(p[2] - scene.shapes[1].offset) > 1e-3) & (dist > 1e-3)
        assert off[others].mean() > 0.9 if others.any() else True
    assert min(seen.values()) > 50


@pytest.mark.parametrize("index", range(6))
def test_outdoor_sky_is_exactly_the_missing_depth_and_ground_is_the_plane(index: int) -> None:
    scene = make_scene(3, index, WorldConfig(64, 48, "outdoor"))
    view = render(scene)
    assert view.labels is not None
    sky = view.labels == IDX["sky"]
    np.testing.assert_array_equal(sky, ~np.isfinite(view.depth))  # sky <=> the ray hit nothing
    np.testing.assert_array_equal(sky, view.shape_id == -1)
    ground = view.labels == IDX["ground"]
    p = _world_points(scene, view.depth)
    assert _on_plane(p[2][ground], 0.0, view.depth[ground], 1e-4)
    road = view.labels == IDX["road"]  # a 1 cm slab on the ground: its top face is at z = 0.01
    if road.any():
        assert np.median(p[2][road]) == pytest.approx(0.01, abs=2e-3)
    # labels are independent of depth validity: the far ground beyond max_depth is still ground
    assert set(np.unique(view.labels[np.isfinite(view.depth) & ~view.valid])) <= {
        IDX[n] for n in ("ground", "hill", "building", "tree", "rock", "road", "sidewalk", "pole", "bush")}


def test_label_image_rejects_bad_ids_and_maps_sky() -> None:
    ids = np.array([[0, 1], [-1, 1]], np.int32)
    np.testing.assert_array_equal(label_image(ids, ["ground", "car"]),
                                  [[IDX["ground"], IDX["car"]], [IDX["sky"], IDX["car"]]])
    with pytest.raises(ValueError, match="out of range"):
        label_image(np.array([[2]], np.int32), ["ground", "car"])


def test_scene_json_keeps_labels_and_old_scenes_render_without_labels() -> None:
    scene = make_scene(1, 2, WorldConfig(32, 24, "mixed"))
    d = json.loads(json.dumps(scene.to_dict()))
    again = Scene.from_dict(d)
    assert again.labels == scene.labels
    np.testing.assert_array_equal(render(again).labels, render(scene).labels)
    del d["labels"]  # a scene stored before classes existed
    old = render(Scene.from_dict(d))
    assert old.labels is None
    np.testing.assert_array_equal(old.rgb, render(scene).rgb)  # adding labels changed no pixel or depth
    bad = dict(d, labels=["ground"] * (len(d["shapes"]) + 1))
    with pytest.raises(ValueError, match="labels"):
        Scene.from_dict(bad)


def test_written_folder_holds_labels_and_the_class_table(tmp_path: Path) -> None:
    cfg = WorldConfig(40, 32, "mixed")
    generate(tmp_path, 3, cfg, seed=4)
    folder = RGBDFolder(tmp_path)
    assert folder.has_labels and folder.classes == SYNTH_CLASSES
    for i in range(3):
        view, _ = render_sample(4, i, cfg)
        np.testing.assert_array_equal(folder[i].labels, view.labels)
    on_the_fly = next(iter(iter_samples([1], cfg, seed=4)))
    np.testing.assert_array_equal(on_the_fly.labels, folder[1].labels)


def test_folders_without_labels_still_load_and_are_not_resumed_with_labels(tmp_path: Path) -> None:
    cfg = WorldConfig(40, 32, "indoor")
    generate(tmp_path, 2, cfg, seed=0)
    # make it a folder from before labels existed
    for p in (tmp_path / "labels").iterdir():
        p.unlink()
    (tmp_path / "labels").rmdir()
    info = json.loads((tmp_path / "dataset.json").read_text())
    del info["semantic"]
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    folder = RGBDFolder(tmp_path)
    assert not folder.has_labels and folder.classes is None
    s = folder[0]
    assert s.labels is None and s.depth.shape == (32, 40)
    with pytest.raises(ValueError, match="semantic: folder has no semantic labels, this run a 29-class table"):
        generate(tmp_path, 3, cfg, seed=0)


def test_class_table_round_trip_colours_and_errors() -> None:
    t = make_table("t", [("a", (1, 2, 3)), ("b", (4, 5, 6))])
    assert ClassTable.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    rgb = t.colorize(np.array([[0, 1, 255, 7]], np.uint8))
    np.testing.assert_array_equal(rgb[0], [[1, 2, 3], [4, 5, 6], [0, 0, 0], [0, 0, 0]])
    assert t.palette()[1].tolist() == [4, 5, 6] and t.palette()[255].tolist() == [0, 0, 0]
    assert t.index("b") == 1
    with pytest.raises(KeyError, match="no class 'c'"):
        t.index("c")
    with pytest.raises(ValueError, match="repeat"):
        make_table("t", [("a", (0, 0, 0)), ("a", (1, 1, 1))])
    with pytest.raises(ValueError, match="ignore_index 1 is a class index"):
        make_table("t", [("a", (0, 0, 0)), ("b", (1, 1, 1))], ignore_index=1)
    with pytest.raises(ValueError, match="cls.json: malformed class table"):
        ClassTable.from_dict({"classes": [{"id": 1, "name": "x", "color": [0, 0, 0]}]}, "cls.json")
    assert len(SYNTH_CLASSES) == 29 and SYNTH_CLASSES.names[0] == "sky"
