"""Semantic class tables: the names, display colours and ignore index that give label images their meaning.

A label image is an (H, W) array of class indices ``0 .. len(table) - 1``; pixels equal to ``ignore_index``
(255, the mmsegmentation convention) carry no label. The same table travels with a dataset (``dataset.json``
of a synthetic folder), with segmentation weights and with evaluation results, so a class index is never
interpreted against the wrong list of names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

IGNORE_INDEX = 255
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassTable:
    """Names and colours of ``len(names)`` classes, indexed 0..N-1.

    Attributes:
        name: what the table is (``"cityscapes"``, ``"ade20k"``, ``"synth"``, ...).
        names: class names, index order.
        colors: one (R, G, B) uint8 colour per class, used by :meth:`colorize`.
        ignore_index: label value meaning "no label" (never a class index).
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(f"class table {self.name!r}: {len(self.names)} names but {len(self.colors)} colours")
        if not self.names:
            raise ValueError(f"class table {self.name!r} is empty")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"class table {self.name!r}: class names repeat")
        if 0 <= self.ignore_index < len(self.names):
            raise ValueError(f"class table {self.name!r}: ignore_index {self.ignore_index} is a class index")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.colors):
            raise ValueError(f"class table {self.name!r}: colours must be (R, G, B) in 0..255")
        object.__setattr__(self, "colors", tuple(tuple(int(v) for v in c) for c in self.colors))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of class ``name``.

        Raises:
            KeyError: naming the table and the unknown class.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"class table {self.name!r} has no class {name!r}") from None

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 lookup table: class colours, then black (the ignore index and unused values)."""
        lut = np.zeros((256, 3), np.uint8)
        n = min(len(self.colors), 256)
        lut[:n] = np.asarray(self.colors[:n], np.uint8)
        return lut

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) integer labels -> (H, W, 3) uint8 RGB; ignored and out-of-range values are black."""
        lab = np.asarray(labels)
        if not np.issubdtype(lab.dtype, np.integer):
            raise TypeError(f"labels must be an integer array, got {lab.dtype}")
        lut = np.zeros((len(self.colors) + 1, 3), np.uint8)
        lut[:-1] = np.asarray(self.colors, np.uint8)
        idx = np.where((lab >= 0) & (lab < len(self.colors)), lab, len(self.colors))
        return lut[idx]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``dataset.json`` and weight metadata store)."""
        return {"name": self.name, "ignore_index": self.ignore_index,
                "classes": [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(zip(self.names,
                                                                                                 self.colors))]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "class table") -> ClassTable:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: naming ``where`` for a malformed table (missing keys, ids out of order).
        """
        try:
            classes = d["classes"]
            if [int(c["id"]) for c in classes] != list(range(len(classes))):
                raise ValueError("class ids must be 0, 1, 2, ... in order")
            return cls(str(d.get("name", "custom")), tuple(str(c["name"]) for c in classes),
                       tuple(tuple(int(v) for v in c["color"]) for c in classes),  # type: ignore[misc]
                       int(d.get("ignore_index", IGNORE_INDEX)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: malformed class table ({type(e).__name__}: {e})") from None


def make_table(name: str, entries: Sequence[tuple[str, RGB]], ignore_index: int = IGNORE_INDEX) -> ClassTable:
    """A :class:`ClassTable` from ``(name, colour)`` pairs in index order."""
    return ClassTable(name, tuple(n for n, _ in entries), tuple(c for _, c in entries), ignore_index)
