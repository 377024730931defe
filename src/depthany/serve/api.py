"""The REST service: ``POST /v1/depth``, ``GET /v1/models``, ``GET /healthz`` and the OpenAPI schema.

    >>> from depthany import DepthPredictor
    >>> from depthany.serve.api import ServeConfig, create_app
    >>> app = create_app(DepthPredictor.from_pretrained("da2-small"), ServeConfig(max_batch=4))  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)                           # doctest: +SKIP

The model is loaded once and stays resident; requests are decoded in the thread pool, then batched by
:class:`~depthany.serve.batching.DynamicBatcher`. Every client mistake gets a 4xx with a reason in ``detail``:

====  ===========================================================================================
413   the request body is larger than ``max_upload_bytes`` (checked on Content-Length and counted
      while streaming, so chunked uploads are caught too)
415   the upload is not an image format the service reads
422   no ``image`` file field, an empty, truncated or corrupt image, more pixels than
      ``max_pixels``, an image too thin to fit the network-input budget (``max_tokens``), or a bad
      ``format``/``cmap`` value
406   the Accept header allows none of the formats
503   the queue is full (``Retry-After`` says when to come back), or the service is shutting down
====  ===========================================================================================

An image whose official network input exceeds ``max_tokens`` runs at a smaller network size that fits
(:mod:`depthany.budget`); the answer says so in the ``X-Input-Budget`` header, in the JSON body's
``input_budget`` and in the server log. Run the service with ``depthany serve`` or :func:`run_server`, whose
shutdown does not wait for a long forward pass (see ``docs/serving.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from PIL import UnidentifiedImageError

from .. import __version__
from ..budget import InputBudgetError, shrink_note
from ..io.colormap import COLORMAPS, cmap_name, resolve_cmap
from ..io.image import ImageReadError, read_image
from .batching import DynamicBatcher, QueueFull, ShuttingDown
from .config import MiB, ServeConfig
from .responses import MEDIA_TYPES, NotAcceptable, budget_header, choose_format, encode

if TYPE_CHECKING:
    from ..predictor import DepthPredictor

log = logging.getLogger(__name__)
__all__ = ["ServeConfig", "create_app"]


class _BodyLimit:
    """ASGI middleware: 413 for a Content-Length over the limit; count streamed bytes for the rest."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: str) -> str:
        return f"request body is {size} bytes; the limit is {self.max_bytes} bytes ({self.max_bytes / MiB:.2f} MiB)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"detail": self._message(length.decode())}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # FastAPI turns an HTTPException raised while reading into the response
                raise HTTPException(413, self._message(f"more than {self.max_bytes}"))
            return dict(message)

        await self.app(scope, counted, send)


def _image_error_status(e: ImageReadError) -> int:
    if isinstance(e.__cause__, UnidentifiedImageError):
        return 415
    return 422


def create_app(predictor: DepthPredictor, config: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving ``predictor`` (kept resident; one worker thread runs it).

    Raises:
        ValueError: bad config values (naming them).
    """
    cfg = config or ServeConfig()
    cfg.cmap = resolve_cmap(cfg.cmap, predictor.spec.arch.family)  # "auto": the family's official map
    if cfg.default_format not in MEDIA_TYPES:
        raise ValueError(f"default_format must be one of {', '.join(MEDIA_TYPES)}, got {cfg.default_format!r}")
    if cfg.max_upload_bytes < 1 or cfg.max_pixels < 1:
        raise ValueError(f"max_upload_bytes and max_pixels must be >= 1, got {cfg.max_upload_bytes}, {cfg.max_pixels}")
    if cfg.shutdown_grace_s < 0:
        raise ValueError(f"shutdown_grace_s must be >= 0, got {cfg.shutdown_grace_s}")
    if cfg.max_tokens is not None and cfg.max_tokens != predictor.max_tokens:
        predictor = predictor.with_settings(max_tokens=cfg.max_tokens)  # validates it
    cfg.max_tokens = predictor.max_tokens
    batcher = DynamicBatcher(predictor, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue)
    spec = predictor.spec

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            batcher.stop(cfg.shutdown_grace_s)

    app = FastAPI(title="depthany", version=__version__, lifespan=lifespan,
                  description="Monocular depth with Depth Anything: upload an image, get depth back.")
    app.add_middleware(_BodyLimit, max_bytes=cfg.max_upload_bytes)
    app.state.batcher = batcher
    app.state.config = cfg

    model_info = {
        "id": spec.name, "object": "model", "family": spec.arch.family, "encoder": spec.arch.encoder.name,
        "kind": spec.output_kind,
        "unit": "m" if spec.output_kind == "metric_depth" else None, "max_depth": spec.arch.max_depth,
        "input_size": predictor.input_size, "max_tokens": predictor.max_tokens, "precision": predictor.precision,
        "device": str(predictor.device),
        "licence": spec.licence, "description": spec.description,
    }

    @app.get("/healthz", summary="Liveness and queue state")
    async def healthz() -> dict[str, Any]:
        s = batcher.stats
        return {"status": "ok", "model": spec.name, "queued": batcher.queued, "in_flight": batcher.in_flight,
                "max_queue": cfg.max_queue,
                "requests": s.requests, "batches": s.batches, "mean_batch": round(s.mean_batch, 3),
                "rejected": s.rejected}

    @app.get("/v1/models", summary="The model this server runs")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_info], "limits": asdict(cfg)}

    binary = {"content": {"image/png": {}, "application/x-npy": {}, "application/json": {}},
              "description": "depth as png16 / npy / color PNG / JSON (see the format parameter)"}

    @app.post("/v1/depth", summary="Depth for one uploaded image", response_class=Response,
              responses={200: binary, 406: {"description": "unsupported Accept"},
                         413: {"description": "request body too large"},
                         415: {"description": "not an image"},
                         422: {"description": "bad image, too many pixels, or bad parameters"},
                         503: {"description": "queue full; see Retry-After"}})
    async def depth(
        request: Request,
        image: UploadFile = File(..., description="The image file (JPEG, PNG, WebP, TIFF, ...)."),
        format: Literal["png16", "npy", "color", "json"] | None = Query(  # noqa: A002 - the public parameter name
            None, description="Response format; default from the Accept header, else json."),
        cmap: str | None = Query(None, description=f"Colour map for format=color: {', '.join(COLORMAPS)} "
                                 "(default: the server's, see /v1/models limits.cmap)."),
    ) -> Response:
        t0 = time.perf_counter()
        try:
            fmt = choose_format(format, request.headers.get("accept"), cfg.default_format)
            cmap_used = cfg.cmap if cmap is None else cmap_name(cmap)
        except NotAcceptable as e:
            raise HTTPException(406, str(e)) from None
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        data = await image.read()
        name = image.filename or "upload"
        try:
            loaded = await run_in_threadpool(read_image, data, max_pixels=cfg.max_pixels)
        except ImageReadError as e:
            raise HTTPException(_image_error_status(e), str(e).replace("<bytes>", name, 1)) from None
        try:
            future = batcher.submit(loaded)
        except InputBudgetError as e:
            raise HTTPException(422, f"{name}: {e}") from None
        except QueueFull as e:
            return JSONResponse({"detail": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after)})
        except ShuttingDown as e:
            return JSONResponse({"detail": str(e)}, status_code=503)
        try:
            result, info = await asyncio.wrap_future(future)
        except ShuttingDown as e:
            return JSONResponse({"detail": str(e)}, status_code=503)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when its graceful-shutdown timeout ends, and answers a
            # cancelled request with a bare 500; the forward pass may not have reached its next interruption point
            # yet. During shutdown that is the documented 503 (a cancellation for any other reason propagates).
            if not batcher.stopping:
                raise
            return JSONResponse({"detail": "server is shutting down; the request's forward pass was interrupted "
                                           "(it did not finish within the shutdown grace)"}, status_code=503)
        extra = {"source": image.filename} if image.filename else {}
        budget = result.meta.get("input_budget", {})
        if budget.get("shrunk"):
            log.warning("%s: %s", name, shrink_note(budget, result.image_size))
        body, media, headers = await run_in_threadpool(encode, result, fmt, cmap_used, extra)
        if budget:
            headers["X-Input-Budget"] = budget_header(budget)
        headers.update({"X-Batch-Size": str(info.size), "X-Queue-Ms": f"{info.queued_s * 1000:.1f}",
                        "X-Inference-Ms": f"{info.run_s * 1000:.1f}",
                        "X-Total-Ms": f"{(time.perf_counter() - t0) * 1000:.1f}"})
        return Response(body, media_type=media, headers=headers)

    return app
