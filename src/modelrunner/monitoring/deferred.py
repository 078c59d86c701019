"""Multiprocess metric values written to their files in batches, not on every ``inc``.

In multiprocess mode prometheus_client keeps every value in a per-process memory-mapped file and writes it on
each ``inc``/``set``: a lock, a fork check and a struct write, ~1-2 µs each, and a served request makes five
of them (in-flight up and down, the request counter, the latency histogram's sum and bucket) — measured at
~15 % of a batched 1-row request's CPU. Here the value is updated in the process (under a lock, so threads
lose nothing) and marked dirty; the dirty values are written to the file together ``FLUSH_S`` later by the
running event loop (one write per value, however many requests changed it meanwhile). Where no event loop
runs in the calling thread, the write is immediate as before. ``/metrics`` flushes its own process first;
another worker's figures reach it within ``FLUSH_S``; a process exiting normally flushes what is left.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import values

_running_loop = asyncio._get_running_loop

FLUSH_S = 0.01
"""How long a changed value may wait in the process before it is written to its file."""

_lock = threading.Lock()
_dirty: list[Any] = []
_made: list[Any] = []  # one value of each class made here: a fork resets the values through it
_scheduled: list[Any] = [None, 0.0]  # the loop a flush is posted on, and when it is due


def flush() -> None:
    """Write every changed value to its file now."""
    with _lock:
        _scheduled[0] = None
        _write_dirty()


def add(*changes: tuple[Any, float]) -> None:
    """Add each amount to its value (of :func:`deferred_value_class`), all under one lock: a request's
    counter, histogram sum and bucket in one call instead of three ``inc`` through prometheus_client's
    wrappers."""
    with _lock:
        for value, amount in changes:
            value._value += amount
            value._timestamp = 0.0
        _changed(changes)


def _changed(changes: tuple[tuple[Any, float], ...]) -> None:
    """With ``_lock`` held, for values just changed: make sure a flush will write them (one posted on this
    thread's loop, or a write now where no loop runs)."""
    fresh = False
    for value, _ in changes:
        if not value.dirty:
            value.dirty = fresh = True
            _dirty.append(value)
    if fresh or _scheduled[0] is not _running_loop():  # new dirt, another thread or a new loop
        _flush_soon()


def is_deferred(value: Any) -> bool:
    """Whether ``value`` (a metric's value object) is one of :func:`deferred_value_class`'s."""
    return getattr(type(value), "deferred_writes", False) is True


def _write_dirty() -> None:
    """With ``_lock`` held: every dirty value into its file, clean again."""
    for value in _dirty:
        value.dirty = False
        value.write()
    _dirty.clear()


def _flush_soon() -> None:
    """Called with ``_lock`` held, for a value just marked dirty. A flush posted on a loop that stopped
    since (a short ``asyncio.run``) is posted again."""
    posted, due = _scheduled
    if posted is not None and posted.is_running() and time.monotonic() < due + 1.0:
        return
    loop = _running_loop()
    if loop is None:  # no event loop in this thread (a CLI, a test, a predict thread): write now
        _write_dirty()
        return
    _scheduled[:] = [loop, time.monotonic() + FLUSH_S]
    loop.call_later(FLUSH_S, flush)


def deferred_value_class(process_identifier: Callable[[], int]) -> type:
    """prometheus_client's multiprocess value class (``values.MultiProcessValue``), its writes deferred."""
    base: Any = values.MultiProcessValue(process_identifier=process_identifier)

    class DeferredValue(base):  # type: ignore[misc]
        deferred_writes = True
        dirty = False
        made = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not DeferredValue.made:
                DeferredValue.made = True
                _made.append(self)

        def inc(self, amount: float) -> None:
            add((self, amount))

        def set(self, value: float, timestamp: float | None = None) -> None:
            with _lock:
                self._value = value
                self._timestamp = timestamp or 0.0
                _changed(((self, 0.0),))

        def get(self) -> float:
            with _lock:
                return float(self._value)

        def write(self) -> None:
            """Into the file (prometheus_client's own ``set``: its fork check and its lock)."""
            base.set(self, self._value, self._timestamp or None)

    return DeferredValue


def after_fork() -> None:
    """In a forked child, once the process identifier gives the child's: forget the parent's unwritten
    changes and let prometheus_client reset every value to the child's own files (its fork check runs in
    any call of the base class)."""
    global _lock
    _lock = threading.Lock()
    for value in _dirty:
        value.dirty = False
    _dirty.clear()
    _scheduled[:] = [None, 0.0]
    for value in _made:
        base: Any = type(value).__mro__[1]  # prometheus_client's MmapedValue
        base.get(value)


atexit.register(flush)
