"""GenerationProbe (registry/probe.py): the desired-state generation of a SQLite file read on a connection of
its own, never waiting; None where it cannot answer (PostgreSQL, in memory, an error, closed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from modelrunner.registry import Registry
from modelrunner.settings import Settings


def _database(reg: Registry) -> str:
    return str(reg.engine.url.database)


def test_it_follows_the_generation_of_a_sqlite_file(reg: Registry, bundle: Path) -> None:
    assert reg.quick_generation() == reg.state_generation()
    reg.push(bundle, name="m")
    reg.set_endpoint("ep", "m@1")
    assert reg.quick_generation() == reg.state_generation() > 0


def test_an_error_answers_none_then_it_reconnects(reg: Registry) -> None:
    before = reg.quick_generation()
    other = sqlite3.connect(_database(reg), isolation_level=None)
    try:
        other.execute("ALTER TABLE state RENAME TO state_gone")
        assert reg.quick_generation() is None, "no table: the full read decides"
        other.execute("ALTER TABLE state_gone RENAME TO state")
    finally:
        other.close()
    assert reg.quick_generation() == before


def test_a_database_file_that_is_gone_is_not_made_again(tmp_home: Path) -> None:
    reg = Registry(Settings(home=tmp_home))
    try:
        path = Path(_database(reg))
        assert reg.quick_generation() == 0
        reg._probe._drop()  # as after an error: the next read connects again
        moved = path.with_name("moved.db")
        path.rename(moved)
        assert reg.quick_generation() is None
        assert not path.exists(), "the probe created an empty database"
        moved.rename(path)
        assert reg.quick_generation() == 0
    finally:
        reg.close()


def test_it_is_read_only(reg: Registry) -> None:
    reg.quick_generation()
    conn: Any = reg._probe._conn
    try:
        conn.execute("UPDATE state SET generation = 99")
        raise AssertionError("the probe's connection wrote")
    except sqlite3.OperationalError as exc:
        assert "readonly" in str(exc)
    assert reg.state_generation() != 99


def test_none_in_memory_and_after_close(tmp_home: Path) -> None:
    memory = Registry(Settings(home=tmp_home), database_url="sqlite:///:memory:")
    try:
        assert memory.quick_generation() is None
    finally:
        memory.close()
    file = Registry(Settings(home=tmp_home))
    assert file.quick_generation() == 0
    file.close()
    assert file.quick_generation() is None


def test_none_on_postgres(pg_schema_url: str, tmp_home: Path) -> None:
    pg = Registry(Settings(home=tmp_home), database_url=pg_schema_url)
    try:
        assert pg.quick_generation() is None and pg.state_generation() == 0
    finally:
        pg.close()


def test_it_holds_no_snapshot_between_reads(reg: Registry, bundle: Path) -> None:
    """An open read transaction would pin the WAL (no checkpoint past it): after a read, a writer's
    checkpoint still empties it."""
    reg.push(bundle, name="m")
    reg.set_endpoint("ep", "m@1")
    assert reg.quick_generation() == reg.state_generation()
    conn: Any = reg._probe._conn
    assert not conn.in_transaction
    other = sqlite3.connect(_database(reg), isolation_level=None)
    try:
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        other.close()
    assert busy == 0, "the probe's connection kept a snapshot open"
    assert Path(_database(reg) + "-wal").stat().st_size == 0
