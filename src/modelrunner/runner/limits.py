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

Calls a deployment runs on the event loop (``cost.CallCost``: fast models on a few rows) take no thread
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
        check_number("timeout_s", timeout, MAX_TIMEOUT_S, "a number of seconds from 0 (none)")
        return cls(threads, DEFAULT_QUEUE if queue is None else queue, float(timeout))

    def to_config(self) -> dict[str, Any]:
        return {
            "max_concurrency": self.max_concurrency,
            "max_queue": self.max_queue,
            "timeout_s": self.timeout_s,
        }


def check_number(name: str, value: Any, high: float, wording: str = "a number from 0") -> None:
    """InvalidArgument naming ``name`` unless ``value`` is an int or float (not a bool) from 0 to ``high``;
    the message says ``{name} must be {wording} to {high}``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise InvalidArgument(f"{name} must be {wording} to {high:g}, got {value!r}", field=name)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer from {low} to {high}, got {value!r}", field=name)


class Pinned(Protocol):
    """What a call holds while it runs: a deployment's in-flight count (event loop thread only)."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


class Lane:
    """One endpoint's threads, queue bound and deadline (see the module docstring).

    Cheap on the hot path: no timer per request (``asyncio.timeout`` added ~13 us to each) and no coroutine
    of its own (one more coroutine in the await chain measured ~4 us a request with 32 in flight).
    ``submit`` and ``bounded`` hand back a future the request awaits, as ``run_in_executor`` and the
    batcher did; every waiting request is in ``_deadlines`` (insertion order is deadline order, the timeout
    being the lane's), and one timer per lane fires at the oldest deadline, fails what expired and re-arms
    at the next.
    """

    def __init__(self, endpoint: str, config: LimitConfig) -> None:
        self.endpoint = endpoint
        self.config = config
        self.executor = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix=f"predict-{endpoint}")
        self.pending = 0
        """Calls handed to this lane's threads and not ended, plus batched requests waiting (loop only)."""
        self._timeout = config.timeout_s or None
        self._deadlines: dict[asyncio.Future[Any], tuple[float, Future[Any] | None, Pinned | None]] = {}
        self._held: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, pin: Pinned, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on one of this endpoint's threads: a future of its result, or of DeadlineExceeded
        past ``timeout_s``; Unavailable (raised) when ``max_concurrency + max_queue`` calls are pending.

        A call still running at the deadline keeps ``pin`` (its deployment) acquired until it ends, so a swap
        does not close a model a thread is still using; it counts as pending until then (its thread is busy).
        """
        self._admit(self.config.max_concurrency + self.config.max_queue)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        future = self.executor.submit(fn, *args)
        self.pending += 1
        self._watch(waiter, future, pin)

        def ended(_: Future[Any]) -> None:  # in the thread that ran the call (or cancelled it)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._ended, future, waiter, pin)

        future.add_done_callback(ended)
        return waiter

    def _ended(self, future: Future[T], waiter: asyncio.Future[T], pin: Pinned) -> None:
        self.pending -= 1
        self._deadlines.pop(waiter, None)
        if waiter in self._held:
            self._held.discard(waiter)
            pin.release()
        if waiter.done():  # past its deadline, or the request was cancelled
            return
        if future.cancelled():
            waiter.cancel()
        elif (exc := future.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(future.result())

    def bounded(self, per_call: int, waiter: asyncio.Future[T]) -> asyncio.Future[T]:
        """``waiter`` (a batched request's future) under the queue bound and the deadline: it gets
        DeadlineExceeded past ``timeout_s``; ``per_call`` is the number of requests one running call may
        hold (the batch size). Unavailable (raised) when the bound is reached."""
        try:
            self._admit(self.config.max_concurrency * per_call + self.config.max_queue)
        except Unavailable:
            waiter.cancel()  # the batcher leaves a finished request out of its batches
            raise
        self.pending += 1
        self._watch(waiter, None, None)
        waiter.add_done_callback(self._batched_done)
        return waiter

    def _batched_done(self, waiter: asyncio.Future[Any]) -> None:
        self.pending -= 1
        self._deadlines.pop(waiter, None)

    def _watch(self, waiter: asyncio.Future[Any], future: Future[Any] | None, pin: Pinned | None) -> None:
        if self._timeout is not None:
            self._deadlines[waiter] = (time.monotonic() + self._timeout, future, pin)
            if self._timer is None:
                self._arm(self._timeout)

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.001), self._expire)

    def _expire(self) -> None:
        """Fail every request past its deadline (the oldest come first), re-arm at the next deadline."""
        self._timer = None
        now = time.monotonic()
        late = []
        for waiter, (deadline, _, _) in self._deadlines.items():
            if deadline > now:
                self._arm(deadline - now)
                break
            late.append(waiter)
        for waiter in late:
            _, future, pin = self._deadlines.pop(waiter)
            if waiter.done():
                continue
            # a queued call is dropped; a running one cannot be stopped: it keeps its version pinned
            if future is not None and not future.cancel() and pin is not None:
                pin.acquire()
                self._held.add(waiter)
            waiter.set_exception(self._late())

    def _admit(self, capacity: int) -> None:
        if self.pending >= capacity:
            config = self.config
            raise Unavailable(
                f"endpoint {self.endpoint!r} is overloaded: {self.pending} requests already running or "
                f"queued on this worker (max_concurrency {config.max_concurrency}, "
                f"max_queue {config.max_queue}); retry later",
                endpoint=self.endpoint,
                retry_after_s=RETRY_AFTER_S,
            )

    def _late(self) -> DeadlineExceeded:
        timeout = self.config.timeout_s
        return DeadlineExceeded(
            f"endpoint {self.endpoint!r} did not answer within {timeout:g}s (its timeout_s)",
            endpoint=self.endpoint,
            timeout_s=timeout,
        )

    def close(self) -> None:
        """Free the threads once the calls already handed to them end (does not wait)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.executor.shutdown(wait=False)
