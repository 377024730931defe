"""``DepthGenerator``: photo -> depth -> ControlNet conditioning image -> a diffusers ControlNet pipeline.

Example:
    >>> from depthany.generate import DepthGenerator
    >>> gen = DepthGenerator.from_pretrained("depth-anything", depth_model="da2-large",   # doctest: +SKIP
    ...                                      device="cuda", precision="fp16")
    >>> out = gen.generate("room.jpg", "a cosy wooden cabin interior, warm light", seed=1)  # doctest: +SKIP
    >>> out.save("out/room")  # out/room_gen0.png, out/room_control.png, out/room_generate.json  # doctest: +SKIP

The depth model runs in fp32 (so the conditioning image equals ``depthany predict --format controlnet`` resized,
:mod:`depthany.generate.control`); ``precision`` applies to the diffusion models. Image ``k`` of a run uses a
CPU ``torch.Generator`` seeded with ``seed + k``, so it can be regenerated alone with that seed, on any device.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..io.atomic import write_text_atomic
from ..io.depth import write_png8
from ..io.image import as_rgb
from ..precision import PRECISIONS, Precision, torch_dtype
from ..predictor import DepthPredictor, ImageLike
from ..result import DepthResult
from ..runtime.devices import pick_device
from . import single_file, sources
from .control import MULTIPLE, conditioning_image, control_size
from .errors import GenerateError, ModelNotFound
from .known import DEFAULT_BASES, DEFAULT_CONTROLNET, KNOWN_CONTROLNETS, family_name, family_of
from .pairs import check_pair

CONDITIONING = ("depthany controlnet map (per-image min..max of nearness to 0..255, near = bright, 3 equal "
                "channels) at the photo's size, resized with Pillow bilinear")
MAX_IMAGES = 64
MAX_STEPS = 1000


def require_diffusers() -> Any:
    """Import diffusers, or say how to install it.

    Raises:
        GenerateError: diffusers is not installed.
    """
    try:
        import diffusers
    except ModuleNotFoundError:
        raise GenerateError("generation needs diffusers: pip install 'depthany[generate]'") from None
    return diffusers


@dataclass
class GenerateResult:
    """The output of one generation call.

    Attributes:
        images: generated images, each (H', W', 3) uint8 RGB.
        control: the conditioning image the ControlNet saw, (H', W', 3) uint8 (near = bright).
        seeds: the seed of each image (``seed + k``).
        settings: every setting, model, file and version, JSON-ready (written by :meth:`save`).
        depth: the depth prediction the control image was made from (None for :meth:`DepthGenerator.
            generate_from_control`).
        nsfw: per image, whether the base model's safety checker blanked it (False when it has none).
    """

    images: list[np.ndarray]
    control: np.ndarray
    seeds: list[int]
    settings: dict[str, Any]
    depth: DepthResult | None = None
    nsfw: list[bool] = field(default_factory=list)

    def save(self, base: str | Path) -> list[Path]:
        """Write ``<base>_gen<k>.png`` for each image, ``<base>_control.png`` and ``<base>_generate.json``
        (each atomically); returns the paths."""
        b = Path(base)
        b.parent.mkdir(parents=True, exist_ok=True)
        paths = [write_png8(b.with_name(f"{b.name}_gen{k}.png"), im) for k, im in enumerate(self.images)]
        paths.append(write_png8(b.with_name(f"{b.name}_control.png"), self.control))
        meta = {**self.settings, "outputs": [p.name for p in paths], "nsfw": self.nsfw}
        js = b.with_name(f"{b.name}_generate.json")
        write_text_atomic(js, json.dumps(meta, indent=1) + "\n")
        return [*paths, js]


class DepthGenerator:
    """A depth model and a diffusers ControlNet pipeline, ready to turn photos into new images.

    Build it with :meth:`from_pretrained`. ``pipe`` is the diffusers pipeline
    (``StableDiffusionControlNetPipeline`` or ``StableDiffusionXLControlNetPipeline``), ``depth`` the
    :class:`~depthany.predictor.DepthPredictor` (None: only :meth:`generate_from_control` works).
    """

    def __init__(self, pipe: Any, depth: DepthPredictor | None, controlnet: sources.ControlNetSource,
                 base: sources.BaseSource, precision: Precision = "fp32",
                 info: dict[str, Any] | None = None) -> None:
        self.pipe, self.depth = pipe, depth
        self.controlnet, self.base, self.precision = controlnet, base, precision
        self.info = info or {}
        self.multiple = math.lcm(MULTIPLE, int(getattr(pipe, "vae_scale_factor", MULTIPLE)))
        self.native_resolution = int(pipe.unet.config.sample_size) * int(getattr(pipe, "vae_scale_factor", MULTIPLE))

    @classmethod
    def from_pretrained(cls, controlnet: str = DEFAULT_CONTROLNET, base: str | None = None,
                        depth_model: str | None = None, device: str | torch.device | None = "cpu",
                        precision: Precision = "fp32", depth_input_size: int | None = None,
                        load_depth: bool = True) -> DepthGenerator:
        """Load a ControlNet, the base model it fits, and a depth model.

        Args:
            controlnet: known name (``depth-anything``, ...), local file or folder, or Hugging Face repo id.
            base: local diffusers pipeline folder or repo id; default: the one known to fit the ControlNet
                (Stable Diffusion 1.5 for SD 1.x ControlNets, SDXL base 1.0 for SDXL ones).
            depth_model: depthany zoo name, alias, repo id or weights path; None = the bundled model.
            device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
            precision: dtype of the diffusion models (``fp16``/``bf16`` want a GPU).
            depth_input_size: the depth network's short side (default: the model's).
            load_depth: False leaves :attr:`depth` None (set it to any ``DepthPredictor`` later).

        Raises:
            GenerateError: diffusers missing, a bad name or file, or no default base for this ControlNet.
            ModelNotFound: a model not on this machine that cannot be downloaded now (says what to fetch).
            PairError: the ControlNet does not fit the base model (names both).
        """
        require_diffusers()
        if precision not in PRECISIONS:
            raise GenerateError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        dev = pick_device(device)
        dtype = torch_dtype(precision)
        found = _resolve(controlnet, base, depth_model)  # no weights loaded yet
        check_pair(found.config, controlnet, found.unet, found.base.label)
        model = _load_controlnet(found.controlnet, found.config, dtype, found.shapes)
        pipe = _load_pipeline(found.base, found.unet, model, dtype)
        pipe.to(dev)
        pipe.set_progress_bar_config(disable=True)
        depth = (DepthPredictor.from_pretrained(depth_model, device=dev, precision="fp32", input_size=depth_input_size)
                 if load_depth else None)
        info = {"controlnet_family": family_name(found.config), "pipeline": type(pipe).__name__,
                "scheduler": type(pipe.scheduler).__name__, "device": str(dev)}
        return cls(pipe, depth, found.controlnet, found.base, precision, info)

    # ------------------------------------------------------------------------------------------- running

    def control_image(self, image: ImageLike, resolution: int | None = None) -> tuple[np.ndarray, DepthResult]:
        """The conditioning image for a photo and the depth it came from.

        Returns:
            ((H', W', 3) uint8 at :func:`~depthany.generate.control.control_size`, the depth prediction).
        """
        if self.depth is None:
            raise GenerateError("this generator has no depth model; use generate_from_control")
        loaded = as_rgb(image)
        depth = self.depth.predict(loaded)
        size = control_size(*loaded.size, resolution or self.native_resolution, self.multiple)
        return conditioning_image(depth, size), depth

    def generate(self, image: ImageLike, prompt: str, negative_prompt: str | None = None, steps: int = 30,
                 guidance: float = 7.5, control_strength: float = 1.0, seed: int = 0, num_images: int = 1,
                 resolution: int | None = None) -> GenerateResult:
        """Depth of ``image`` -> conditioning image -> ``num_images`` new images (see :meth:`generate_from_control`).

        Args:
            image: a path, encoded bytes, PIL image or (H, W, 3) uint8 RGB array.
            resolution: short side of the output (default: the base model's native size).
        """
        loaded = as_rgb(image)
        t0 = time.perf_counter()
        control, depth = self.control_image(loaded, resolution)
        out = self.generate_from_control(control, prompt, negative_prompt, steps, guidance, control_strength, seed,
                                         num_images)
        out.depth = depth
        out.settings.update({
            "input": loaded.path, "image_size": list(loaded.size), "resolution": resolution or self.native_resolution,
            "depth": {"model": depth.model, "weights": depth.meta.get("weights"), "kind": depth.kind,
                      "input_size": depth.meta.get("input_size"), "network_size": list(depth.network_size),
                      "precision": "fp32"},
            "conditioning": CONDITIONING, "seconds": round(time.perf_counter() - t0, 3)})
        return out

    def generate_from_control(self, control: np.ndarray, prompt: str, negative_prompt: str | None = None,
                              steps: int = 30, guidance: float = 7.5, control_strength: float = 1.0, seed: int = 0,
                              num_images: int = 1) -> GenerateResult:
        """Run the pipeline on a ready conditioning image.

        Args:
            control: (H', W', 3) uint8, near = bright; H' and W' multiples of :attr:`multiple` (8).
            prompt, negative_prompt: the text (``negative_prompt`` is ignored when ``guidance`` <= 1).
            steps: denoising steps (1..1000). guidance: classifier-free guidance scale (>= 0).
            control_strength: ``controlnet_conditioning_scale`` (0 turns the ControlNet off; >= 0).
            seed: image ``k`` uses ``seed + k``. num_images: 1..64, generated one at a time (bounded memory).

        Raises:
            GenerateError: a bad argument, naming it.
        """
        c = np.asarray(control)
        if c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
            raise GenerateError(f"control must be an (H, W, 3) uint8 image, got {c.dtype} {c.shape}")
        h, w = c.shape[:2]
        if h % self.multiple or w % self.multiple or h < self.multiple or w < self.multiple:
            raise GenerateError(f"control image size {h}x{w} is not a multiple of {self.multiple}")
        _check_args(prompt, steps, guidance, control_strength, seed, num_images)
        picture = Image.fromarray(c)
        images, nsfw = [], []
        seeds = [seed + k for k in range(num_images)]
        for s in seeds:
            out = self.pipe(prompt=prompt, negative_prompt=negative_prompt or None, image=picture, height=h, width=w,
                            num_inference_steps=steps, guidance_scale=guidance,
                            controlnet_conditioning_scale=float(control_strength),
                            generator=torch.Generator("cpu").manual_seed(s), output_type="pil")
            images.append(np.asarray(out.images[0].convert("RGB")))
            flags = getattr(out, "nsfw_content_detected", None)
            nsfw.append(bool(flags[0]) if flags else False)
        settings = {
            "prompt": prompt, "negative_prompt": negative_prompt or "", "steps": steps, "guidance": guidance,
            "control_strength": control_strength, "seed": seed, "seeds": seeds, "num_images": num_images,
            "size": [h, w], "precision": self.precision, "controlnet": self.controlnet.describe(),
            "base": self.base.describe(), **self.info, "versions": _versions()}
        return GenerateResult(images, c, seeds, settings, None, nsfw)


def generate(image: ImageLike, prompt: str, *, controlnet: str = DEFAULT_CONTROLNET, base: str | None = None,
             depth_model: str | None = None, device: str = "cpu", precision: Precision = "fp32",
             **options: Any) -> GenerateResult:
    """One call: load everything (:meth:`DepthGenerator.from_pretrained`) and generate for one photo.

    ``options`` go to :meth:`DepthGenerator.generate` (negative_prompt, steps, guidance, control_strength,
    seed, num_images, resolution). To generate for several photos, keep a :class:`DepthGenerator`.
    """
    gen = DepthGenerator.from_pretrained(controlnet, base, depth_model, device, precision)
    return gen.generate(image, prompt, **options)


# ---------------------------------------------------------------------------------------------- helpers


def _check_args(prompt: str, steps: int, guidance: float, strength: float, seed: int, num_images: int) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise GenerateError("prompt must be a non-empty text")
    if not 1 <= steps <= MAX_STEPS:
        raise GenerateError(f"steps must be in [1, {MAX_STEPS}], got {steps}")
    if not (math.isfinite(guidance) and guidance >= 0):
        raise GenerateError(f"guidance must be a number >= 0, got {guidance}")
    if not (math.isfinite(strength) and strength >= 0):
        raise GenerateError(f"control_strength must be a number >= 0, got {strength}")
    if not 0 <= seed < 2**63 - MAX_IMAGES:
        raise GenerateError(f"seed must be in [0, 2**63 - {MAX_IMAGES}), got {seed}")
    if not 1 <= num_images <= MAX_IMAGES:
        raise GenerateError(f"num_images must be in [1, {MAX_IMAGES}], got {num_images}")


@dataclass
class _Resolved:
    """What :meth:`DepthGenerator.from_pretrained` found before loading any weights."""

    controlnet: sources.ControlNetSource
    config: dict[str, Any]  # the ControlNet's full config
    base: sources.BaseSource
    unet: dict[str, Any]  # the base UNet's config
    shapes: single_file.Shapes | None  # a single file's tensor shapes (diffusers names)


def _resolve(controlnet: str, base: str | None, depth_model: str | None) -> _Resolved:
    """Find the ControlNet, its base model and their configs; everything missing is reported at once (one
    round trip to a machine with network, not three).

    Raises:
        ModelNotFound: listing every missing model with what to download.
        GenerateError: a bad name or file, or no default base for the ControlNet's family.
    """
    missing: list[str] = []
    depth_missing = _depth_missing(depth_model)
    if depth_missing:
        missing.append(depth_missing)
    cn_src: sources.ControlNetSource | None = None
    cn_cfg: dict[str, Any] | None = None
    shapes: single_file.Shapes | None = None
    known = KNOWN_CONTROLNETS.get(controlnet.strip())
    family: str | None = known.family if known else None
    try:
        cn_src = sources.resolve_controlnet(controlnet)
        cn_cfg = sources.controlnet_config(cn_src)
        if cn_src.kind == "file":
            assert cn_src.path is not None
            _, shapes = single_file.diffusers_shapes(single_file.read_shapes(cn_src.path), str(cn_src.path))
            cn_cfg = single_file.sibling_config(cn_src.path)
        family = family or family_of(cn_cfg if cn_cfg is not None else single_file.infer_config(shapes or {}))
    except ModelNotFound as e:
        missing.append(str(e))
    if base is None and family not in DEFAULT_BASES:
        if missing:
            raise ModelNotFound("\n".join(missing))
        described = family_name(cn_cfg or single_file.infer_config(shapes or {}))
        raise GenerateError(f"no default base model for ControlNet {controlnet!r} ({described}); pass --base "
                            "with the model it was trained for")
    base_name = base if base is not None else DEFAULT_BASES[family]  # type: ignore[index]
    base_src: sources.BaseSource | None = None
    unet_cfg: dict[str, Any] = {}
    try:
        base_src = sources.resolve_base(base_name)
        unet_cfg = sources.base_unet_config(base_src)
    except ModelNotFound as e:
        missing.append(str(e))
    if missing:
        raise ModelNotFound("\n".join(missing))
    assert cn_src is not None and base_src is not None
    if cn_cfg is None:  # a single file: shapes + the base UNet's other values
        assert shapes is not None
        cn_cfg = single_file.controlnet_config(shapes, unet_cfg)
    return _Resolved(cn_src, cn_cfg, base_src, unet_cfg, shapes)


def _depth_missing(depth_model: str | None) -> str | None:
    """The download message for a zoo depth model whose weights are not here and cannot be fetched now."""
    from .. import zoo
    from ..weights import WeightsNotFound, fetch

    if depth_model is None:
        return None
    try:
        spec = zoo.get_spec(depth_model)
    except ValueError:  # a path or repo id: DepthPredictor reports those itself
        return None
    try:
        fetch(spec, zoo.preferred_source(spec, depth_model))
    except WeightsNotFound as e:
        return str(e).replace("--weights", "--depth-model")
    return None


def _versions() -> dict[str, str]:
    import diffusers

    from .. import __version__

    return {"depthany": __version__, "diffusers": diffusers.__version__, "torch": torch.__version__}


def _load_controlnet(src: sources.ControlNetSource, config: dict[str, Any], dtype: torch.dtype,
                     shapes: single_file.Shapes | None = None) -> Any:
    """The ControlNetModel: a single file through diffusers' single-file path, else ``from_pretrained``."""
    from diffusers import ControlNetModel

    if src.kind == "file":
        assert src.path is not None
        return single_file.load_single_file(src.path, config, dtype, shapes)
    where = str(src.path) if src.path is not None else str(src.repo_id)
    try:
        return ControlNetModel.from_pretrained(where, dtype=dtype, local_files_only=sources.is_offline(),
                                               cache_dir=str(sources.hub_cache_dir()))
    except OSError as e:  # weights missing from the folder / cache
        if src.repo_id:
            raise ModelNotFound(sources.missing_file_message(
                f"ControlNet {src.label!r}", src.repo_id, ["config.json", "diffusion_pytorch_model.safetensors"],
                f"diffusers could not load it ({str(e).strip().splitlines()[0]})",
                local_hint="--controlnet /path/to/folder (config.json + weights)")) from None
        raise GenerateError(f"{where}: cannot load the ControlNet ({e})") from None


def _load_pipeline(src: sources.BaseSource, unet: dict[str, Any], controlnet: Any, dtype: torch.dtype) -> Any:
    """The ControlNet pipeline class that fits the base (SDXL when its UNet takes the SDXL size embedding)."""
    import diffusers

    sdxl = unet.get("addition_embed_type") == "text_time"
    cls = diffusers.StableDiffusionXLControlNetPipeline if sdxl else diffusers.StableDiffusionControlNetPipeline
    try:
        return cls.from_pretrained(src.location, controlnet=controlnet, dtype=dtype,
                                   local_files_only=sources.is_offline(), cache_dir=str(sources.hub_cache_dir()))
    except OSError as e:
        if src.repo_id:
            raise ModelNotFound(sources.base_missing_message(
                src.repo_id, f"diffusers could not load it ({str(e).strip().splitlines()[0]})")) from None
        raise GenerateError(f"--base {src.location}: cannot load the pipeline ({e})") from None
