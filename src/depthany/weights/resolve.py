"""From what a user typed (zoo name, HF repo id, local path, ``--weights``) to weights, spec and a loaded model."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from .. import zoo
from ..models import DepthAnything, ImageNetwork, Network, VideoDepthAnything, ZoeDepth, build_network
from .errors import WeightsError
from .hub import fetch, fetch_repo
from .load import describe_arch, load_into
from .read import Checkpoint, read_checkpoint
from .zoedepth import zoe_model_names, zoe_spec_for_state

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def looks_like_path(name: str) -> bool:
    """True for an existing path, a weights file name, or anything starting with ``.``, ``/`` or ``~``."""
    p = Path(name).expanduser()
    return p.exists() or name.endswith((".pth", ".pt", ".bin", ".safetensors")) or name.startswith((".", "/", "~"))


def _in_zoo(name: str) -> bool:
    try:
        zoo.get_spec(name)
    except ValueError:
        return False
    return True


def spec_for_checkpoint(ckpt: Checkpoint, requested: zoo.ModelSpec | None) -> zoo.ModelSpec:
    """The spec to use with ``ckpt``: the requested zoo entry (checked against what the file says about
    itself), else the file's own spec or config, else a zoo entry whose published file name matches.

    Official ZoeDepth files describe nothing about themselves: the requested (or file-name) entry supplies the
    configuration and the file's shapes choose the head variant (:func:`.zoedepth.zoe_spec_for_state`).

    Raises:
        WeightsError: the file contradicts ``requested``, or nothing says whether it is V1, V2 or metric.
    """
    if ckpt.layout == "zoedepth" and ckpt.arch is None:  # (a depthany training checkpoint carries its spec)
        base = requested if requested is not None else _spec_from_filename(ckpt.path.name)
        if base is None:
            raise WeightsError(f"{ckpt.path}: a V1 metric (ZoeDepth) checkpoint whose file name does not say which "
                               f"model it is; name it with --model (one of: {', '.join(zoe_model_names())})")
        return zoe_spec_for_state(base, ckpt.state_dict, ckpt.path)
    if requested is not None and requested.arch.zoe is not None and ckpt.arch is None:
        raise WeightsError(f"{ckpt.path}: model {requested.name} is a V1 metric (ZoeDepth) model, but the file holds "
                           f"no ZoeDepth head (no core.core.* / attractors.* keys; layout {ckpt.layout})")
    if requested is not None:
        if ckpt.arch is not None and ckpt.arch != requested.arch:
            raise WeightsError(f"{ckpt.path}: the file describes {describe_arch(ckpt.arch)}, but model "
                               f"{requested.name} is {describe_arch(requested.arch)}; drop --model to use the "
                               "file's own description")
        return requested
    if ckpt.spec is not None:
        return ckpt.spec
    if ckpt.arch is not None:
        pre = {"v1": zoo.V1_PRE, "da3": zoo.DA3_PRE}.get(ckpt.arch.family, zoo.V2_PRE)
        return zoo.ModelSpec(ckpt.path.name, ckpt.arch, pre, (), "unknown (local file)",
                             description=f"local weights {ckpt.path}")
    by_name = _spec_from_filename(ckpt.path.name)
    if by_name is not None:
        return by_name
    from .config import infer_encoder

    enc = infer_encoder(ckpt.state_dict, ckpt.path)
    names = [n for n, s in zoo.MODELS.items() if s.arch.encoder == enc]
    raise WeightsError(f"{ckpt.path}: a {enc.name} checkpoint whose file does not say whether it is V1, V2 or "
                       f"metric; name the model with --model (one of: {', '.join(names)})")


def _spec_from_filename(filename: str) -> zoo.ModelSpec | None:
    """The zoo entry that publishes a ``.pth`` / ``.pt`` of exactly this name (official files do not describe
    themselves)."""
    for spec in zoo.MODELS.values():
        for src in spec.weights:
            if src.filename and src.filename.endswith((".pth", ".pt")) and Path(src.filename).name == filename:
                return spec
    return None


def resolve_spec(model: str | None) -> zoo.ModelSpec:
    """The zoo spec for a name or alias; the bundled default model when ``model`` is None."""
    return zoo.get_spec(model or zoo.BUNDLED_NAME)


def resolve_checkpoint(model: str | None = None, weights: str | Path | None = None,
                       encoder_only: bool = False) -> tuple[Checkpoint, zoo.ModelSpec | None]:
    """Read the weights a user named, and the spec that goes with them.

    Args:
        model: zoo name, alias (``depth-anything/Depth-Anything-V2-Small-hf``: prefers that repo's files), a
            transformers-format Hugging Face repo id outside the zoo, or a local path. None: the bundled model,
            or whatever ``weights`` describes.
        weights: a local file or folder in any supported layout; with ``model`` a zoo name, it must fit it.
        encoder_only: allow DINOv2 encoder checkpoints (returned with spec None unless ``model`` names one).

    Returns:
        (checkpoint in official key names, spec; ``spec.extra["weights"]`` is the path read).

    Raises:
        WeightsError / WeightsNotFound: naming the file or repo and what is wrong or missing.
        ValueError: an unknown model name.
    """
    if model is not None and weights is None and looks_like_path(model):
        model, weights = None, model
    if weights is None and model is not None and not _in_zoo(model) and _REPO_ID.fullmatch(model.strip()):
        ckpt = read_checkpoint(fetch_repo(model.strip()))
        if ckpt.arch is None:
            raise WeightsError(f"{model}: the repo's weights come without a Depth Anything config.json")
        spec = dataclasses.replace(spec_for_checkpoint(ckpt, None), name=model.strip(),
                                   licence="see the repo's model card", description=f"Hugging Face repo {model}")
    elif weights is not None:
        ckpt = read_checkpoint(weights)
        requested = zoo.get_spec(model) if model else None
        if ckpt.layout == "dinov2":
            if not encoder_only:
                raise WeightsError(f"{ckpt.path}: a DINOv2 encoder checkpoint has no depth head; use it to "
                                   "initialise training (encoder_only), not as a depth model")
            return ckpt, requested
        spec = spec_for_checkpoint(ckpt, requested)
    else:
        spec = resolve_spec(model)
        ckpt = read_checkpoint(fetch(spec, zoo.preferred_source(spec, model)))
        spec = spec_for_checkpoint(ckpt, spec)
    return ckpt, dataclasses.replace(spec, extra={**spec.extra, "weights": str(ckpt.path)})


def load_network(
    model: str | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Network, zoo.ModelSpec]:
    """Build and strictly load any zoo network (:data:`depthany.models.Network`): a
    :class:`~depthany.models.DepthAnything` (V1, V2), a :class:`~depthany.models.ZoeDepth` for the V1 metric
    models, a :class:`~depthany.models.VideoDepthAnything` or a :class:`~depthany.models.DepthAnything3`.
    Arguments, returns and errors as :func:`load_model`."""
    ckpt, spec = resolve_checkpoint(model, weights)
    assert spec is not None  # only encoder_only=True returns no spec
    return _build_and_load(ckpt, spec, device, dtype), spec


def _build_and_load(ckpt: Checkpoint, spec: zoo.ModelSpec, device: str | torch.device, dtype: torch.dtype) -> Network:
    with torch.device("meta"):
        net = build_network(spec.arch)
    net = net.to_empty(device="cpu")
    load_into(net, ckpt)
    return net.to(device=device, dtype=dtype).eval()


def load_model(
    model: str | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[ImageNetwork, zoo.ModelSpec]:
    """Build and strictly load a model: a :class:`~depthany.models.DepthAnything`, or a
    :class:`~depthany.models.ZoeDepth` for the V1 metric models (``da1-metric-*``, ZoeDepth checkpoints).

    Args:
        model: zoo name, Hugging Face alias (``depth-anything/Depth-Anything-V2-Small-hf``), a
            transformers-format Hugging Face repo id, or a local weights path. None means the bundled default
            model (or the architecture described by ``weights``).
        weights: explicit weights file/folder; with ``model`` a zoo name, the file must fit that architecture.
        device: where the model lives.
        dtype: parameter dtype (float32 for the exact path; ZoeDepth's integer bin-index buffer stays int64).

    Returns:
        (model in eval mode, its spec; ``spec.extra["weights"]`` names the file loaded).

    Raises:
        WeightsError / WeightsNotFound: with the file and what is wrong or missing.
        ValueError: unknown model name.
    """
    ckpt, spec = resolve_checkpoint(model, weights)
    assert spec is not None  # only encoder_only=True returns no spec
    if spec.arch.temporal is not None:
        raise WeightsError(f"{spec.name}: a Video Depth Anything model, which runs on clips, not single images; "
                           "load it with depthany.weights.load_video_model and run depthany.video.vda")
    if spec.arch.is_da3:
        raise WeightsError(f"{spec.name} is a Depth Anything 3 model, which this loader does not build; use "
                           "depthany.weights.load_network and the functions of depthany.da3")
    net = _build_and_load(ckpt, spec, device, dtype)
    assert isinstance(net, DepthAnything | ZoeDepth)
    return net, spec


def load_video_model(
    model: str | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[VideoDepthAnything, zoo.ModelSpec]:
    """Build and strictly load a Video Depth Anything model (``vda-*`` zoo names, their repos, or files).

    Arguments and errors as :func:`load_model`; an image model is refused with a :class:`WeightsError`.
    Official ``.pth`` files load with their own keys, temporal positional-encoding buffers included.
    """
    ckpt, spec = resolve_checkpoint(model, weights)
    assert spec is not None
    if spec.arch.temporal is None or spec.video is None:
        raise WeightsError(f"{spec.name}: not a Video Depth Anything model (no temporal modules); use load_model")
    net = _build_and_load(ckpt, spec, device, dtype)
    assert isinstance(net, VideoDepthAnything)
    return net, spec
