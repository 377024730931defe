"""Running the service with uvicorn, with a shutdown that never waits long for a forward pass.

Plain ``uvicorn.run(app)`` stops on SIGTERM/Ctrl-C only when every open request has been answered, and a
request is answered only when its forward pass ends. :func:`run_server` hooks the signal itself: at the first
SIGTERM or Ctrl-C

1. the listening socket closes (uvicorn) and requests still waiting in the queue get ``503`` at once;
2. the forward pass already running may finish for ``grace_s`` seconds (its requests get their answers);
3. after that it is interrupted at the next layer boundary and its requests get ``503``;
4. the application shuts down and the process exits, within about ``grace_s`` + 1 s of the signal.

A second Ctrl-C quits at once (uvicorn's force exit). Engines other than PyTorch cannot be interrupted inside a
forward pass; uvicorn then drops the open connections after ``ceil(grace_s) + 1`` s and the process exits without
waiting for the engine.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
               grace_s: float | None = None) -> None:
    """Serve ``app`` (from :func:`depthany.serve.api.create_app`) until SIGTERM/Ctrl-C; see the module docstring.

    Args:
        app: the FastAPI app; its ``state.batcher`` is told about the shutdown.
        host, port: where to listen.
        log_level: uvicorn's log level.
        grace_s: how long a running forward pass may finish after the signal; default the app's
            ``ServeConfig.shutdown_grace_s``.
    """
    import uvicorn

    batcher = app.state.batcher
    grace = app.state.config.shutdown_grace_s if grace_s is None else grace_s

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                batcher.shutdown(grace)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=math.ceil(grace) + 1)
    try:
        _Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; like uvicorn.run, end quietly
        pass
    if batcher.running:  # an engine that cannot be interrupted is still inside a forward pass: do not wait
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
