"""The web demo's "Generate" tab: photo -> depth -> a depth ControlNet -> new images (needs diffusers).

The tab is added when diffusers is installed (``pip install 'depthany[generate]'``). Its menu offers the
ControlNet + base model pairs that are already on disk, as the depth tab offers only downloaded depth models:
every known ControlNet (:data:`depthany.generate.known.KNOWN_CONTROLNETS`) whose files and default base model
are in the Hugging Face cache, and the pair given with ``depthany demo --controlnet ... --base ...``. With no
pair on disk the tab says what to download. The depth comes from the depth tab's model menu; models are
loaded on first use (one pair resident) and nothing is fetched from the network.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..generate.known import DEFAULT_BASES, KNOWN_CONTROLNETS, KnownControlNet
from .demo import DemoBackend

MAX_DEMO_IMAGES = 4


@dataclass(frozen=True)
class GeneratePair:
    """One entry of the tab's menu: a ControlNet and the base model it runs with."""

    label: str
    controlnet: str
    base: str | None = None


def diffusers_installed() -> bool:
    """Whether the ``generate`` extra is importable (the tab exists only then)."""
    return importlib.util.find_spec("diffusers") is not None


def _cached(repo_id: str, filename: str, repo_type: str = "model") -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, repo_type=repo_type), str)


def _known_on_disk(known: KnownControlNet) -> bool:
    files = [known.filename] if known.filename else ["config.json"]
    base = DEFAULT_BASES.get(known.family)
    return (all(_cached(known.repo_id, f, known.repo_type) for f in files if f) and base is not None
            and _cached(base, "model_index.json") and _cached(base, "unet/config.json"))


def local_generate_pairs(controlnet: str | None = None, base: str | None = None) -> list[GeneratePair]:
    """The user's pair (``--controlnet``/``--base``) first, then known ControlNets whose files and default base
    model are in the Hugging Face cache. Nothing is downloaded."""
    pairs = []
    if controlnet:
        pairs.append(GeneratePair(f"{Path(controlnet).name or controlnet} + {Path(base).name if base else 'default base'}",
                                  controlnet, base))
    for known in KNOWN_CONTROLNETS.values():
        if _known_on_disk(known):
            pairs.append(GeneratePair(f"{known.name} + {DEFAULT_BASES[known.family]}", known.name, None))
    return pairs


class GenerateBackend:
    """Loads one ControlNet pipeline at a time and runs it on uploads, with the depth tab's depth models.

    Args:
        pairs: the menu (:func:`local_generate_pairs`).
        depth: the depth tab's backend (its model menu and loaded predictors are shared).
        device, precision: where and how the diffusion models run.
    """

    def __init__(self, pairs: list[GeneratePair], depth: DemoBackend, device: str = "cpu",
                 precision: str = "fp32") -> None:
        self.pairs = {p.label: p for p in pairs}
        self.depth, self.device, self.precision = depth, device, precision
        self._loaded: tuple[str, Any] | None = None
        self._lock = threading.Lock()

    def generator(self, label: str) -> Any:
        """The :class:`~depthany.generate.DepthGenerator` for menu entry ``label`` (loaded on first use).

        Raises:
            ValueError: unknown label; GenerateError (a ValueError): a model that cannot be loaded.
        """
        from ..generate.pipeline import DepthGenerator

        if label not in self.pairs:
            raise ValueError(f"unknown ControlNet {label!r}; choose one of {', '.join(self.pairs)}")
        with self._lock:
            if self._loaded is None or self._loaded[0] != label:
                self._loaded = None  # release the previous pipeline before loading the next
                pair = self.pairs[label]
                self._loaded = (label, DepthGenerator.from_pretrained(pair.controlnet, pair.base, None, self.device,
                                                                      self.precision,  # type: ignore[arg-type]
                                                                      load_depth=False))
            return self._loaded[1]

    def run(self, image_path: str | Path, label: str, depth_label: str, prompt: str, negative_prompt: str = "",
            steps: int = 30, guidance: float = 7.5, control_strength: float = 1.0, seed: int = 0,
            num_images: int = 1, resolution: int | None = None) -> tuple[Any, Path]:
        """Generate for one uploaded image; returns (the :class:`~depthany.generate.GenerateResult`, the folder
        its files were written to: ``<stem>_gen<k>.png``, ``<stem>_control.png``, ``<stem>_generate.json``).

        Raises:
            ImageReadError / ValueError: a bad upload, model, or setting (naming it).
        """
        from ..io.image import read_image

        if not 1 <= num_images <= MAX_DEMO_IMAGES:
            raise ValueError(f"images per click must be in [1, {MAX_DEMO_IMAGES}], got {num_images}")
        loaded = read_image(image_path)
        gen = self.generator(label)
        with self._lock:  # the depth model is swapped in for this request
            gen.depth = self.depth.predictor(depth_label)
            result = gen.generate(loaded, prompt, negative_prompt or None, int(steps), float(guidance),
                                  float(control_strength), int(seed), int(num_images), resolution)
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(image_path).stem)[:60] or "image"
        run = self.depth._run_dir(stem)
        result.save(run / stem)
        return result, run


def add_generate_tab(depth: DemoBackend, backend: GenerateBackend | None = None) -> None:
    """Add the "Generate" tab to the Gradio Blocks being built (call inside ``with gr.Blocks()``); a no-op
    when diffusers is not installed. Its click handler is API endpoint ``/generate``: ``(image file, ControlNet
    label, depth model label, prompt, negative prompt, steps, guidance, control strength, seed, images) ->
    (gallery of generated images, conditioning image, settings JSON file, info markdown)``."""
    if not diffusers_installed():
        return
    import gradio as gr

    if backend is None:
        backend = GenerateBackend(local_generate_pairs(), depth, depth.device, depth.precision)
    with gr.Tab("Generate", elem_id="generate-tab"):
        if not backend.pairs:
            from ..generate.sources import missing_file_message

            known = KNOWN_CONTROLNETS["depth-anything"]
            assert known.filename
            how = missing_file_message("ControlNet 'depth-anything'", known.repo_id, [known.filename],
                                       "it is not in the Hugging Face cache", known.repo_type)
            gr.Markdown("## Generate with a depth ControlNet\nNo ControlNet and base model are on this machine. "
                        "Download them (or start with `depthany demo --controlnet PATH --base PATH`):\n\n"
                        f"```\n{how}\n```\nand the base model `{DEFAULT_BASES['sd1']}` "
                        "(see docs/generate.md).", elem_id="generate-missing")
            return
        labels = list(backend.pairs)
        depth_labels = list(depth.choices)

        def generate(image: str | None, label: str, depth_label: str, prompt: str, negative: str, steps: float,
                     guidance: float, strength: float, seed: float, count: float) -> tuple[Any, ...]:
            if not image:
                raise gr.Error("Upload an image first.")
            if not prompt or not prompt.strip():
                raise gr.Error("Write a prompt.")
            try:
                result, run = backend.run(image, label, depth_label, prompt, negative, int(steps), float(guidance),
                                          float(strength), int(seed), int(count))
            except ValueError as e:  # bad upload, setting or model: a message, not a traceback
                raise gr.Error(str(e)) from None
            settings_file = next(run.glob("*_generate.json"))
            images = [str(p) for p in sorted(run.glob("*_gen[0-9]*.png"))]
            h, w = result.control.shape[:2]
            info = (f"**{len(images)} image(s)**, {w}x{h}, seeds {', '.join(map(str, result.seeds))}; "
                    f"{result.settings.get('pipeline')} with {result.settings.get('scheduler')}; "
                    f"depth {result.depth.model if result.depth else ''}")
            return images, str(next(run.glob("*_control.png"))), str(settings_file), info

        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"],
                                 elem_id="gen-image")
                pair = gr.Dropdown(labels, value=labels[0], label="ControlNet + base model", elem_id="gen-pair")
                depth_model = gr.Dropdown(depth_labels, value=depth_labels[0], label="Depth model",
                                          elem_id="gen-depth")
                prompt = gr.Textbox(label="Prompt", elem_id="gen-prompt")
                negative = gr.Textbox(label="Negative prompt", elem_id="gen-negative")
                with gr.Row():
                    steps = gr.Slider(1, 100, value=30, step=1, label="Steps", elem_id="gen-steps")
                    guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance", elem_id="gen-guidance")
                with gr.Row():
                    strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Control strength", elem_id="gen-strength")
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="gen-seed")
                    count = gr.Slider(1, MAX_DEMO_IMAGES, value=1, step=1, label="Images", elem_id="gen-count")
                run = gr.Button("Generate", variant="primary", elem_id="gen-run")
            with gr.Column():
                gallery = gr.Gallery(label="Generated", elem_id="gen-gallery", format="png")
                control = gr.Image(label="Conditioning image (what the ControlNet sees)", type="filepath",
                                   elem_id="gen-control")
                settings = gr.File(label="Settings (JSON)", elem_id="gen-settings")
                info = gr.Markdown(elem_id="gen-info")
        run.click(generate, [image, pair, depth_model, prompt, negative, steps, guidance, strength, seed, count],
                  [gallery, control, settings, info], api_name="generate")

