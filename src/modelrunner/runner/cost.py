"""Where a deployment's predict call runs: on the event loop or in the endpoint's threads, by its cost.

A deployment's calls are timed. While they average under ``INLINE_MAX_S`` of CPU (a fast model, e.g. a linear
model on a few rows) they run on the event loop, because handing them to a thread costs more than the call
itself (a queue, a wake-up, and waiting for the GIL); the first ``PROBE_CALLS`` calls of every deployment, and
slower ones, run in the executor so the loop keeps serving. CPU time, not wall clock, is the measure: on a
busy machine the wall clock also counts waiting for a core, and in threads it counts waiting for the GIL. A
call run on the loop that mostly waited (wall clock over ``INLINE_MAX_WALL_S``, less than half of it CPU: I/O,
sleeping, another thread's work) sends the deployment back to the executor for the next ``RECHECK_CALLS``
calls -- when the thread gave the CPU up itself (a voluntary context switch, Linux's per-thread rusage): a
call that was only preempted (a busy machine) did not wait for anything a thread would spare it, and sending
200 calls to threads for it cost ~300 us of CPU per request on a shared 2-core machine.

A deployment has one meter per request size (:data:`ROW_CLASSES`: up to 16, 128 and 1,024 rows), each probed
and averaged on its own: a model fast on one row may not be on a thousand, and a 100-row request to a fast
model (digits LR: ~0.1 ms) ran in a thread for nothing while one size class said "a thread for any request
over 16 rows" (served, 1 worker: 510 -> 446 us of CPU per 100-row request with it on the loop, against the
bare app's 377). Requests of more than ``INLINE_MAX_ROWS`` rows always run in the executor.

Used by :class:`~modelrunner.runner.endpoint.Endpoint` for single requests and by the batcher for merged
calls.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping
from typing import Any

INLINE_MAX_S = 0.001
"""Calls whose recent average CPU time is under this run on the event loop."""
INLINE_MAX_WALL_S = 0.005
"""A call on the loop that took longer than this, mostly waiting, sends the deployment back to threads."""
PROBE_CALLS = 5
RECHECK_CALLS = 200
"""Calls of a new deployment timed in the executor before it may run on the loop."""
SAMPLE_EVERY = 16
"""On the loop, one call in this many is timed (reading a thread's CPU clock is a system call)."""
ROW_CLASSES = (16, 128, 1024)
"""The request sizes (rows, upper bounds) a deployment's calls are timed by separately."""
INLINE_MAX_ROWS = ROW_CLASSES[-1]
"""Only requests of at most this many rows may run on the loop: a larger request goes to a thread whatever
the averages say, so no single request can hold the loop for long."""


_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)


def voluntary_switches() -> int:
    """This thread's voluntary context switches so far (blocking waits); -1 where the OS does not say."""
    if _RUSAGE_THREAD is None:
        return -1
    return resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


def rows_of(columns: Mapping[str, Any]) -> int:
    """A request's rows (its first column's length; 0 for no column)."""
    for column in columns.values():
        return len(column)
    return 0


class CallCost:
    """A moving average of one deployment's predict time; says whether its next call may run on the loop."""

    __slots__ = ("cpu_s", "calls", "threaded_until")

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.calls = 0
        self.threaded_until = PROBE_CALLS

    @property
    def inline(self) -> bool:
        return self.calls >= self.threaded_until and self.cpu_s <= INLINE_MAX_S

    def add(self, cpu_s: float) -> None:
        self.cpu_s = cpu_s if self.calls == 0 else 0.8 * self.cpu_s + 0.2 * cpu_s
        self.calls += 1

    def timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        """In a thread: ``fn(*args)``, its CPU time added to the average (also when it raises)."""
        cpu = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.add(time.thread_time() - cpu)

    def on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """On the event loop: like :meth:`timed` (for the first calls, then one in ``SAMPLE_EVERY``); a call
        that mostly waited sends the next ones to threads."""
        since = self.calls - self.threaded_until
        if since >= 2 and since % SAMPLE_EVERY:
            self.calls += 1
            return fn(*args)
        switches, cpu, wall = voluntary_switches(), time.thread_time(), time.perf_counter()
        try:
            return fn(*args)
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            self.add(cpu)
            if wall > INLINE_MAX_WALL_S and cpu < wall / 2 and waited(switches):
                self.threaded_until = self.calls + RECHECK_CALLS


def waited(before: int) -> bool:
    """Whether this thread blocked since ``voluntary_switches()`` said ``before`` (True where unknown)."""
    return before < 0 or voluntary_switches() > before


class CostMeters:
    """A deployment's call-cost meters, one per size class of :data:`ROW_CLASSES`."""

    __slots__ = ("meters",)

    def __init__(self) -> None:
        self.meters = tuple(CallCost() for _ in ROW_CLASSES)

    def meter(self, rows: int) -> CallCost | None:
        """The meter of requests of ``rows`` rows; None over ``INLINE_MAX_ROWS`` (always a thread)."""
        for bound, meter in zip(ROW_CLASSES, self.meters, strict=True):
            if rows <= bound:
                return meter
        return None

    def inline(self, rows: int) -> CallCost | None:
        """The meter of ``rows`` rows when its calls may run on the loop, else None (a thread)."""
        meter = self.meter(rows)
        return meter if meter is not None and meter.inline else None


def cost_of(dep: Any) -> CostMeters:
    """The call-cost meters of a deployment (created on first use)."""
    cost: CostMeters | None = getattr(dep, "cost", None)
    if cost is None:
        cost = CostMeters()
        dep.cost = cost
    return cost
