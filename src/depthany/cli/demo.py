"""``depthany demo``: the Gradio web demo (image slider, 16-bit PNG / npy / point-cloud downloads).

    depthany demo                                  # zoo models already downloaded, on http://127.0.0.1:7860
    depthany demo --weights my_finetune.safetensors --examples photos/

All logic lives in :mod:`depthany.serve.demo`; this module parses arguments.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .options import cmap_option, device_option, max_tokens_option, precision_option, weights_option


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@weights_option(help_text="A local weights file or folder to offer (repeatable), besides zoo models on disk.",
                multiple=True)
@click.option("--examples", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of example images [default: ./examples or the repository's examples/].")
@device_option()
@precision_option()
@cmap_option(extra_help="The menu's first choice.")
@max_tokens_option()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface; 0.0.0.0 exposes the demo.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option("--max-file-size", default="50mb", show_default=True, help="Largest upload Gradio accepts.")
@click.option("--controlnet", default=None, metavar="NAME|PATH|REPO",
              help="Generate tab (needs depthany[generate]): a ControlNet to offer besides the known ones on disk.")
@click.option("--base", default=None, metavar="PATH|REPO", help="Generate tab: the base model for --controlnet.")
def demo(weights: tuple[Path, ...], examples: Path | None, device: str, precision: str, cmap: str, max_tokens: int,
         host: str, port: int, max_file_size: str, controlnet: str | None, base: str | None) -> None:
    """Run the web demo. Offers only models whose weights are on disk; makes no network requests."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise click.ClickException("gradio is missing; install the demo with: pip install 'depthany[demo]'") from None
    from ..runtime.devices import pick_device
    from ..serve.demo import DemoBackend, find_examples, launch_demo, local_model_choices

    found = find_examples(examples)
    try:
        backend = DemoBackend(local_model_choices(list(weights)), str(pick_device(device)), precision,
                              max_tokens=max_tokens, cmap=cmap)
        click.echo(f"depthany demo on http://{host}:{port} with {len(backend.choices)} model(s), {len(found)} "
                   "example(s)", err=True)
        generate = None
        if controlnet:
            from ..serve.generate_tab import GenerateBackend, local_generate_pairs

            generate = GenerateBackend(local_generate_pairs(controlnet, base), backend, backend.device, precision)
        launch_demo(backend, found, host, port, block=True, max_file_size=max_file_size, generate=generate)
    except ValueError as e:  # no models, or weights that do not load (WeightsError names the file): set-up
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
