"""Waiting for desired-state changes: PostgreSQL LISTEN/NOTIFY, with polling as the baseline."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from modelrunner.registry.state import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)
LISTEN_RETRY_S = 5.0


class ChangeListener:
    """``wait(since, timeout)`` returns as soon as the global generation differs from ``since``.

    It owns at most one LISTEN connection at a time: a connection that fails (LISTEN refused, the link cut
    under ``notifies``) is closed before another is opened, and none is opened after :meth:`close`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._conn: Any = None
        self._listen_failed = registry.engine.dialect.name != "postgresql"
        self._retry_at = 0.0  # after a failed LISTEN: when to try again (the poll covers the meantime)
        self._closed = False

    def wait(self, since: int, timeout: float) -> int:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            conn = self._listen_connection()
            while True:
                gen = self.registry.state_generation()
                left = deadline - time.monotonic()
                if gen != since or left <= 0:
                    return gen
                step = min(left, self.registry.settings.poll_interval_s)
                if conn is None:
                    time.sleep(step)
                    continue
                try:
                    for _ in conn.notifies(timeout=min(left, 5.0), stop_after=1):
                        break
                except Exception as exc:  # noqa: BLE001 - fall back to polling on any driver error
                    log.warning("LISTEN %s failed (%s); polling instead", NOTIFY_CHANNEL, exc)
                    self._drop()
                    conn = None

    def _listen_connection(self) -> Any:
        if self._conn is not None or self._closed or self._listen_failed or time.monotonic() < self._retry_at:
            return self._conn
        conn = None
        try:
            import psycopg

            url = self.registry.engine.url.set(drivername="postgresql")
            dsn = url.render_as_string(hide_password=False)
            from modelrunner.registry.db import pg_connect_args

            conn = psycopg.connect(dsn, autocommit=True, **pg_connect_args(url.query))
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception as exc:  # noqa: BLE001 - polling is the baseline
            log.warning("cannot LISTEN on %s (%s); polling until it works", NOTIFY_CHANNEL, exc)
            if conn is not None:  # connected, but LISTEN failed (the link cut meanwhile): not left to the gc
                _close_quietly(conn)
            self._retry_at = time.monotonic() + LISTEN_RETRY_S
            return None
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)
        self._retry_at = time.monotonic() + LISTEN_RETRY_S

    def close(self) -> None:
        """Close the LISTEN connection (after a ``wait`` in progress); later waits poll."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _close_quietly(conn: Any) -> None:
    """Close a connection that already failed; a second error closing it changes nothing."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - it is broken already; close() released what it holds
        log.debug("closing a failed LISTEN connection raised", exc_info=True)
