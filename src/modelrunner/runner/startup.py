"""Start-up timings of this process: one span per step, from the process's start to serving, logged once.

Each process of ``modelrunner serve`` (the supervisor and every worker) keeps one :data:`TIMER`. Phases are
closed by :func:`mark` in order (``spawn`` — the interpreter's own start, up to the first of our modules —
then ``imports``, ``registry``, ...); steps that happen inside a phase, possibly in a thread (``fetch``,
``load``, ``warmup`` of each model), are timed by :func:`step`. :func:`report` logs one line::

    startup w0: spawn 0.05/0.03s | imports 0.61/0.48s | registry 0.04/0.03s | app 0.00/0.00s
      | runtime 0.74/0.66s | bind 0.01/0.01s = 1.45/1.21s; steps: fetch 0.00/0.00s, load 0.63/0.57s, ...

at INFO when ``MODELRUNNER_STARTUP_TIMINGS=1`` (``serve --timings`` sets it for every process), else at
DEBUG. Each span is wall/CPU seconds: the process's CPU time for a phase, the thread's for a step (a loaded
machine stretches the wall time, much less the CPU time). ``bench/cold_start.py`` prints these lines for
every launch. The cost: a few clock reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("modelrunner.runner.startup")

ENV = "MODELRUNNER_STARTUP_TIMINGS"
PREFIX = "startup "
"""Every report line starts with this (after the log format's own prefix): what the benchmark looks for."""


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0", "false")


def _process_started() -> float:
    """When this process started, on ``time.monotonic()``'s clock where Linux tells (``/proc``), else now.

    ``/proc/self/stat`` field 22 is the start in clock ticks since boot; CLOCK_BOOTTIME counts the same."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()
    return time.monotonic() - max(age, 0.0)


class StartupTimer:
    """Phases (closed in order by :meth:`mark`) and steps (summed by name) of one process's start."""

    def __init__(self) -> None:
        self.started = _process_started()
        self._last = (self.started, 0.0)  # (wall, process CPU) at the end of the last phase
        self.phases: list[tuple[str, float, float]] = []
        self.steps: dict[str, tuple[float, float]] = {}
        self.reported = False
        self._lock = threading.Lock()
        self.mark("spawn")  # created when this module is first imported: the interpreter's start ends here

    def mark(self, phase: str) -> None:
        """Close the current phase, calling it ``phase`` (nothing once reported)."""
        now = (time.monotonic(), time.process_time())
        with self._lock:
            if not self.reported:
                self.phases.append((phase, now[0] - self._last[0], now[1] - self._last[1]))
                self._last = now

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name`` (several of one name add up; nothing once reported)."""
        t0, c0 = time.monotonic(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.monotonic() - t0, time.thread_time() - c0
            with self._lock:
                if not self.reported:
                    w, c = self.steps.get(name, (0.0, 0.0))
                    self.steps[name] = (w + wall, c + cpu)

    def line(self, who: str) -> str:
        wall, cpu = self._last[0] - self.started, self._last[1]
        phases = " | ".join(f"{name} {w:.3f}/{c:.3f}s" for name, w, c in self.phases)
        steps = ", ".join(f"{name} {w:.3f}/{c:.3f}s" for name, (w, c) in self.steps.items())
        return f"{PREFIX}{who}: {phases} = {wall:.3f}/{cpu:.3f}s" + (f"; steps: {steps}" if steps else "")

    def report(self, who: str, last_phase: str) -> None:
        """Close ``last_phase`` and log the line (once per process)."""
        self.mark(last_phase)
        with self._lock:
            if self.reported:
                return
            self.reported = True
        log.log(logging.INFO if enabled() else logging.DEBUG, "%s", self.line(who))


TIMER = StartupTimer()


def mark(phase: str) -> None:
    TIMER.mark(phase)


def step(name: str) -> contextlib.AbstractContextManager[None]:
    return TIMER.step(name)


def report(who: str, last_phase: str) -> None:
    TIMER.report(who, last_phase)
