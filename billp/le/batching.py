"""Dynamic batching: requests from many threads, run together by one worker thread.

Callers block in :meth:`DynamicBatcher.submit`. The worker takes the queued requests, at most
``max_size`` of them, and runs them with one call of ``run`` (for the LE: one forward pass).
Before it starts the next batch it waits for the callers the previous batch answered to come
back (with those that queued while it ran, they are the batch it expects), but at most
``max_wait_s`` after the later of the first queued request's arrival and the previous batch's
end. A lone caller is therefore never kept waiting (it is all the batch expected), and a
caller that does not come back (its episode ended, its policy is thinking) costs each batch
at most ``max_wait_s``.

The worker starts on the first request, ends after ``idle_exit_s`` without any (a later
request starts a new one) and on :meth:`DynamicBatcher.close`. When ``run`` raises, every
caller of that batch gets a :class:`BatchFailedError`; none is left waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from billp.le.errors import LEError

Request = TypeVar("Request")
Result = TypeVar("Result")

IDLE_EXIT_S = 5.0
"""Seconds a worker waits for work before it ends. Restarting one costs well under a
millisecond, so ending early is cheap; 5 s keeps one worker through a stepping loop's pauses
without leaving threads behind models that are no longer used."""
CLOSE_JOIN_S = 60.0
"""Longest :meth:`DynamicBatcher.close` waits for the batch in flight (a CPU forward pass of
the largest batch takes a few seconds)."""


class BatchFailedError(LEError):
    """The batch a request was part of failed (its cause is the worker's exception)."""


class BatcherClosedError(LEError):
    """A request reached a batcher after :meth:`DynamicBatcher.close`."""


@dataclass
class _Pending(Generic[Request, Result]):
    request: Request
    arrived: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class BatchStats:
    """Counters since the batcher was made."""

    batches: int
    requests: int
    largest: int
    """Most requests in one batch."""


class DynamicBatcher(Generic[Request, Result]):
    """Runs concurrent callers' requests in batches of at most ``max_size`` (see the module)."""

    def __init__(
        self,
        run: Callable[[list[Request]], Sequence[Result]],
        max_size: int,
        max_wait_s: float,
        name: str = "billp-batcher",
        idle_exit_s: float = IDLE_EXIT_S,
    ) -> None:
        """
        Args:
            run: answers a batch of requests, one result per request, in order.
            max_size: most requests per call of ``run``.
            max_wait_s: longest wait for more requests before a batch starts (see the module).
            name: the worker thread's name.
            idle_exit_s: seconds without requests after which the worker ends.
        """
        if max_size < 1:
            raise LEError(f"max_size must be >= 1, got {max_size}")
        if max_wait_s < 0 or idle_exit_s <= 0:
            raise LEError(
                f"max_wait_s must be >= 0 and idle_exit_s > 0, got {max_wait_s}, {idle_exit_s}"
            )
        self._run = run
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.name = name
        self.idle_exit_s = idle_exit_s
        self._queue: deque[_Pending[Request, Result]] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._expected = 1
        """Requests the next batch expects: the previous batch's, plus those queued meanwhile."""
        self._last_end = 0.0
        self._batches = 0
        self._requests = 0
        self._largest = 0

    @property
    def stats(self) -> BatchStats:
        with self._cond:
            return BatchStats(self._batches, self._requests, self._largest)

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        with self._cond:
            return len(self._queue)

    @property
    def worker(self) -> threading.Thread | None:
        """The worker thread while one runs."""
        with self._cond:
            return self._worker

    def submit(self, request: Request) -> Result:
        """Run ``request`` in the next batch and return its result (blocks until then).

        Raises:
            BatcherClosedError: the batcher was closed.
            BatchFailedError: ``run`` raised for the batch (``__cause__``: its exception).
        """
        pending: _Pending[Request, Result] = _Pending(request, time.monotonic())
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            self._queue.append(pending)
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._worker.start()
            self._cond.notify_all()
        pending.done.wait()
        if pending.error is not None:
            raise BatchFailedError(
                f"{self.name}: the batch failed: {pending.error}"
            ) from pending.error
        return cast(Result, pending.result)  # set before done when there is no error

    def close(self) -> None:
        """Answer the queued requests, stop the worker and refuse later requests."""
        with self._cond:
            self._closed = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(CLOSE_JOIN_S)

    # -- worker ----------------------------------------------------------------------------

    def _next_batch(self) -> list[_Pending[Request, Result]] | None:
        """The next batch (None: the worker should end). Called holding ``_cond``."""
        idle_until = time.monotonic() + self.idle_exit_s
        while not self._queue:
            remaining = idle_until - time.monotonic()
            if self._closed or remaining <= 0:
                return None
            self._cond.wait(remaining)
        expected = min(self._expected, self.max_size)
        if len(self._queue) < expected and not self._closed:
            deadline = max(self._queue[0].arrived, self._last_end) + self.max_wait_s
            while len(self._queue) < expected and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        count = min(len(self._queue), self.max_size)
        return [self._queue.popleft() for _ in range(count)]

    def _answer(self, batch: list[_Pending[Request, Result]]) -> None:
        try:
            results = list(self._run([p.request for p in batch]))
            if len(results) != len(batch):
                raise LEError(f"run answered {len(results)} of {len(batch)} requests")
        except Exception as exc:  # handed to every caller of the batch (BatchFailedError)
            for pending in batch:
                pending.error = exc
                pending.done.set()
            return
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
            pending.done.set()

    def _serve(self) -> None:
        batch: list[_Pending[Request, Result]] = []
        ended = False
        try:
            while True:
                with self._cond:
                    next_batch = self._next_batch()
                    if next_batch is None:
                        self._worker = None  # a later submit starts a new worker
                        ended = True
                        return
                    batch = next_batch
                    self._batches += 1
                    self._requests += len(batch)
                    self._largest = max(self._largest, len(batch))
                self._answer(batch)
                with self._cond:
                    self._last_end = time.monotonic()
                    self._expected = len(batch) + len(self._queue)
                batch = []
        finally:
            if not ended:
                self._strand(batch)

    def _strand(self, batch: list[_Pending[Request, Result]]) -> None:
        """The loop broke (a BaseException): fail the requests it held and the queued ones
        rather than leave their callers waiting forever."""
        with self._cond:
            self._worker = None
            stranded = [*batch, *self._queue]
            self._queue.clear()
        for pending in stranded:
            if not pending.done.is_set():
                pending.error = LEError("the batching worker stopped unexpectedly")
                pending.done.set()
