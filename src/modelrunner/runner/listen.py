"""On PostgreSQL, wake the reconciler the moment desired state changes (LISTEN/NOTIFY), not at the next poll.

A daemon thread blocks in ``registry.wait_for_change`` (LISTEN on the registry's channel, polling if that
fails) and calls ``on_change`` from that thread when the generation moves; the reconciler's poll stays as
the fallback. SQLite has no notifications: there the poll alone is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

WAIT_S = 1.0


def supports_listen(registry: Any) -> bool:
    engine = getattr(registry, "engine", None)
    return engine is not None and engine.dialect.name == "postgresql" and hasattr(registry, "wait_for_change")


class ChangeWatcher:
    """Calls ``on_change()`` (from its own thread) whenever the registry's generation changes."""

    def __init__(self, registry: Any, on_change: Callable[[], object]) -> None:
        self.registry = registry
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, since: int) -> None:
        self._thread = threading.Thread(target=self._run, args=(since,), name="listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(WAIT_S + 5.0)
            self._thread = None

    def _run(self, since: int) -> None:
        while not self._stop.is_set():
            try:
                generation = self.registry.wait_for_change(since, WAIT_S)
            except Exception as exc:  # noqa: BLE001 - the poll keeps working; retry after a pause
                log.warning("waiting for desired-state changes failed (%s); relying on the poll", exc)
                self._stop.wait(5.0)
                continue
            if generation != since:
                since = generation
                self.on_change()
