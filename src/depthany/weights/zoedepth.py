"""V1 metric (ZoeDepth) checkpoints: recognise them and read the head variant from their shapes.

The released files (``depth_anything_metric_depth_{indoor,outdoor}.pt``) are ZoeDepth training checkpoints,
``{"model": state_dict, "optimizer": None, "epoch": N}``, with keys ``core.core.pretrained.*``,
``core.core.depth_head.*`` and the head's ``conv2``, ``seed_bin_regressor``, ``seed_projector``, ``projectors``,
``attractors`` and ``conditional_log_binomial``. They carry no configuration, so the zoo entry supplies the
numbers a state dict cannot show (depth range, attractor strength, temperatures, network size) and the shapes
decide the rest: the number of bins, the embedding width, the attractor counts, and whether the attractors are
the normed kind (two output channels per attractor) or the softplus kind (one).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import Tensor

from .. import zoo
from .errors import WeightsError

ZOE_CORE = "core.core."  # prefix of the relative model inside a ZoeDepth state dict
ZOE_HEAD_PREFIXES = ("conv2.", "seed_bin_regressor.", "seed_projector.", "projectors.", "attractors.",
                     "conditional_log_binomial.")


def is_zoe_state(sd: dict[str, Tensor]) -> bool:
    """True for a ZoeDepth state dict (a ``core.core.pretrained.*`` encoder)."""
    return any(k.startswith(ZOE_CORE + "pretrained.") for k in sd)


def _shape(sd: dict[str, Tensor], key: str, where: Path | str) -> tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"{where}: a ZoeDepth checkpoint without {key}; the file is incomplete or not a "
                           "ZoeDepth model")
    return tuple(sd[key].shape)


def detect_zoe_config(sd: dict[str, Tensor], base: zoo.ZoeConfig, where: Path | str = "state dict") -> zoo.ZoeConfig:
    """The head configuration of a ZoeDepth state dict: ``base`` with what the shapes show replaced.

    ``n_bins``, ``bin_embedding_dim`` and ``n_attractors`` are read from the seed regressor, seed projector and
    attractor output convolutions. An attractor with 2n outputs is the normed kind, with n the softplus kind:
    the counts are compared with ``base.n_attractors`` (an odd count can only be softplus). When the kind differs
    from ``base``, the official configuration of that kind is taken (:data:`depthany.zoo.ZOE_PRESETS`: normed ->
    ``config_zoedepth_kitti.json``, 384x768; softplus -> ``config_zoedepth.json``, 392x518), because the seed
    regressor has the same shapes either way and those are the only official configurations of each kind.

    Raises:
        WeightsError: head keys missing, or attractor counts that fit neither kind.
    """
    n_bins = _shape(sd, "seed_bin_regressor._net.2.weight", where)[0]
    embed = _shape(sd, "seed_projector._net.2.weight", where)[0]
    counts = tuple(_shape(sd, f"attractors.{i}._net.2.weight", where)[0] for i in range(4))
    if counts == base.n_attractors:
        normed = False
    elif counts == tuple(2 * n for n in base.n_attractors):
        normed = True
    elif any(c % 2 for c in counts):
        normed = False
    else:
        raise WeightsError(f"{where}: attractor output channels {list(counts)} fit neither {list(base.n_attractors)} "
                           f"softplus attractors nor {list(base.n_attractors)} normed ones (two channels each); "
                           "save the model as a depthany .safetensors file, which stores its configuration")
    n_attractors = tuple(c // 2 for c in counts) if normed else counts
    cfg = base
    if normed != base.normed_attractors:
        cfg = zoo.ZOE_PRESETS["normed" if normed else "softplus"]
    return dataclasses.replace(cfg, n_bins=n_bins, bin_embedding_dim=embed,
                               n_attractors=n_attractors)  # type: ignore[arg-type]


def zoe_spec_for_state(spec: zoo.ModelSpec, sd: dict[str, Tensor], where: Path | str) -> zoo.ModelSpec:
    """``spec`` (a ZoeDepth zoo entry) with the head variant the state dict holds (see :func:`detect_zoe_config`).

    Raises:
        WeightsError: ``spec`` is not a ZoeDepth model, or the head cannot be read.
    """
    base = spec.arch.zoe
    if base is None:
        raise WeightsError(f"{where}: a ZoeDepth (V1 metric) checkpoint, but model {spec.name} is not a ZoeDepth "
                           f"model; use one of {', '.join(zoe_model_names())}")
    cfg = detect_zoe_config(sd, base, where)
    if cfg == base:
        return spec
    extra = {**spec.extra, "zoe_head": f"{cfg.bin_centers_type} head read from the file's shapes "
                                       f"(the zoo entry has {base.bin_centers_type})"}
    return dataclasses.replace(spec, arch=dataclasses.replace(spec.arch, zoe=cfg), extra=extra)


def zoe_model_names() -> list[str]:
    """The zoo's ZoeDepth entries."""
    return [n for n, s in zoo.MODELS.items() if s.arch.zoe is not None]
