"""Helpers for the pseudo-label and student tests: a tiny teacher file, image tar shards, image folders."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import lively_model, tiny_spec
from depthany.weights import save_weights


def write_teacher(path: str | Path, seed: int = 0) -> Path:
    """A 6-block, 32-wide V2 relative model with lively random weights, as depthany ``.safetensors``."""
    spec = tiny_spec()
    return save_weights(lively_model(spec, seed).state_dict(), spec, path)


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def random_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth-ish random colours (a coarse random grid upsampled) so resizing does not alias wildly."""
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def write_tar_shards(folder: str | Path, shards: int, per_shard: int, seed: int = 0,
                     sizes: tuple[tuple[int, int], ...] = ((40, 56), (56, 40)), prefix: str = "train") -> list[Path]:
    """``shards`` WebDataset shards ``<prefix>-000000.tar`` ... with ``per_shard`` PNG samples each (plus a
    ``.cls`` member, as real datasets carry extra members); image sizes cycle through ``sizes``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for s in range(shards):
        path = folder / f"{prefix}-{s:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(per_shard):
                h, w = sizes[(s * per_shard + i) % len(sizes)]
                key = f"{prefix}{s:03d}/img{i:04d}"
                for ext, data in (("png", png_bytes(random_rgb(rng, h, w))), ("cls", str(i).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        out.append(path)
    return out


def write_image_folder(folder: str | Path, n: int, seed: int = 1, size: tuple[int, int] = (36, 48)) -> Path:
    """``n`` PNG files in ``folder`` (names with dots, to exercise key sanitising)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(random_rgb(rng, *size)).save(folder / f"photo.{i:03d}.png")
    return folder


STUDENT_RECIPE = """
name: student-test
seed: 0
device: cpu
model:
  name: da2-mini
  custom: {embed_dim: 32, depth: 6, num_heads: 2, layers: [0, 2, 3, 5], features: 16, out_channels: [8, 16, 32, 32]}
data:
  sources:
    - {path: LABELED, kind: labeled, weight: 1.0}
    - {path: LABELS, kind: pseudo, weight: 2.0}
  crop_size: 42
  scale: [1.0, 1.25]
optim: {lr: 3.0e-4, warmup_steps: 1}
loss:
  objective: student
  gm: 0.5
  gm_scales: 3
  options: {trim: 0.1, align: {encoder: TEACHER}}
train: {steps: 4, batch_size: 6, log_every: 1, ckpt_every: 2}
"""


def write_student_world(root: str | Path) -> dict[str, Path]:
    """A labeled RGB-D folder, a pseudo-labelled pool (tiny teacher, 42 px), a validation folder, the teacher
    and a student recipe using them: ``{"labeled", "labels", "val", "teacher", "recipe"}``."""
    from depthany.pseudo import LabelJob, pseudo_label
    from train_worlds import write_planes

    root = Path(root)
    teacher = write_teacher(root / "teacher.safetensors")
    labeled = write_planes(root / "labeled", n=8, seed=0)
    pool = write_planes(root / "pool", n=10, seed=1)
    val = write_planes(root / "val", n=3, seed=2)
    labels = root / "labels"
    pseudo_label(LabelJob((str(pool / "rgb"),), labels, str(teacher), input_size=42, batch_size=4, workers=0,
                          shard_size=4, device="cpu"), echo=lambda s: None)
    recipe = root / "student.yaml"
    recipe.write_text(STUDENT_RECIPE.replace("LABELED", str(labeled)).replace("LABELS", str(labels))
                      .replace("TEACHER", str(teacher)))
    return {"labeled": labeled, "labels": labels, "val": val, "teacher": teacher, "recipe": recipe}
