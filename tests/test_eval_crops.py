"""Evaluation crops are the exact half-open index ranges of the upstream formulas (ZoeDepth's evaluation code as
shipped in LiheYoung/Depth-Anything commit 1d03336771fe09c5398ffdd211441e33941a97dc:
``metric_depth/zoedepth/utils/misc.py::compute_metrics`` and ``metric_depth/zoedepth/data/data_mono.py``;
docs/reference/evaluation_facts.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest

from depthany.eval import crops

# H, W -> KB (top, left), Garg box, Eigen box (rows, rows, cols, cols), pinned; test_table_follows_the_formulas
# re-derives every row from the upstream expressions.
TABLE = [
    ((375, 1242), (23, 13), (153, 371, 44, 1197), (124, 342, 44, 1197)),
    ((370, 1224), (18, 4), (151, 366, 43, 1180), (122, 337, 43, 1180)),
    ((374, 1238), (22, 11), (152, 370, 44, 1193), (124, 341, 44, 1193)),
    ((376, 1241), (24, 12), (153, 372, 44, 1196), (124, 343, 44, 1196)),
    ((352, 1216), (0, 0), (143, 349, 43, 1172), (117, 321, 43, 1172)),
]


def _upstream(h: int, w: int) -> tuple[tuple[int, int], tuple[int, ...], tuple[int, ...]]:
    """The upstream expressions as written there: ``top_margin = int(height - 352)``, ``left_margin =
    int((width - 1216) / 2)``; Garg ``int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229
    * w)``; KITTI Eigen ``int(0.3324324 * h):int(0.91351351 * h), int(0.0359477 * w):int(0.96405229 * w)``."""
    kb = (int(h - 352), int((w - 1216) / 2))
    garg = (int(0.40810811 * h), int(0.99189189 * h), int(0.03594771 * w), int(0.96405229 * w))
    eigen = (int(0.3324324 * h), int(0.91351351 * h), int(0.0359477 * w), int(0.96405229 * w))
    return kb, garg, eigen


@pytest.mark.parametrize(("shape", "kb", "garg", "eigen"), TABLE)
def test_table_follows_the_formulas(shape, kb, garg, eigen) -> None:
    assert _upstream(*shape) == (kb, garg, eigen)


@pytest.mark.parametrize(("shape", "kb", "garg", "eigen"), TABLE)
def test_kitti_boxes_match_reference_table(shape, kb, garg, eigen) -> None:
    assert crops.kb_crop_offset(*shape) == kb
    assert crops.kitti_fraction_box(*shape, "kitti_garg") == garg
    assert crops.kitti_fraction_box(*shape, "kitti_eigen") == eigen


def test_kb_crop_cuts_the_bottom_centre() -> None:
    full = np.arange(375 * 1242).reshape(375, 1242)
    cropped = crops.kb_crop(full)
    assert cropped.shape == (352, 1216)
    assert cropped[0, 0] == full[23, 13] and cropped[-1, -1] == full[374, 1228]
    with pytest.raises(ValueError, match="352x1216"):
        crops.kb_crop_offset(300, 1242)


def test_nyu_eigen_crop_mask_is_45_471_41_601() -> None:
    m = crops.crop_mask((480, 640), "nyu_eigen")
    rows, cols = np.where(m)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (45, 471, 41, 601)
    assert m.sum() == 426 * 560


def test_both_crop_orders_give_their_own_pixel_sets() -> None:
    full, offset = (375, 1242), (23, 13)
    kb_first = crops.crop_box((352, 1216), "kitti_garg", "kb_then_fraction", full, offset)
    on_full = crops.crop_box((352, 1216), "kitti_garg", "fraction_on_full", full, offset)
    assert kb_first == (143, 349, 43, 1172)
    assert on_full == (153 - 23, 371 - 23, 44 - 13, 1197 - 13)  # the full-frame box seen from the KB frame
    eig_full = crops.crop_box((352, 1216), "kitti_eigen", "fraction_on_full", full, offset)
    assert eig_full == (124 - 23, 342 - 23, 44 - 13, 1197 - 13)
    a = crops.crop_mask((352, 1216), "kitti_eigen", "kb_then_fraction", full, offset)
    b = crops.crop_mask((352, 1216), "kitti_eigen", "fraction_on_full", full, offset)
    assert a.sum() != b.sum() and (a & ~b).any() and (b & ~a).any()


def test_no_crop_and_bad_names() -> None:
    assert crops.crop_mask((4, 5), "none").all()
    with pytest.raises(ValueError, match="crop must be one of"):
        crops.crop_mask((4, 5), "garg")
    with pytest.raises(ValueError, match="crop_order"):
        crops.crop_mask((352, 1216), "kitti_garg", "bts")
