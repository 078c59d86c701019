"""Background tasks on a worker's event loop: started once, cancelled (and awaited) on stop.

:class:`BackgroundTask` runs one coroutine from :meth:`~BackgroundTask.start` until
:meth:`~BackgroundTask.stop`; :class:`PeriodicTask` runs a step every ``interval_s`` seconds, or as soon as
it is woken, and logs a failed step instead of ending (a background loop must never take the worker down).
Both are used on the event loop thread only. This module imports nothing of modelrunner, so every layer
(monitoring as well as runner) may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes; True if it was set.

    Uses ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for`` swallows a
    cancellation that arrives just as the event is set, so a cancelled loop would keep running.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class BackgroundTask:
    """``run()`` in its own asyncio task named ``name``, from :meth:`start` until :meth:`stop`."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Started and not stopped yet."""
        return self._task is not None

    def start(self) -> None:
        """Create the task on the running loop (again after a stop; nothing if it already runs)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (nothing if it does not run)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class PeriodicTask(BackgroundTask):
    """``step()`` every ``interval_s`` seconds (a number, or a function read before each wait) or sooner when
    :meth:`wake` is called; the first step runs after the first wait. An exception from ``step`` is logged on
    ``logger`` as ``failure`` with its traceback, and the next step runs at the next tick."""

    def __init__(
        self,
        step: Callable[[], Awaitable[object]],
        interval_s: float | Callable[[], float],
        *,
        name: str,
        failure: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(self._loop, name=name)
        self._step = step
        self._interval = interval_s
        self._failure = failure or f"background task {name} failed"
        self._log = logger or log
        self._wake = asyncio.Event()

    @property
    def interval_s(self) -> float:
        return self._interval() if callable(self._interval) else self._interval

    def wake(self) -> None:
        """Run the next step now instead of at the next tick."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await wait_event(self._wake, self.interval_s)
            self._wake.clear()
            try:
                await self._step()
            except Exception:  # noqa: BLE001 - the loop goes on (CancelledError is no Exception)
                self._log.exception(self._failure)
