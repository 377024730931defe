"""Dynamic batching: concurrent requests share forward passes of one resident model.

One worker thread owns the model. Requests wait in a bounded queue; the worker takes the oldest one and,
for up to ``max_wait_ms`` after it arrived, gathers up to ``max_batch`` waiting requests whose images run at
the *same network size* (the predictor never pads, so only those can share a forward pass; others wait for
their own batch). When the queue is full, :meth:`DynamicBatcher.submit` refuses at once with
:class:`QueueFull`, which the service turns into ``503 Retry-After``: a bounded queue keeps latency and memory
bounded under overload instead of letting both grow without limit.

Work per forward pass is bounded too. Every image runs within the predictor's network-input budget
(:mod:`depthany.budget`; :meth:`DynamicBatcher.submit` raises :class:`~depthany.budget.InputBudgetError` for
an image that cannot be fitted, before it is queued), and a batch holds at most as many images as fit in that
budget together (one image at the full budget runs alone). So a request waits at most for the batches ahead of
it, each no larger than one maximal image: no single request can hold the queue indefinitely.

Shutdown (:meth:`DynamicBatcher.shutdown`): waiting requests fail at once with :class:`ShuttingDown`; the
forward pass already running may finish within a grace period, after which it is interrupted at the next
layer boundary (PyTorch backend: a forward pre-hook on every module checks a flag) and its requests fail with
:class:`ShuttingDown` too.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..io.image import LoadedImage

if TYPE_CHECKING:
    from ..predictor import DepthPredictor
    from ..result import DepthResult


class ShuttingDown(RuntimeError):
    """The service is stopping: the request was not run, or its forward pass was interrupted."""


class _Interrupted(Exception):
    """Raised inside the network by the cancellation hooks (internal)."""


class QueueFull(RuntimeError):
    """The request queue is full. ``retry_after`` is a suggested wait in whole seconds (>= 1)."""

    def __init__(self, queued: int, limit: int, retry_after: int) -> None:
        super().__init__(f"server busy: {queued} requests are waiting (limit {limit}); retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class BatchInfo:
    """How a request was served: ``size`` requests in its forward pass, seconds waiting and running."""

    size: int
    queued_s: float
    run_s: float


@dataclass(eq=False)  # identity, not field equality: deque.remove must not compare image arrays
class _Item:
    image: LoadedImage
    key: tuple[int, int]
    tokens: int
    future: Future[tuple[DepthResult, BatchInfo]]
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatcherStats:
    """Counters since start: requests answered, forward passes, requests refused with QueueFull."""

    requests: int = 0
    batches: int = 0
    rejected: int = 0
    busy_s: float = 0.0

    @property
    def mean_batch(self) -> float:
        return self.requests / self.batches if self.batches else 0.0


class DynamicBatcher:
    """Queue + worker thread around a :class:`~depthany.predictor.DepthPredictor`.

    Args:
        predictor: the resident model; its ``batch_size`` is raised to ``max_batch`` if smaller.
        max_batch: most requests per forward pass (fewer when their images use much of the token budget).
        max_wait_ms: how long the oldest waiting request may wait for others to join its batch.
        max_queue: most requests waiting (not counting the batch running); more are refused.
    """

    def __init__(self, predictor: DepthPredictor, max_batch: int = 4, max_wait_ms: float = 10.0,
                 max_queue: int = 32) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch >= 1, max_queue >= 1, max_wait_ms >= 0; got {max_batch}, "
                             f"{max_queue}, {max_wait_ms}")
        self.predictor = predictor
        predictor.batch_size = max(predictor.batch_size, max_batch)
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000.0, max_queue
        self.stats = BatcherStats()
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._abort = threading.Event()
        self._abort_at: float | None = None  # perf_counter time after which a running pass is interrupted
        self._hooks: list[Any] = []
        self._in_flight = 0

    # ------------------------------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._abort.clear()
            self._abort_at = None
            self._install_interrupts()
            self._thread = threading.Thread(target=self._run, name="depthany-batcher", daemon=True)
            self._thread.start()

    def shutdown(self, grace_s: float = 2.0) -> None:
        """Begin stopping, without blocking: refuse new requests, fail the waiting ones with
        :class:`ShuttingDown`, and interrupt the running forward pass if it is still running after ``grace_s``
        seconds (its requests then fail with :class:`ShuttingDown`). Safe to call from a signal handler."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._fail_waiting(ShuttingDown("server is shutting down; the request was not run"))
        at = time.perf_counter() + max(0.0, grace_s)
        if self._abort_at is not None and self._abort_at <= at:
            return  # an earlier call already set a sooner deadline
        self._abort_at = at
        if grace_s <= 0:
            self._abort.set()
        else:
            timer = threading.Timer(grace_s, self._abort.set)
            timer.daemon = True
            timer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Fail the waiting requests, let the running batch finish (interrupting it after ``timeout`` seconds,
        or earlier if :meth:`shutdown` asked for less), stop the thread and remove the interruption hooks.

        Returns after at most about one second past that deadline, even if the engine is still busy in one
        long operation (the thread is a daemon thread; :func:`depthany.serve.server.run_server` then exits the
        process without waiting for it).
        """
        self.shutdown(grace_s=timeout)
        if self._thread is not None and self._abort_at is not None:
            self._thread.join(max(0.0, self._abort_at - time.perf_counter()) + 1.0)
        if self._thread is None or not self._thread.is_alive():
            for h in self._hooks:
                h.remove()
            self._hooks.clear()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` (or :meth:`stop`) has been called."""
        return self._stopping

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _install_interrupts(self) -> None:
        """Cancellation points in the PyTorch network: a pre-hook on every module raises once aborted.

        Other engines (ONNX Runtime, OpenVINO) cannot be interrupted inside a forward pass.
        """
        if self._hooks or self.predictor.backend != "torch":
            return
        abort = self._abort

        def check(module: Any, args: Any) -> None:
            # only the batcher's own passes: the model may be shared with other callers in this process
            if abort.is_set() and threading.current_thread() is self._thread:
                raise _Interrupted

        self._hooks = [m.register_forward_pre_hook(check) for m in self.predictor.model.modules()]

    @property
    def queued(self) -> int:
        """Requests waiting now."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Requests in the forward pass running now."""
        return self._in_flight

    # ------------------------------------------------------------------------------------------ requests

    def network_size(self, image: LoadedImage) -> tuple[int, int]:
        """The (h, w) the predictor will run ``image`` at: requests batch together only when these match.

        Raises:
            InputBudgetError: the image cannot be fitted into the predictor's token budget.
        """
        return self.predictor.pipeline.fit(*image.size).network_size

    def submit(self, image: LoadedImage) -> Future[tuple[DepthResult, BatchInfo]]:
        """Queue one decoded image; the future resolves to (its result, how it was batched), or fails with
        :class:`ShuttingDown` when the service stops first.

        Raises:
            InputBudgetError: the image cannot be fitted into the token budget (nothing is queued).
            QueueFull: ``max_queue`` requests are already waiting.
            ShuttingDown: the batcher is stopping or not running.
        """
        fit = self.predictor.pipeline.fit(*image.size)
        item = _Item(image, fit.network_size, fit.tokens, Future())
        with self._cond:
            if self._stopping or self._thread is None:
                raise ShuttingDown("the server is not running or is shutting down")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise QueueFull(len(self._queue), self.max_queue, self._retry_after())
            self._queue.append(item)
            self._cond.notify_all()
        return item.future

    def _retry_after(self) -> int:
        per_batch = self.stats.busy_s / self.stats.batches if self.stats.batches else 1.0
        return max(1, math.ceil(len(self._queue) / self.max_batch * per_batch))

    # ------------------------------------------------------------------------------------------ worker

    def _take_batch(self) -> list[_Item]:
        """Block until a batch is ready: the oldest request plus same-size ones, within the wait window."""
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return []
            first = self._queue[0]
            deadline = first.arrived + self.max_wait
            # bounded work: the batch's tokens stay within the budget (an image at the full budget runs alone)
            limit = max(1, min(self.max_batch, self.predictor.max_tokens // max(1, first.tokens)))
            while True:
                same = [it for it in self._queue if it.key == first.key][:limit]
                left = deadline - time.perf_counter()
                if len(same) >= limit or left <= 0 or self._stopping:
                    break
                self._cond.wait(left)
            for it in same:
                self._queue.remove(it)
        # A request whose client went away was cancelled: drop it; the others can no longer be cancelled.
        return [it for it in same if it.future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while True:
            try:
                batch = self._take_batch()
            except Exception as e:  # a bug here must not leave requests hanging: fail them all, keep serving
                self._fail_waiting(e)
                continue
            if not batch:
                if self._stopping:
                    return
                continue
            start = time.perf_counter()
            self._in_flight = len(batch)
            try:
                # LoadedImage passes through the predictor's as_rgb (keeping EXIF); its ImageLike alias omits it
                results = self.predictor.predict_batch([it.image for it in batch])  # type: ignore[misc]
            except _Interrupted:
                for it in batch:
                    it.future.set_exception(ShuttingDown("server is shutting down; the request's forward pass "
                                                         "was interrupted"))
                return
            except Exception as e:  # the model failed: every request in the batch gets the error
                for it in batch:
                    it.future.set_exception(e)
                continue
            finally:
                self._in_flight = 0
            run = time.perf_counter() - start
            self.stats.requests += len(batch)
            self.stats.batches += 1
            self.stats.busy_s += run
            for it, res in zip(batch, results):
                it.future.set_result((res, BatchInfo(len(batch), start - it.arrived, run)))

    def _fail_waiting(self, error: Exception) -> None:
        with self._cond:
            waiting = list(self._queue)
            self._queue.clear()
        for item in waiting:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)
