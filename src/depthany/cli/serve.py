"""``depthany serve``: the REST service (FastAPI + uvicorn) with one resident model and dynamic batching.

    depthany serve --model da2-small --port 8000
    curl -F image=@photo.jpg "http://127.0.0.1:8000/v1/depth?format=png16" -o depth.png

All logic lives in :mod:`depthany.serve.api`; this module parses arguments, loads the model and runs uvicorn.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..serve.config import MiB, ServeConfig
from ..serve.responses import MEDIA_TYPES
from .options import cmap_option, max_tokens_option, model_options

DEFAULT = ServeConfig()  # every limit's default is the library's


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@model_options(max_tokens=False, int8=True)
@cmap_option(extra_help="For format=color when the request gives no cmap.")
@max_tokens_option(extra_help="Per request; an image that cannot be fitted gets 422.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 exposes the service to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=DEFAULT.max_batch, show_default=True,
              help="Most requests per forward pass.")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=DEFAULT.max_wait_ms, show_default=True,
              help="How long a request may wait for others to share its forward pass.")
@click.option("--max-queue", type=click.IntRange(min=1), default=DEFAULT.max_queue, show_default=True,
              help="Most requests waiting; more get 503 with Retry-After.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=DEFAULT.max_upload_bytes / MiB,
              show_default=True, help="Largest request body in MiB (413 above).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT.max_pixels, show_default=True,
              help="Largest image in pixels (422 above).")
@click.option("--shutdown-grace", type=click.FloatRange(min=0), default=DEFAULT.shutdown_grace_s, show_default=True,
              help="Seconds a running forward pass may finish after SIGTERM/Ctrl-C before it is interrupted "
                   "(its requests then get 503).")
@click.option("--default-format", type=click.Choice(list(MEDIA_TYPES)), default=DEFAULT.default_format,
              show_default=True, help="Response format when neither ?format= nor Accept chooses one.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
def serve(model: str | None, weights: Path | None, device: str, precision: str, input_size: int | None, cmap: str,
          max_tokens: int, host: str, port: int, max_batch: int, max_wait_ms: float, max_queue: int,
          max_upload_mb: float, max_pixels: int, shutdown_grace: float, default_format: str, log_level: str) -> None:
    """Serve depth over HTTP: POST /v1/depth (multipart field "image"), GET /v1/models, GET /healthz,
    OpenAPI at /docs and /openapi.json."""
    try:
        import uvicorn  # noqa: F401

        from ..serve.api import create_app
        from ..serve.server import run_server
    except ModuleNotFoundError as e:
        raise click.ClickException(f"{e.name} is missing; install the service with: pip install 'depthany[serve]'") from None
    from ..predictor import DepthPredictor

    config = ServeConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
                         max_upload_bytes=int(max_upload_mb * (1 << 20)), max_pixels=max_pixels,
                         default_format=default_format, cmap=cmap, max_tokens=max_tokens,
                         shutdown_grace_s=shutdown_grace)
    try:
        predictor = DepthPredictor.from_pretrained(model, weights, device, precision, input_size,  # type: ignore[arg-type]
                                                   batch_size=max_batch, max_tokens=max_tokens,
                                                   backend="auto" if precision == "int8" else "torch")
        app = create_app(predictor, config)
    except (ValueError, ImportError) as e:  # WeightsError / WeightsNotFound / unknown model / bad limits: a set-up problem;
        # ImportError: the engine of --precision int8 is not installed
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(f"serving {predictor.spec.name} on http://{host}:{port} (docs at /docs)", err=True)
    run_server(app, host, port, log_level)
