"""ChangeListener (registry/notify.py) on the real PostgreSQL: every LISTEN connection it opens is closed,
whether LISTEN fails right after connecting, the connection dies under ``notifies`` or the registry closes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from modelrunner.registry import Registry, notify
from modelrunner.settings import Settings


@pytest.fixture
def pg_registry(pg_schema_url: str, tmp_home: Path) -> Iterator[Registry]:
    reg = Registry(Settings(home=tmp_home, poll_interval_s=0.05), database_url=pg_schema_url)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection ``psycopg.connect`` opens from here on (real ones, only recorded)."""
    conns: list[Any] = []
    real = psycopg.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        conn = real(*args, **kwargs)
        conns.append(conn)
        return conn

    monkeypatch.setattr(psycopg, "connect", connect)
    monkeypatch.setattr(notify, "LISTEN_RETRY_S", 0.0)
    return conns


def test_a_connection_whose_listen_fails_is_closed_not_left_to_the_gc(
    pg_registry: Registry, opened: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "NOTIFY_CHANNEL", "no such channel")  # LISTEN is a syntax error
    g0 = pg_registry.state_generation()
    assert pg_registry.wait_for_change(g0, timeout=0.2) == g0  # polled instead
    assert pg_registry.wait_for_change(g0, timeout=0.2) == g0  # tried again (no retry delay): same
    assert len(opened) >= 2
    assert all(conn.closed for conn in opened), "a connection that failed LISTEN was left open"


def test_a_listen_connection_killed_under_notifies_is_closed_and_replaced(
    pg_registry: Registry, opened: list[Any], pg_url: str
) -> None:
    g0 = pg_registry.state_generation()
    assert pg_registry.wait_for_change(g0, timeout=0.1) == g0
    assert len(opened) == 1 and not opened[0].closed  # listening
    first = opened[0]
    from sqlalchemy.engine import make_url

    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:  # recorded too; closed by its ``with``
        admin.execute("SELECT pg_terminate_backend(%s)", (first.info.backend_pid,))
    started = time.monotonic()
    assert pg_registry.wait_for_change(g0, timeout=1.0) == g0  # notifies() fails: polling for the rest
    assert time.monotonic() - started < 5
    assert first.closed, "the dead LISTEN connection was dropped without closing it"
    assert pg_registry.wait_for_change(g0, timeout=0.1) == g0  # LISTEN again on a new connection
    listening = [c for c in opened if not c.closed]
    assert len(listening) == 1 and listening[0] is not first
    pg_registry.close()
    assert all(conn.closed for conn in opened)


def test_no_listen_connection_is_opened_after_close(pg_registry: Registry, opened: list[Any]) -> None:
    g0 = pg_registry.state_generation()
    assert pg_registry.wait_for_change(g0, timeout=0.1) == g0
    listener = pg_registry._listener
    assert listener is not None
    listener.close()  # the registry closing while a watcher thread still calls wait()
    assert listener.wait(g0, 0.1) == g0  # polls
    assert len(opened) == 1 and opened[0].closed
