"""Dynamic batching: concurrent requests share forward passes of one resident model.

One worker thread owns the model. Requests wait in a bounded queue; the worker takes the oldest one and,
for up to ``max_wait_ms`` after it arrived, gathers up to ``max_batch`` waiting requests whose images run at
the *same network size* (the predictor never pads, so only those can share a forward pass; others wait for
their own batch). When the queue is full, :meth:`DynamicBatcher.submit` refuses at once with
:class:`QueueFull`, which the service turns into ``503 Retry-After``: a bounded queue keeps latency and memory
bounded under overload instead of letting both grow without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import transforms
from ..io.image import LoadedImage

if TYPE_CHECKING:
    from ..predictor import DepthPredictor
    from ..result import DepthResult


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
        max_batch: most requests per forward pass.
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

    # ------------------------------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="depthany-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the running batch, fail the waiting requests, stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._fail_waiting(RuntimeError("server is shutting down"))
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        """Requests waiting now."""
        return len(self._queue)

    # ------------------------------------------------------------------------------------------ requests

    def network_size(self, image: LoadedImage) -> tuple[int, int]:
        """The (h, w) the predictor will run ``image`` at: requests batch together only when these match."""
        h, w = image.size
        return transforms.network_size(h, w, self.predictor.input_size, self.predictor.spec.preprocess.multiple)

    def submit(self, image: LoadedImage) -> Future[tuple[DepthResult, BatchInfo]]:
        """Queue one decoded image; the future resolves to (its result, how it was batched).

        Raises:
            QueueFull: ``max_queue`` requests are already waiting.
            RuntimeError: the batcher is not running.
        """
        item = _Item(image, self.network_size(image), Future())
        with self._cond:
            if self._stopping or self._thread is None:
                raise RuntimeError("the batcher is not running")
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
            while True:
                same = [it for it in self._queue if it.key == first.key][: self.max_batch]
                left = deadline - time.perf_counter()
                if len(same) >= self.max_batch or left <= 0 or self._stopping:
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
            try:
                # LoadedImage passes through the predictor's as_rgb (keeping EXIF); its ImageLike alias omits it
                results = self.predictor.predict_batch([it.image for it in batch])  # type: ignore[misc]
            except Exception as e:  # the model failed: every request in the batch gets the error
                for it in batch:
                    it.future.set_exception(e)
                continue
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
