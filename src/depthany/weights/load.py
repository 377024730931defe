"""Strict loading with a readable key report: every expected key present, nothing extra, every shape right.

Reading files lives in :mod:`.read`, ``config.json`` handling in :mod:`.config`; their public names are
re-exported here for callers that import them from ``depthany.weights.load``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .. import zoo
from .config import (  # noqa: F401 - re-exported
    SPEC_METADATA_KEY,
    arch_from_config,
    arch_to_transformers_config,
    infer_encoder,
    spec_from_json,
    spec_to_json,
)
from .errors import WeightsError
from .read import Checkpoint, Layout, read_checkpoint  # noqa: F401 - re-exported

# Keys a file may lack: the mask token is unused at inference and some ports drop it (loaded as zeros).
OPTIONAL_KEYS = frozenset({"pretrained.mask_token", "core.core.pretrained.mask_token"})


@dataclass
class KeyReport:
    """Differences between a state dict and a model's expected keys and shapes.

    Attributes:
        missing: expected keys absent from the file.
        unexpected: keys in the file the model does not have.
        mismatched: (key, model shape, file shape) for keys present in both with different shapes.
        defaulted: optional keys absent from the file and filled with zeros.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the state dict fits exactly (optional keys aside)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int = 12) -> str:
        """Human-readable summary, at most ``limit`` keys per category."""
        lines = []
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
                lines.append(f"  {len(items)} {title} key(s): " + ", ".join(items[:limit]) + more)
        if self.mismatched:
            lines.append(f"  {len(self.mismatched)} key(s) with the wrong shape:")
            lines += [f"    {k}: model {list(e)} vs file {list(g)}" for k, e, g in self.mismatched[:limit]]
            if len(self.mismatched) > limit:
                lines.append(f"    ... and {len(self.mismatched) - limit} more")
        return "\n".join(lines)


def _meta_model(arch: zoo.Arch) -> nn.Module:
    from ..models import build_network

    with torch.device("meta"):
        return build_network(arch)


def expected_shapes(arch: zoo.Arch) -> dict[str, tuple[int, ...]]:
    """Official key -> shape for ``arch``, computed on the meta device (no memory is allocated)."""
    return {k: tuple(v.shape) for k, v in _meta_model(arch).state_dict().items()}


def shared_key_groups(model: nn.Module, prefix: str = "") -> list[list[str]]:
    """Groups of state-dict keys that name one tensor (a module used in several places), in model order.

    Only DA3's any-view head has one: the four ``output_conv2_aux.{i}.2`` entries. ``safetensors``'
    ``save_model`` (behind ``PyTorchModelHubMixin.save_pretrained``) stores such a tensor once, under the
    alphabetically first name, so a file needs only one key of each group.
    """
    by_tensor: dict[int, list[str]] = {}
    for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        by_tensor.setdefault(id(t), []).append(prefix + name)
    return [names for names in by_tensor.values() if len(names) > 1]


def expected_key_groups(arch: zoo.Arch) -> list[list[str]]:
    """:func:`shared_key_groups` of the model for ``arch`` (meta device)."""
    return shared_key_groups(_meta_model(arch))


def compare_shapes(expected: dict[str, tuple[int, ...]], sd: dict[str, Tensor],
                   shared: list[list[str]] | None = None) -> KeyReport:
    """Compare a state dict with expected key -> shape; :data:`OPTIONAL_KEYS` may be absent, and of each group in
    ``shared`` (keys naming one tensor) one key is enough."""
    covered = {k for group in shared or [] if any(g in sd for g in group) for k in group}
    report = KeyReport()  # keys listed in model order (encoder first), unexpected ones in file order
    report.missing = [k for k in expected if k not in sd and k not in OPTIONAL_KEYS and k not in covered]
    report.defaulted = [k for k in expected if k not in sd and k in OPTIONAL_KEYS]
    report.unexpected = [k for k in sd if k not in expected]
    report.mismatched = [(k, shape, tuple(sd[k].shape)) for k, shape in expected.items()
                         if k in sd and tuple(sd[k].shape) != shape]
    return report


def compare_keys(model: nn.Module, sd: dict[str, Tensor], prefix: str = "") -> KeyReport:
    """Compare ``sd`` with ``model.state_dict()``, whose keys get ``prefix`` (``"pretrained."`` for an encoder)."""
    return compare_shapes({prefix + k: tuple(v.shape) for k, v in model.state_dict().items()}, sd,
                          shared_key_groups(model, prefix))


def describe_arch(arch: zoo.Arch) -> str:
    """One line naming the family, encoder, head and tapped layers."""
    md = f" max {arch.max_depth:g} m" if arch.max_depth else ""
    head = f"ZoeDepth ({arch.zoe.bin_centers_type})" if arch.zoe is not None else arch.head
    temporal = " + temporal modules" if arch.temporal is not None else ""
    if arch.views is not None:
        md += f", views alternate from block {arch.views.alt_start}"
    return f"{arch.family} {arch.encoder.name} {head}{md} head{temporal}, layers {list(arch.layers)}"


def check_fits(ckpt: Checkpoint, arch: zoo.Arch, encoder_only: bool = False) -> KeyReport:
    """Check ``ckpt`` against ``arch`` without building a model (meta device).

    Raises:
        WeightsError: naming the file and listing missing / unexpected / mis-shaped keys.
    """
    if encoder_only and arch.is_da3:
        raise WeightsError(f"{ckpt.path}: encoder-only use of Depth Anything 3 checkpoints is not supported")
    expected = expected_shapes(arch)
    sd = ckpt.state_dict
    if encoder_only:
        expected = {k: v for k, v in expected.items() if k.startswith("pretrained.")}
        sd = {k: v for k, v in sd.items() if k.startswith("pretrained.")}
    report = compare_shapes(expected, sd, expected_key_groups(arch))
    if not report.ok:
        raise WeightsError(f"{ckpt.path}: weights do not fit the model ({describe_arch(arch)}):\n{report.format()}")
    return report


def load_into(model: nn.Module, ckpt: Checkpoint, encoder_only: bool = False) -> KeyReport:
    """Strictly copy ``ckpt`` into ``model`` (any depthany network: :class:`~depthany.models.DepthAnything`,
    :class:`~depthany.models.ZoeDepth`, :class:`~depthany.models.VideoDepthAnything`), casting floating-point
    tensors to its dtype.

    Args:
        model: the network; its parameters and buffers are overwritten in place.
        ckpt: weights read by :func:`read_checkpoint`.
        encoder_only: load only the ``pretrained.*`` encoder (DINOv2 initialisation for training); the head
            keeps its current values and head keys in the file are ignored. Required for DINOv2 files.

    Returns:
        the key report (``defaulted`` lists optional keys that were absent and set to zero).

    Raises:
        WeightsError: naming the file and listing missing / unexpected / mis-shaped keys; or a DINOv2 encoder
            file loaded without ``encoder_only=True``.
    """
    if ckpt.layout == "dinov2" and not encoder_only:
        raise WeightsError(f"{ckpt.path}: a DINOv2 encoder checkpoint has no depth head; load it with "
                           "encoder_only=True (training initialisation), not as a full model")
    target: nn.Module = model.get_submodule("pretrained") if encoder_only else model
    prefix = "pretrained." if encoder_only else ""
    sd = {k: v for k, v in ckpt.state_dict.items() if k.startswith(prefix)}
    report = compare_keys(target, sd, prefix)
    if not report.ok:
        arch = getattr(model, "arch", None)
        what = describe_arch(arch) if isinstance(arch, zoo.Arch) else type(model).__name__
        raise WeightsError(f"{ckpt.path}: weights do not fit the model ({what}):\n{report.format()}")
    groups = {k: group for group in shared_key_groups(target, prefix) for k in group}
    with torch.no_grad():
        for k, t in target.state_dict().items():
            src = sd.get(prefix + k)
            if src is None and prefix + k in groups:
                continue  # one tensor under several names: filled from the name(s) the file has
            if src is not None:
                t.copy_(src.to(dtype=t.dtype))  # several names of one tensor: the last in model order wins
            else:  # an optional key (see OPTIONAL_KEYS)
                t.zero_()
    return report
