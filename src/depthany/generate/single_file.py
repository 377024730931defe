"""Single-file ControlNets: read the tensor shapes, work out the config, check the keys, load through diffusers.

Two layouts exist:

* **original** (lllyasviel's ``cldm``): ``control_model.input_blocks.1.0.in_layers.0.weight``,
  ``control_model.zero_convs.0.0.weight``, ``control_model.input_hint_block.0.weight``, ... (prefix optional;
  ``control_sd15_depth.pth``, ``control_v11f1p_sd15_depth.pth``);
* **diffusers** key names in one file without its ``config.json`` (Depth Anything's
  ``checkpoints_controlnet/diffusion_pytorch_model.safetensors``, or any ControlNet folder's weights renamed).

Neither carries a config. The shapes give everything that has a shape (channels, blocks, layers, text width,
the conditioning encoder, SDXL's extra embedding); the rest (attention heads, time-embedding details) is taken
from the base model's UNet, exactly as diffusers' ``ControlNetModel.from_unet`` does when a ControlNet is
created for training. A ``config.json`` of a ``ControlNetModel`` next to the file wins over both.

Loading goes through diffusers' own single-file path, ``ControlNetModel.from_single_file(file,
config=FOLDER)``, which converts the original layout and takes diffusers-named files as they are. Because that
path loads non-strictly, the file's keys and shapes are first checked against the model the config builds
(renamed to diffusers names for the original layout), and a mismatch is an error that lists the keys.
"""

from __future__ import annotations

import inspect
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import ControlNetFormatError

Shapes = dict[str, tuple[int, ...]]
ORIGINAL_PREFIX = "control_model."
_RESNET_NAMES = (("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
                 ("out_layers.0", "norm2"), ("out_layers.3", "conv2"), ("skip_connection", "conv_shortcut"))


def read_shapes(path: str | Path) -> Shapes:
    """Tensor name -> shape of a ``.safetensors`` (header only), ``.pth``/``.ckpt``/``.bin`` (memory-mapped)
    file. A ``state_dict`` entry holding the tensors (Lightning checkpoints) is unwrapped.

    Raises:
        ControlNetFormatError: unreadable, not a checkpoint, or no tensors (names the file).
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        obj = torch.load(p, map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:  # torch / safetensors raise many types for damaged files
        raise ControlNetFormatError(f"{p}: cannot read it as a ControlNet checkpoint ({type(e).__name__}: "
                                    f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    shapes = {k: tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not shapes:
        raise ControlNetFormatError(f"{p}: holds no tensors; not a ControlNet checkpoint")
    return shapes


def layout_of(shapes: Shapes, where: str = "file") -> str:
    """``"original"`` or ``"diffusers"``.

    Raises:
        ControlNetFormatError: neither (names the file and a few of its keys).
    """
    if any(k.startswith(ORIGINAL_PREFIX + "input_hint_block.") for k in shapes) or "input_hint_block.0.weight" in shapes:
        return "original"
    if "controlnet_cond_embedding.conv_in.weight" in shapes:
        return "diffusers"
    some = ", ".join(sorted(shapes)[:4])
    raise ControlNetFormatError(f"{where}: not a ControlNet checkpoint (no input_hint_block / "
                                f"controlnet_cond_embedding tensors; keys start with {some}, ...)")


def _indices(keys: list[str], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def original_to_diffusers_names(shapes: Shapes, where: str = "file") -> dict[str, str]:
    """Original (cldm) tensor name -> the diffusers ``ControlNetModel`` name, for every ControlNet tensor.

    Tensors outside the ControlNet (a full ``control_sd15_*.pth`` also holds Stable Diffusion itself) are left
    out.

    Raises:
        ControlNetFormatError: input blocks that do not form equal down blocks (names the file).
    """
    prefix = ORIGINAL_PREFIX if any(k.startswith(ORIGINAL_PREFIX) for k in shapes) else ""
    keys = [k[len(prefix):] for k in shapes if k.startswith(prefix)]
    n_in = len(_indices(keys, r"input_blocks\.(\d+)\."))
    n_down = len(_indices(keys, r"input_blocks\.(\d+)\.0\.op\.weight$")) + 1
    if n_in < 2 or n_in % n_down:
        raise ControlNetFormatError(f"{where}: {n_in} input blocks do not make {n_down} equal down blocks")
    per = n_in // n_down  # layers per block + the downsampler slot
    hints = _indices(keys, r"input_hint_block\.(\d+)\.weight$")
    names: dict[str, str] = {}
    for k in keys:
        parts = k.split(".")
        new: str | None = None
        if parts[0] == "time_embed":
            new = {"0": "time_embedding.linear_1", "2": "time_embedding.linear_2"}.get(parts[1], "")
            new = f"{new}.{parts[-1]}" if new else None
        elif parts[0] == "label_emb":
            new = {"0": "add_embedding.linear_1", "2": "add_embedding.linear_2"}.get(parts[2], "")
            new = f"{new}.{parts[-1]}" if new else None
        elif parts[0] == "input_blocks":
            i, sub, rest = int(parts[1]), parts[2], ".".join(parts[3:])
            if i == 0:
                new = f"conv_in.{rest}"
            else:
                block, layer = (i - 1) // per, (i - 1) % per
                if sub == "0" and rest.startswith("op."):
                    new = f"down_blocks.{block}.downsamplers.0.conv.{rest[3:]}"
                elif sub == "0":
                    new = f"down_blocks.{block}.resnets.{layer}.{_resnet(rest)}"
                elif sub == "1":
                    new = f"down_blocks.{block}.attentions.{layer}.{rest}"
        elif parts[0] == "middle_block":
            rest = ".".join(parts[2:])
            new = {"0": f"mid_block.resnets.0.{_resnet(rest)}", "1": f"mid_block.attentions.0.{rest}",
                   "2": f"mid_block.resnets.1.{_resnet(rest)}"}.get(parts[1])
        elif parts[0] == "zero_convs":
            new = f"controlnet_down_blocks.{parts[1]}.{parts[-1]}"
        elif parts[0] == "middle_block_out":
            new = f"controlnet_mid_block.{parts[-1]}"
        elif parts[0] == "input_hint_block" and hints:
            j = int(parts[1])
            where_in = ("conv_in" if j == hints[0] else "conv_out" if j == hints[-1]
                        else f"blocks.{hints.index(j) - 1}")
            new = f"controlnet_cond_embedding.{where_in}.{parts[-1]}"
        if new is None:
            raise ControlNetFormatError(f"{where}: unexpected tensor {prefix + k!r} in an original-layout ControlNet")
        names[prefix + k] = new
    return names


def _resnet(rest: str) -> str:
    for old, new in _RESNET_NAMES:
        if rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def diffusers_shapes(shapes: Shapes, where: str = "file") -> tuple[str, Shapes]:
    """(layout, the ControlNet's tensor shapes under diffusers names)."""
    layout = layout_of(shapes, where)
    if layout == "diffusers":
        return layout, dict(shapes)
    return layout, {new: shapes[old] for old, new in original_to_diffusers_names(shapes, where).items()}


def infer_config(shapes: Shapes) -> dict[str, Any]:
    """The ``ControlNetModel`` config values that tensor shapes (diffusers names) determine.

    Returns keys: in_channels, block_out_channels, layers_per_block, down_block_types,
    transformer_layers_per_block, cross_attention_dim, use_linear_projection, mid_block_type,
    conditioning_channels, conditioning_embedding_out_channels, addition_embed_type and, for SDXL-style
    ControlNets, projection_class_embeddings_input_dim.
    """
    keys = list(shapes)
    blocks = _indices(keys, r"down_blocks\.(\d+)\.")
    channels = [shapes[f"down_blocks.{b}.resnets.0.conv1.weight"][0] for b in blocks]
    layers = len(_indices(keys, r"down_blocks\.0\.resnets\.(\d+)\."))
    types, depth = [], []
    for b in blocks:
        t = _indices(keys, rf"down_blocks\.{b}\.attentions\.0\.transformer_blocks\.(\d+)\.")
        types.append("CrossAttnDownBlock2D" if t else "DownBlock2D")
        depth.append(len(t) or 1)
    to_k = next((s for k, s in shapes.items() if k.endswith("attn2.to_k.weight")), None)
    proj_in = next((s for k, s in shapes.items() if k.endswith("attentions.0.proj_in.weight")), None)
    hint = _indices(keys, r"controlnet_cond_embedding\.blocks\.(\d+)\.weight")
    cfg: dict[str, Any] = {
        "in_channels": shapes["conv_in.weight"][1],
        "block_out_channels": channels,
        "layers_per_block": layers,
        "down_block_types": types,
        "transformer_layers_per_block": depth[0] if len(set(depth)) == 1 else depth,
        "cross_attention_dim": to_k[1] if to_k is not None else None,
        "use_linear_projection": proj_in is not None and len(proj_in) == 2,
        "mid_block_type": ("UNetMidBlock2DCrossAttn" if any(k.startswith("mid_block.attentions.") for k in keys)
                           else "UNetMidBlock2D"),
        "conditioning_channels": shapes["controlnet_cond_embedding.conv_in.weight"][1],
        "conditioning_embedding_out_channels": [shapes["controlnet_cond_embedding.conv_in.weight"][0]] +
        [shapes[f"controlnet_cond_embedding.blocks.{i}.weight"][0] for i in hint if i % 2 == 1],
        "addition_embed_type": "text_time" if "add_embedding.linear_1.weight" in shapes else None,
    }
    if cfg["addition_embed_type"]:
        cfg["projection_class_embeddings_input_dim"] = shapes["add_embedding.linear_1.weight"][1]
    return cfg


def controlnet_config(shapes: Shapes, unet: dict[str, Any]) -> dict[str, Any]:
    """A complete ``ControlNetModel`` config: the base UNet's values (as ``ControlNetModel.from_unet`` copies
    them) overridden by what the shapes determine (:func:`infer_config`)."""
    from diffusers import ControlNetModel

    params = set(inspect.signature(ControlNetModel.__init__).parameters) - {"self"}
    cfg = {k: v for k, v in unet.items() if k in params}
    cfg.update(infer_config(shapes))
    return cfg


def sibling_config(path: Path) -> dict[str, Any] | None:
    """The ``config.json`` next to a weights file when it describes a ``ControlNetModel``, else None."""
    cfg_path = path.parent / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) and cfg.get("_class_name") == "ControlNetModel" else None


def expected_shapes(config: dict[str, Any]) -> Shapes:
    """The tensor shapes of a ``ControlNetModel`` built from ``config`` (built on the meta device: no memory)."""
    from diffusers import ControlNetModel

    with torch.device("meta"):
        model = ControlNetModel.from_config(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_keys(found: Shapes, config: dict[str, Any], where: str) -> None:
    """Every tensor the config's model needs is in the file with the right shape, and nothing else is.

    Raises:
        ControlNetFormatError: listing up to five missing, unexpected and mis-shaped tensors.
    """
    want = expected_shapes(config)
    missing = sorted(set(want) - set(found))
    extra = sorted(set(found) - set(want))
    shaped = sorted(k for k in set(want) & set(found) if want[k] != found[k])
    if not (missing or extra or shaped):
        return
    parts = []
    for what, ks in (("missing", missing), ("unexpected", extra), ("wrong shape", shaped)):
        if ks:
            shown = ", ".join(f"{k} {found[k]} (want {want[k]})" if what == "wrong shape" else k for k in ks[:5])
            parts.append(f"{len(ks)} {what}: {shown}{', ...' if len(ks) > 5 else ''}")
    raise ControlNetFormatError(f"{where}: the weights do not match the ControlNet config; " + "; ".join(parts))


def load_single_file(path: str | Path, config: dict[str, Any], dtype: torch.dtype = torch.float32,
                     shapes: Shapes | None = None) -> Any:
    """Load a single-file ControlNet through ``ControlNetModel.from_single_file`` with ``config``.

    Args:
        path: the weights file (either layout).
        config: its full ``ControlNetModel`` config (:func:`controlnet_config` or :func:`sibling_config`).
        dtype: parameter dtype.
        shapes: the file's tensor shapes under diffusers names, when already read (:func:`diffusers_shapes`).

    Returns:
        the ``diffusers.ControlNetModel`` (eval mode, on the CPU).

    Raises:
        ControlNetFormatError: the file's tensors do not match the config (checked before loading).
    """
    from diffusers import ControlNetModel

    p = Path(path)
    if shapes is None:
        _, shapes = diffusers_shapes(read_shapes(p), str(p))
    check_keys(shapes, config, str(p))
    kwargs = {} if dtype == torch.float32 else {"dtype": dtype}  # fp32: no cast (and no cast warning)
    with tempfile.TemporaryDirectory(prefix="depthany-controlnet-") as folder:
        clean = {k: v for k, v in config.items() if not k.startswith("_")}
        (Path(folder) / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", **clean}))
        model = ControlNetModel.from_single_file(str(p), config=folder, local_files_only=True, **kwargs)
    if any(t.is_meta for t in model.parameters()):  # low-memory loading leaves unloaded tensors on meta
        raise ControlNetFormatError(f"{p}: some ControlNet weights were not loaded")
    return model
