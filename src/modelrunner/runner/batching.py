"""Adaptive batching: concurrent requests to one deployment merged into one ``predict`` call, split back.

Per endpoint, a switch and two settings (named as Triton, BentoML and Clipper name them): ``batch`` (on by
default for batch-safe flavors, see :class:`BatchConfig`), ``max_batch_size`` (rows in one merged call; 1 =
batching off) and ``max_latency_ms`` (the longest a request waits for others).

By default (``auto``) a lone client pays nothing: while a deployment has nothing queued or running and its
last flushes each held one request, a request skips the queue (:meth:`Batcher.lone`) and runs as with
batching off. With batching asked for explicitly (``batch: true`` or a ``max_batch_size``) every request goes
through the queue, so a burst is merged from its first request on. Two requests
reaching the batcher in one loop iteration, or a flush holding several, mark it crowded: the next
``CROWDED_FLUSHES`` flushes go through the queue even if they hold one request each.

How a batch forms, per :class:`~modelrunner.runner.endpoint.Deployment` (so a swap never mixes versions in one
batch: requests pinned to the old version are flushed on it):

- a request joins its deployment's queue (already validated, so a bad row fails only its own request);
- when no batch of that deployment is running, the queue is flushed on the next turn of the event loop (no
  timer): a lone request on an idle server does not wait; when several requests arrived in one turn
  (concurrent clients), the flush waits one turn more, so that the requests the loop read meanwhile join
  (only one: waiting for a stream of arrivals to pause holds every client of the batch, and measured slower);
- while a batch runs (in a thread), new requests wait for it to end, then go together as the next batch;
- nobody waits longer than ``max_latency_ms``: then the queue is flushed even if a batch is still running;
- a queue holding ``max_batch_size`` rows is flushed at once.

One flush runs one ``predict`` on the merged columns (``numpy.concatenate`` per field) and slices every output
back by row offsets. If the merged call raises, every request is retried alone so only the bad ones fail.
Batch sizes (rows per merged call) go to the observer's ``batch`` (the ``modelrunner_batch_size`` histogram
in a worker).

Where a batch's merged call runs (on the loop or in the endpoint's threads) is :mod:`runner.cost`'s call: the
deployment's :class:`~modelrunner.runner.cost.CallCost` decides. Checking and writing an endpoint's config
(batching and limits) is :mod:`runner.config`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import numpy as np

from modelrunner.errors import ModelrunnerError
from modelrunner.runner.batch_config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LATENCY_MS,
    MAX_BATCH_SIZE,
    MAX_LATENCY_MS,
    BatchConfig,
    BatchMode,
)
from modelrunner.runner.cost import CallCost, cost_of

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LATENCY_MS",
    "MAX_BATCH_SIZE",
    "MAX_LATENCY_MS",
    "BatchConfig",
    "BatchMode",
    "Batcher",
    "merge",
    "split",
]

Columns = Mapping[str, np.ndarray]
CROWDED_FLUSHES = 32
"""After a sign of concurrency, this many flushes go through the queue before a lone request skips it."""
Runner = Callable[[Any, Columns], Mapping[str, np.ndarray]]
"""``(deployment, columns) -> output columns``: one blocking predict (run in the executor)."""


class _Request:
    __slots__ = ("columns", "rows", "future")

    def __init__(self, columns: Columns, rows: int, future: asyncio.Future[Mapping[str, np.ndarray]]) -> None:
        self.columns = columns
        self.rows = rows
        self.future = future


class _Queue:
    """Requests waiting for one deployment, and how many of its batches are running.

    ``scheduled``: a flush is posted to the loop (the queue is gathering); ``grew``: a request joined since
    that flush was posted; ``deferred``: the flush already waited its one extra turn."""

    __slots__ = ("items", "rows", "running", "scheduled", "grew", "deferred", "timer")

    def __init__(self) -> None:
        self.items: list[_Request] = []
        self.rows = 0
        self.running = 0
        self.scheduled = False
        self.grew = False
        self.deferred = False
        self.timer: asyncio.TimerHandle | None = None


class Batcher:
    """Merges concurrent requests to one deployment into one predict call (see the module docstring)."""

    def __init__(
        self,
        config: BatchConfig,
        run: Runner,
        *,
        executor: Executor | None = None,
        endpoint: str = "",
        observe: Callable[[str, int], None] | None = None,
    ) -> None:
        self.config = config
        self._run = run
        self._executor = executor
        self._endpoint = endpoint
        self._observe = observe if observe is not None else _unobserved
        self._latency_s = config.max_latency_ms / 1000.0
        self._queues: dict[Any, _Queue] = {}
        self.batches = 0
        self._crowded = 0  # flushes left before a lone request may skip the queue again
        self._ticking = False  # a request skipped the queue in this loop iteration

    def lone(self, dep: Any) -> bool:
        """True when a request to ``dep`` may run now, outside any batch: nothing of ``dep`` queued or
        running, no concurrency seen lately, and no other request skipped the queue in this loop iteration
        (then the caller runs it as with batching off, on the loop, or through :meth:`alone`)."""
        if self._crowded or dep in self._queues:
            return False
        if self._ticking:  # a second request in one loop iteration: clients are concurrent
            self._crowded = CROWDED_FLUSHES
            return False
        self._ticking = True
        asyncio.get_running_loop().call_soon(self._tick)
        self._observe(self._endpoint, 1)
        return True

    def _tick(self) -> None:
        self._ticking = False

    def alone(
        self, dep: Any, call: asyncio.Future[Mapping[str, np.ndarray]]
    ) -> asyncio.Future[Mapping[str, np.ndarray]]:
        """``call`` (a lone request's predict, running in a thread) counts as a batch of ``dep`` until it
        ends: requests arriving meanwhile queue up and go together after it."""
        queue = self._queues.get(dep)
        if queue is None:
            queue = self._queues[dep] = _Queue()
        queue.running += 1

        def ended(_: asyncio.Future[Any]) -> None:
            queue.running -= 1
            self._after_batch(dep, queue)

        call.add_done_callback(ended)
        return call

    async def submit(self, dep: Any, columns: Columns, rows: int | None = None) -> Mapping[str, np.ndarray]:
        """Predict ``columns`` (validated) on ``dep`` as part of a batch; returns this request's rows."""
        return await self.enqueue(dep, columns, rows)

    def enqueue(
        self, dep: Any, columns: Columns, rows: int | None = None
    ) -> asyncio.Future[Mapping[str, np.ndarray]]:
        """Queue ``columns`` (validated) for a batch on ``dep``; the future gets this request's rows (cancel
        it to leave the request out of a batch not started yet)."""
        loop = asyncio.get_running_loop()
        if rows is None:
            rows = _rows(columns)
        queue = self._queues.get(dep)
        if queue is None:
            queue = self._queues[dep] = _Queue()
        future: asyncio.Future[Mapping[str, np.ndarray]] = loop.create_future()
        queue.items.append(_Request(columns, rows, future))
        queue.rows += rows
        if queue.rows >= self.config.max_batch_size:
            self._flush(dep, queue)
        elif queue.running == 0:
            if queue.scheduled:
                queue.grew = True
            else:
                queue.scheduled, queue.grew, queue.deferred = True, False, False
                loop.call_soon(self._flush_idle, dep, queue)
        elif queue.timer is None:
            queue.timer = loop.call_later(self._latency_s, self._flush, dep, queue)
        return future

    def _flush_idle(self, dep: Any, queue: _Queue) -> None:
        """Flush what gathered; when requests joined after the first (clients are concurrent), post the flush
        once more, behind the requests the loop read meanwhile. A lone request is flushed at once."""
        if queue.grew and not queue.deferred and queue.items and queue.running == 0:
            queue.deferred = True
            asyncio.get_running_loop().call_soon(self._flush_idle, dep, queue)
            return
        queue.scheduled = False
        if queue.items:
            self._flush(dep, queue)

    def _flush(self, dep: Any, queue: _Queue) -> None:
        """Start batches for everything queued (at most ``max_batch_size`` rows each): a fast model's merged
        call runs here, on the loop (no task, no extra turn); a slow one's in a task, in the threads."""
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        meters = cost_of(dep)
        while queue.items:
            batch = self._take(queue)
            cost = meters.meter(sum(r.rows for r in batch))  # the merged call's size; None: too big
            if len(batch) > 1:
                self._crowded = CROWDED_FLUSHES
            elif self._crowded:
                self._crowded -= 1
            self.batches += 1
            if cost is not None and cost.inline:
                self._run_here(dep, batch, cost)
            else:
                queue.running += 1
                task = asyncio.get_running_loop().create_task(self._execute(dep, queue, batch, cost))
                task.add_done_callback(_retrieve)
        if queue.running == 0 and self._queues.get(dep) is queue:
            del self._queues[dep]  # nothing left for this deployment: drop its queue (a retired one goes)

    def _take(self, queue: _Queue) -> list[_Request]:
        """Requests from the head of the queue up to ``max_batch_size`` rows (always at least one)."""
        limit = self.config.max_batch_size
        items = queue.items
        taken, rows = 1, items[0].rows
        while taken < len(items) and rows + items[taken].rows <= limit:
            rows += items[taken].rows
            taken += 1
        batch, queue.items = items[:taken], items[taken:]
        queue.rows -= rows
        return batch

    def _run_here(self, dep: Any, batch: list[_Request], cost: CallCost) -> None:
        """A batch of a fast model, on the loop (its live requests keep its deployment pinned)."""
        try:
            live = [r for r in batch if not r.future.done()]  # a cancelled client leaves its row out
            if live:
                _answer(live, cost.on_loop(self._predict_batch, dep, live))
        except BaseException as exc:  # noqa: BLE001 - whatever happens, every waiting request gets an answer
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise

    async def _execute(self, dep: Any, queue: _Queue, batch: list[_Request], cost: CallCost | None) -> None:
        """A batch in the executor's threads; requests arriving meanwhile wait for it (``queue.running``)."""
        dep.acquire()  # the batch pins its deployment itself: its requests may give up (timeout_s) first
        try:
            live = [r for r in batch if not r.future.done()]
            if live:
                loop = asyncio.get_running_loop()
                _answer(
                    live,
                    await loop.run_in_executor(self._executor, _timer(cost), self._predict_batch, dep, live),
                )
        except BaseException as exc:  # noqa: BLE001 - whatever happens, every waiting request gets an answer
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            dep.release()
            queue.running -= 1
            self._after_batch(dep, queue)

    def _after_batch(self, dep: Any, queue: _Queue) -> None:
        if queue.items:
            if queue.running == 0:
                self._flush(dep, queue)
        elif queue.running == 0 and self._queues.get(dep) is queue:
            del self._queues[dep]  # nothing left for this deployment: drop its queue (a retired one goes)

    def _predict_batch(self, dep: Any, batch: list[_Request]) -> list[Any]:
        """In a thread: one merged predict, split back; on failure, each request alone."""
        total = sum(r.rows for r in batch)
        self._observe(self._endpoint, total)
        if len(batch) == 1:
            return [_call(self._run, dep, batch[0].columns)]
        try:
            merged = merge([r.columns for r in batch])
        except ValueError:  # keys or per-row shapes differ: these requests cannot share one call
            return [_call(self._run, dep, r.columns) for r in batch]
        try:
            out = self._run(dep, merged)
            return split(out, [r.rows for r in batch], total)
        except ModelrunnerError as exc:
            if not _is_per_row(exc):
                return [exc] * len(batch)
        except Exception:  # noqa: BLE001 - one bad row must not fail the others: retry each alone
            log.debug(
                "batched predict on %s failed; retrying its %d requests one by one",
                self._endpoint,
                len(batch),
                exc_info=True,
            )
        return [_call(self._run, dep, r.columns) for r in batch]


def _answer(live: list[_Request], results: list[Any]) -> None:
    """Each request its own rows, or its own error."""
    for request, result in zip(live, results, strict=True):
        future = request.future
        if not future.done():
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _fail(batch: list[_Request], exc: BaseException) -> None:
    for request in batch:
        if not request.future.done():
            request.future.set_exception(exc)


def _is_per_row(exc: ModelrunnerError) -> bool:
    """Errors that may come from one request's rows (retry alone), not from the deployment (fail all)."""
    return exc.code not in ("unavailable", "not_found")


def _call(run: Runner, dep: Any, columns: Columns) -> Any:
    try:
        return run(dep, columns)
    except Exception as exc:  # noqa: BLE001 - handed to the request's future, raised in its handler
        return exc


def _rows(columns: Columns) -> int:
    for value in columns.values():
        return len(value)
    return 0


def merge(parts: list[Columns]) -> dict[str, np.ndarray]:
    """One batch from several (same fields, same per-row shapes); ValueError when they do not fit."""
    keys = parts[0].keys()
    for part in parts[1:]:
        if part.keys() != keys:
            raise ValueError("requests carry different fields")
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def split(out: Mapping[str, np.ndarray], sizes: list[int], total: int) -> list[Mapping[str, np.ndarray]]:
    """Slice every output column back into one answer per request (by row offsets)."""
    for name, column in out.items():
        if len(column) != total:
            raise ValueError(f"output {name!r} has {len(column)} rows for a batch of {total}")
    answers: list[Mapping[str, np.ndarray]] = []
    start = 0
    for size in sizes:
        end = start + size
        answers.append({name: column[start:end] for name, column in out.items()})
        start = end
    return answers


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("batch task failed", exc_info=task.exception())


def _unobserved(endpoint: str, rows: int) -> None:
    """No observer given: batch sizes are not reported."""


def _untimed(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _timer(cost: CallCost | None) -> Callable[..., Any]:
    """How a batch runs in a thread: timed by ``cost`` (none for a batch over INLINE_MAX_ROWS rows)."""
    return cost.timed if cost is not None else _untimed
