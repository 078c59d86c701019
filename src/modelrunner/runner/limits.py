"""Per-endpoint isolation: each endpoint's own predict threads, a bounded wait queue, a deadline per request.

With one thread pool shared by every endpoint of a worker, requests queued on one slow model (5 s a call)
held every thread, and 1-row requests to a fast endpoint on the same worker waited behind them for up to
49 s. So every endpoint has a :class:`Lane`:

- ``max_concurrency`` predict calls of this endpoint run at once, on threads of its own (created on first
  use), so a slow endpoint can hold only its own threads;
- ``max_queue`` more may wait for one; a request beyond that is refused at once (503, gRPC UNAVAILABLE,
  with ``Retry-After``) instead of queueing for minutes;
- ``timeout_s`` bounds a request's wait plus its predict call: past it the request gets a 504 (gRPC
  DEADLINE_EXCEEDED) naming the endpoint. A queued call is dropped; one already running cannot be stopped
  (a Python thread cannot be interrupted), so it runs to its end and keeps its thread meanwhile.

Calls a deployment runs on the event loop (``batching.CallCost``: fast models on a few rows) take no thread
and skip the lane. With batching on, a request waits in the batcher; ``max_queue`` then counts requests
beyond the ``max_concurrency * max_batch_size`` rows that the running batches can hold.
The counters live on the event loop thread only (no lock on the hot path).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from modelrunner.errors import DeadlineExceeded, InvalidArgument, Unavailable

T = TypeVar("T")

MAX_CONCURRENCY = 256
MAX_QUEUE = 100_000
MAX_TIMEOUT_S = 3600.0
DEFAULT_QUEUE = 256
DEFAULT_TIMEOUT_S = 60.0
RETRY_AFTER_S = 1
KEYS = ("max_concurrency", "max_queue", "timeout_s")


def default_concurrency() -> int:
    """Threads per endpoint when its config says nothing: 2 per core, at most 8."""
    return min(8, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class LimitConfig:
    """An endpoint's limits; ``timeout_s`` 0 means no deadline."""

    max_concurrency: int = field(default_factory=default_concurrency)
    max_queue: int = DEFAULT_QUEUE
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *, concurrency: int | None = None) -> LimitConfig:
        """Read ``{"max_concurrency": 2, "max_queue": 16, "timeout_s": 10}`` of an endpoint config
        (InvalidArgument naming the bad option); ``concurrency`` is the default when it says nothing."""
        config = config or {}
        threads = config.get("max_concurrency")
        if threads is None:
            threads = concurrency or default_concurrency()
        queue = config.get("max_queue", DEFAULT_QUEUE)
        timeout = config.get("timeout_s", DEFAULT_TIMEOUT_S)
        _check_int("max_concurrency", threads, 1, MAX_CONCURRENCY)
        _check_int("max_queue", DEFAULT_QUEUE if queue is None else queue, 0, MAX_QUEUE)
        if timeout is None:
            timeout = DEFAULT_TIMEOUT_S
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
                0 <= timeout <= MAX_TIMEOUT_S):
            raise InvalidArgument(f"timeout_s must be a number of seconds from 0 (none) to "
                                  f"{MAX_TIMEOUT_S:g}, got {timeout!r}", field="timeout_s")
        return cls(threads, DEFAULT_QUEUE if queue is None else queue, float(timeout))

    def to_config(self) -> dict[str, Any]:
        return {"max_concurrency": self.max_concurrency, "max_queue": self.max_queue,
                "timeout_s": self.timeout_s}


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer from {low} to {high}, got {value!r}", field=name)


class Pinned(Protocol):
    """What a call holds while it runs: a deployment's in-flight count (event loop thread only)."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def _hold_until_done(pin: Pinned, future: Future[Any]) -> None:
    loop = asyncio.get_running_loop()
    pin.acquire()
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(pin.release))


class Lane:
    """One endpoint's threads, queue bound and deadline (see the module docstring).

    Deadlines cost no timer per request (``asyncio.timeout`` added ~13 us to each): every waiting request
    goes into ``_deadlines`` (insertion order is deadline order, the timeout being the lane's), and one timer
    per lane fires at the oldest deadline, cancels what expired and re-arms at the next.
    """

    def __init__(self, endpoint: str, config: LimitConfig) -> None:
        self.endpoint = endpoint
        self.config = config
        self.executor = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix=f"predict-{endpoint}")
        self.pending = 0
        """Requests of this endpoint running or waiting in this lane (event loop thread only)."""
        self._timeout = config.timeout_s or None
        self._deadlines: dict[asyncio.Future[Any], float] = {}
        self._expired: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def call(self, pin: Pinned, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of this endpoint's threads, within the deadline (Unavailable when full).

        A call still running at the deadline keeps ``pin`` (its deployment) acquired until it ends, so a swap
        does not close a model a thread is still using.
        """
        self._admit(self.config.max_concurrency + self.config.max_queue)
        future = self.executor.submit(fn, *args)
        try:
            return await self._wait(asyncio.wrap_future(future))
        except DeadlineExceeded:
            if not future.cancel():  # queued: dropped; running: cannot be stopped, ends on its own
                _hold_until_done(pin, future)
            raise

    async def bounded(self, per_call: int, waiter: asyncio.Future[T]) -> T:
        """Await ``waiter`` (a batched request) under the queue bound and the deadline; ``per_call`` is the
        number of requests one running call may hold (the batch size)."""
        try:
            self._admit(self.config.max_concurrency * per_call + self.config.max_queue)
        except Unavailable:
            waiter.cancel()  # the batcher leaves a cancelled request out
            raise
        return await self._wait(waiter)

    async def _wait(self, waiter: asyncio.Future[T]) -> T:
        self.pending += 1
        if self._timeout is not None:
            self._deadlines[waiter] = time.monotonic() + self._timeout
            if self._timer is None:
                self._arm(self._timeout)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter not in self._expired:
                raise  # the request itself was cancelled
            raise self._late() from None
        finally:
            self.pending -= 1
            self._deadlines.pop(waiter, None)
            self._expired.discard(waiter)

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.001), self._expire)

    def _expire(self) -> None:
        """Cancel every request past its deadline (the oldest come first), re-arm at the next deadline."""
        self._timer = None
        now = time.monotonic()
        late = []
        for waiter, deadline in self._deadlines.items():
            if deadline > now:
                self._arm(deadline - now)
                break
            late.append(waiter)
        for waiter in late:
            del self._deadlines[waiter]
            if not waiter.done():
                self._expired.add(waiter)
                waiter.cancel()

    def _admit(self, capacity: int) -> None:
        if self.pending >= capacity:
            config = self.config
            raise Unavailable(
                f"endpoint {self.endpoint!r} is overloaded: {self.pending} requests already running or "
                f"queued on this worker (max_concurrency {config.max_concurrency}, "
                f"max_queue {config.max_queue}); retry later",
                endpoint=self.endpoint, retry_after_s=RETRY_AFTER_S)

    def _late(self) -> DeadlineExceeded:
        timeout = self.config.timeout_s
        return DeadlineExceeded(f"endpoint {self.endpoint!r} did not answer within {timeout:g}s "
                                "(its timeout_s)", endpoint=self.endpoint, timeout_s=timeout)

    def close(self) -> None:
        """Free the threads once the calls already handed to them end (does not wait)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.executor.shutdown(wait=False)
