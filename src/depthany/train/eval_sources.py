"""Training data from the evaluation readers' *training* splits: NYUv2 (795 labeled images), KITTI (Eigen train).

One parser per benchmark: these sources open the same readers ``depthany eval`` uses
(:func:`depthany.eval.datasets.open_dataset`), so a decoding rule (NYU's reversed MATLAB axes, KITTI's
``/256`` and KB crop, ...) exists once. Select them in a recipe with ``data.sources.N.kind``:

``nyuv2``
    ``path`` = the folder with ``nyu_depth_v2_labeled.mat`` + ``splits.mat`` (or a BTS / Marigold export);
    ``split`` defaults to ``train`` (``trainNdxs``: 795 images). Depth is ``rawDepths`` (0 = no Kinect value).
``kitti``
    ``path`` = KITTI raw + ``data_depth_annotated``; ``split`` defaults to ``eigen_train``, read from
    ``eigen_train_files_with_gt.txt`` (BTS) or ``kitti_eigen_train_files_with_gt.txt`` (ZoeDepth) in ``path``,
    or ``options.list_file``. Image and GT are KB-cropped to 352x1216 (``options.kb_crop: false`` to keep the
    frame); GT is sparse LiDAR, 0 = none.
``eval``
    any other reader: ``options.dataset`` names it (``diode``, ``filelist``, ``rgbd``, ...).

``options`` are the reader's own (``layout``, ``depth``, ``list_file``, ``kb_crop``, ``image_root``,
``gt_root``, ``depth_scale``, ...) plus ``valid_crop`` (``none``, ``nyu_eigen``, ``kitti_garg``,
``kitti_eigen``: supervise only inside that evaluation box) and ``allow_test_split`` (test splits are refused
unless true, so a benchmark is not trained on by accident). A pixel is supervised where the GT depth is
finite and > 0 (and inside a mask file and ``valid_crop``); the metric objective then keeps
``loss.min_depth <= depth <= model.max_depth``. Augmentation is the recipe's (``data.crop_size``, ``scale``,
``hflip``), exactly as for RGB-D folders.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from ..eval.crops import CROPS, crop_mask
from ..eval.datasets import DATASETS, DatasetError, EvalDataset, EvalSample, open_dataset
from ..zoo import Preprocess
from .augment import training_sample
from .config import DataCfg, RecipeError, SourceCfg
from .data import Batch

# The training split each reader defaults to, and the splits refused without ``allow_test_split``.
TRAIN_SPLITS: dict[str, str] = {"nyuv2": "train", "kitti": "eigen_train"}
TEST_SPLITS = frozenset({"test", "eigen_test"})
SOURCE_OPTIONS = ("dataset", "valid_crop", "allow_test_split")


def sample_arrays(sample: EvalSample, valid_crop: str = "none") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An evaluation sample as training arrays.

    Returns:
        rgb (H, W, 3) uint8; depth (H, W) float32 metres, 0 where invalid; valid (H, W) bool: depth finite
        and > 0, AND the sample's mask file, AND the ``valid_crop`` box (placed as the evaluation places it,
        e.g. after KITTI's KB crop).
    """
    rgb = sample.rgb()
    depth = np.asarray(sample.depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if sample.mask is not None:
        valid &= sample.mask
    if valid_crop != "none":
        valid &= crop_mask(depth.shape, valid_crop, full_shape=sample.full_shape, offset=sample.offset)
    return rgb, np.where(valid, depth, 0.0).astype(np.float32), valid


class EvalSplitSource:
    """A ``data.sources`` entry backed by an evaluation reader (module docstring).

    Args:
        cfg: the source entry: ``path`` = dataset root, ``split``, ``options``.
        data: the recipe's data section (crop size, scale, flip).
        pre: the model's preprocessing (mean / std).
        key: the entry's dotted recipe key, for error messages.

    Raises:
        RecipeError: unknown dataset or option, a test split, or a dataset that cannot be indexed (naming
            ``key`` and the reader's message, which names the file).
    """

    dataset: ClassVar[str | None] = None  # fixed by the subclasses; None: options.dataset chooses

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        opts = dict(cfg.options)
        name = self.dataset or opts.get("dataset")
        if self.dataset is not None and "dataset" in opts:
            raise RecipeError(f"{key}.options.dataset: the {self.dataset} source reads {self.dataset} only; "
                              "use kind: eval to pick a reader by name")
        if name not in DATASETS:
            raise RecipeError(f"{key}.options.dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
        self.valid_crop = str(opts.get("valid_crop", "none"))
        if self.valid_crop not in CROPS:
            raise RecipeError(f"{key}.options.valid_crop: expected one of {', '.join(CROPS)}, got {self.valid_crop!r}")
        allow_test = opts.get("allow_test_split", False)
        if not isinstance(allow_test, bool):
            raise RecipeError(f"{key}.options.allow_test_split: expected true or false, got {allow_test!r}")
        split = cfg.split or TRAIN_SPLITS.get(name) or DATASETS[name][2]
        if split in TEST_SPLITS and not allow_test:
            raise RecipeError(f"{key}.split: {split!r} is the {name} benchmark's test split; training on it "
                              "makes its scores meaningless (set options.allow_test_split: true if you mean it)")
        self.name, self.root, self.split = name, cfg.path, split
        self.reader_options = {k: v for k, v in opts.items() if k not in SOURCE_OPTIONS}
        try:
            reader = open_dataset(name, cfg.path, split, **self.reader_options)
        except DatasetError as e:
            raise RecipeError(f"{key}.path: {e}") from None
        except ValueError as e:  # open_dataset: an option the reader does not take
            raise RecipeError(f"{key}.options: {e}") from None
        if len(reader) == 0:
            raise RecipeError(f"{key}.path: {name} split {split!r} at {cfg.path} holds no samples")
        self.count = len(reader)
        self.data, self.pre = data, pre
        self._reader: EvalDataset | None = reader
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.count

    def reader(self) -> EvalDataset:
        """This process's reader. DataLoader workers open their own: an HDF5 handle (NYU .mat) must not be
        shared across a fork, and cannot be pickled for a spawned worker."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = open_dataset(self.name, self.root, self.split, **self.reader_options)
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reader"] = None
        return state

    def load(self, index: int, rng: np.random.Generator) -> Batch:
        """Sample ``index``, cropped and flipped with ``rng``: ``image`` (3, S, S) normalised, ``depth`` (S, S)
        metres, ``valid`` (S, S) bool."""
        rgb, depth, valid = sample_arrays(self.reader().load(index), self.valid_crop)
        return training_sample(rgb, depth, valid, self.data, self.pre, rng)


class NYUv2TrainSource(EvalSplitSource):
    """NYUv2, split ``train`` by default (795 labeled images from ``nyu_depth_v2_labeled.mat`` + ``splits.mat``)."""

    dataset = "nyuv2"


class KITTITrainSource(EvalSplitSource):
    """KITTI annotated depth, split ``eigen_train`` by default (the BTS / ZoeDepth Eigen training list)."""

    dataset = "kitti"
