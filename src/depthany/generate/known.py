"""Depth ControlNets and the base models they fit: one table, used for defaults, download messages and docs.

A ControlNet is a trained copy of its base model's UNet encoder: it fits a base model when its residuals have
the base UNet's shapes and it reads the same text embeddings (see :mod:`depthany.generate.pairs`). The
*family* names that relation: ``sd1`` (Stable Diffusion 1.x: cross-attention 768), ``sd2`` (2.x: 1024) and
``sdxl`` (2048 plus the SDXL size/crop conditioning).

Sources (read for these facts):

* ``depth-anything``: Depth Anything V1's ControlNet, re-trained with diffusers on Depth Anything depth maps.
  LiheYoung/Depth-Anything ``controlnet/README.md`` (commit 1d03336771fe09c5398ffdd211441e33941a97dc) links
  the weights in the Hugging Face *Space* ``LiheYoung/Depth-Anything``, folder ``checkpoints_controlnet``, file
  ``diffusion_pytorch_model.safetensors`` (diffusers key names), and ships its ``config.json`` separately in
  the repository: a diffusers ``ControlNetModel`` whose only non-default value is ``cross_attention_dim`` 768,
  i.e. a Stable Diffusion 1.x ControlNet. WebUI users rename the file ``control_sd15_depth_anything``
  (Mikubill/sd-webui-controlnet pull request 2544); depthany reads it under any name.
* ``lllyasviel/control_v11f1p_sd15_depth``, ``lllyasviel/sd-controlnet-depth``: diffusers folders for SD 1.5
  (ControlNet 1.1 and 1.0); ``control_v11f1p_sd15_depth.pth`` in ``lllyasviel/ControlNet-v1-1`` is the same
  1.1 model in the original single-file layout (diffusers docs: ``using-diffusers/img2img.md``,
  ``api/pipelines/animatediff.md``).
* ``diffusers/controlnet-depth-sdxl-1.0`` and ``-small``: SDXL depth ControlNets, used with
  ``stabilityai/stable-diffusion-xl-base-1.0`` (diffusers docs ``using-diffusers/controlnet.md``).
* Base models: ``stable-diffusion-v1-5/stable-diffusion-v1-5`` (the SD 1.5 repository the diffusers ControlNet
  training example uses, ``examples/controlnet/README.md``) and ``stabilityai/stable-diffusion-xl-base-1.0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["sd1", "sd2", "sdxl"]
Layout = Literal["diffusers-folder", "single-file"]

FAMILY_NAMES: dict[str, str] = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "SDXL"}
DEFAULT_BASES: dict[str, str] = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}
DEFAULT_CONTROLNET = "depth-anything"


@dataclass(frozen=True)
class KnownControlNet:
    """A published depth ControlNet.

    Attributes:
        name: what ``--controlnet`` accepts (a short name, or the repo id for diffusers folders).
        repo_id: Hugging Face repository; repo_type: ``model`` or ``space``.
        filename: the weights file for single-file layouts (path inside the repo); None for folders.
        layout: ``diffusers-folder`` (config.json + weights) or ``single-file`` (weights only).
        family: the base-model family it fits.
        description: one line for listings and docs.
    """

    name: str
    repo_id: str
    layout: Layout
    family: Family
    description: str
    filename: str | None = None
    repo_type: str = "model"

    @property
    def url(self) -> str:
        """The repository's web page."""
        return f"https://huggingface.co/{'spaces/' if self.repo_type == 'space' else ''}{self.repo_id}"


KNOWN_CONTROLNETS: dict[str, KnownControlNet] = {c.name: c for c in (
    KnownControlNet("depth-anything", "LiheYoung/Depth-Anything", "single-file", "sd1",
                    "Depth Anything V1's SD 1.5 depth ControlNet (trained on Depth Anything depth)",
                    filename="checkpoints_controlnet/diffusion_pytorch_model.safetensors", repo_type="space"),
    KnownControlNet("control_v11f1p_sd15_depth", "lllyasviel/ControlNet-v1-1", "single-file", "sd1",
                    "ControlNet 1.1 SD 1.5 depth, original single-file layout",
                    filename="control_v11f1p_sd15_depth.pth"),
    KnownControlNet("lllyasviel/control_v11f1p_sd15_depth", "lllyasviel/control_v11f1p_sd15_depth",
                    "diffusers-folder", "sd1", "ControlNet 1.1 SD 1.5 depth (diffusers folder)"),
    KnownControlNet("lllyasviel/sd-controlnet-depth", "lllyasviel/sd-controlnet-depth", "diffusers-folder", "sd1",
                    "ControlNet 1.0 SD 1.5 depth (MiDaS maps; diffusers folder)"),
    KnownControlNet("diffusers/controlnet-depth-sdxl-1.0", "diffusers/controlnet-depth-sdxl-1.0",
                    "diffusers-folder", "sdxl", "SDXL depth ControlNet"),
    KnownControlNet("diffusers/controlnet-depth-sdxl-1.0-small", "diffusers/controlnet-depth-sdxl-1.0-small",
                    "diffusers-folder", "sdxl", "SDXL depth ControlNet, distilled (fewer transformer layers)"),
)}


def family_of(config: dict[str, Any]) -> Family | None:
    """The base-model family a UNet or ControlNet config belongs to, or None when it is none of the three."""
    cross = config.get("cross_attention_dim")
    text_time = config.get("addition_embed_type") == "text_time"
    if cross == 2048 and text_time:
        return "sdxl"
    if text_time:
        return None
    return {768: "sd1", 1024: "sd2"}.get(cross) if isinstance(cross, int) else None  # type: ignore[return-value]


def family_name(config: dict[str, Any]) -> str:
    """``"Stable Diffusion 1.x"``, ... or a description of an unknown family by its cross-attention width."""
    fam = family_of(config)
    if fam is not None:
        return FAMILY_NAMES[fam]
    return f"unknown family (cross-attention {config.get('cross_attention_dim')})"
