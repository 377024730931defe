"""Cityscapes (fine annotations) in its published layout, as mmsegmentation reads it.

``root`` is the ``cityscapes`` folder (mmseg's ``data/cityscapes``)::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png    (mmseg's converted train ids), or
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png         (the released 34 label ids)

``split``: ``val`` (default, 500 images), ``train`` or ``test``. The sample id is the image path relative to
``leftImg8bit/<split>`` without ``.png``: ``frankfurt/frankfurt_000000_000294_leftImg8bit``.

Labels are the 19 train ids (255 = ignore). ``*_labelTrainIds.png`` is used when present (mmseg's
``CityscapesDataset`` reads exactly that suffix); otherwise ``*_labelIds.png`` is mapped id -> trainId with the
official table (``cityscapesscripts/helpers/labels.py``, mcordts/cityscapesScripts): ids 0-33 as listed there,
anything else -> 255. mmseg makes the trainIds files with ``tools/dataset_converters/cityscapes.py``
(``json2labelImg(..., 'trainIds')``), which draws the same polygons in the same order as the labelIds files and
skips the same ones (negative id, the licence plate), so both routes give the same image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...data.classes import make_table
from .base import DatasetError, SegDataset, SegSample, list_files, read_label_png, read_rgb

IMG_SUFFIX = "_leftImg8bit.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"

# mmseg CityscapesDataset.METAINFO (mmseg/datasets/cityscapes.py): the 19 evaluated classes and colours.
CITYSCAPES_CLASSES = make_table("cityscapes", [
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)), ("person", (220, 20, 60)), ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
])

# cityscapesscripts labels.py: label id -> trainId for ids 0..33 (255 = ignored in evaluation).
ID_TO_TRAIN_ID: dict[int, int] = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3, 13: 4,
    14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """(H, W) Cityscapes label ids -> (H, W) uint8 train ids; ids outside 0..33 become 255."""
    lut = np.full(256, 255, np.uint8)
    for k, v in ID_TO_TRAIN_ID.items():
        lut[k] = v
    return lut[np.asarray(label_ids, np.uint8)]


class Cityscapes(SegDataset):
    """Reader for Cityscapes ``leftImg8bit`` + ``gtFine`` (module docstring)."""

    name = "cityscapes"

    def __init__(self, root: str | Path, split: str = "val") -> None:
        super().__init__(root, split)
        self.classes = CITYSCAPES_CLASSES
        self.image_dir = self.root / "leftImg8bit" / split
        self.gt_dir = self.root / "gtFine" / split
        if not self.image_dir.is_dir():
            raise DatasetError(f"cityscapes: {self.image_dir} not found; --root must be the folder holding "
                               "leftImg8bit/ and gtFine/")
        if not self.gt_dir.is_dir():
            raise DatasetError(f"cityscapes: {self.gt_dir} not found (the gtFine annotations of split {split!r})")
        self.images = list_files(self.image_dir, IMG_SUFFIX)
        if not self.images:
            raise DatasetError(f"cityscapes: no *{IMG_SUFFIX} images under {self.image_dir}")
        self.ids = [str(p.relative_to(self.image_dir).with_suffix("").as_posix()) for p in self.images]

    def gt_paths(self, index: int) -> tuple[Path, Path]:
        """(labelTrainIds path, labelIds path) of sample ``index`` (either may be missing)."""
        rel = self.images[index].relative_to(self.image_dir)
        stem = rel.name[: -len(IMG_SUFFIX)]
        folder = self.gt_dir / rel.parent
        return folder / f"{stem}{TRAIN_IDS_SUFFIX}", folder / f"{stem}{LABEL_IDS_SUFFIX}"

    def load(self, index: int) -> SegSample:
        train_ids, label_ids = self.gt_paths(index)
        if train_ids.is_file():
            labels, source = read_label_png(train_ids), train_ids
        elif label_ids.is_file():
            labels, source = label_ids_to_train_ids(read_label_png(label_ids)), label_ids
        else:
            raise DatasetError(f"cityscapes: sample {self.ids[index]} has neither {train_ids.name} nor "
                               f"{label_ids.name} in {train_ids.parent}")
        image = self.images[index]
        return SegSample(self.ids[index], labels, lambda: read_rgb(image),
                         {"image": str(image), "labels": str(source)})
