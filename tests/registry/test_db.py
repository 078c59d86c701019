from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from modelrunner.errors import InvalidArgument, StorageError
from modelrunner.registry import db
from modelrunner.registry.tables import metadata

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_create_every_table_at_head(db_url: str) -> None:
    engine = db.open_database(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
        with engine.connect() as conn:
            assert db.current_revision(conn) == db.head_revision()
            assert conn.execute(text("SELECT generation FROM state WHERE id = 1")).scalar_one() == 0
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_tables_module(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.open_database(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_reopen_is_idempotent_and_concurrent_opens_are_safe(db_url: str) -> None:
    errors: list[BaseException] = []

    def open_once() -> None:
        try:
            db.open_database(db_url).dispose()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_once) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = db.open_database(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM state")).scalar_one() == 1
    engine.dispose()


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = db.open_database(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_unreachable_postgres_fails_fast_with_a_clean_message() -> None:
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/nowhere"
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        db.open_database(url)
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert message.startswith("cannot connect to postgresql+psycopg://alice@127.0.0.1:1/nowhere: ")
    assert "s3cret" not in message and "\n" not in message


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "registry.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot connect to sqlite:///.*not a database"):
        db.open_database(f"sqlite:///{bad}")


def test_sqlite_under_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot connect to"):
        db.open_database(f"sqlite:///{blocker}/sub/registry.db")


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/x"])
def test_invalid_database_urls(url: str) -> None:
    with pytest.raises(InvalidArgument, match="database URL"):
        db.open_database(url)


def test_safe_url_strips_the_password() -> None:
    assert db.safe_url("postgresql://u:pw@h:5/d") == "postgresql://u@h:5/d"
    assert db.safe_url("sqlite:///x.db") == "sqlite:///x.db"


def test_migrations_run_from_an_installed_wheel(tmp_path: Path) -> None:
    """The migrations ship as package data and run with no source tree around."""
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("modelrunner-*.whl")
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "modelrunner/registry/migrations/env.py" in names
        zf.extractall(target)
    script = textwrap.dedent(f"""
        import modelrunner.registry as r, sys
        assert r.__file__.startswith({str(target)!r}), r.__file__
        from modelrunner.registry import Registry
        from modelrunner.settings import Settings
        reg = Registry(Settings(home={str(tmp_path / "home")!r}))
        print(reg.state_generation())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELRUNNER_")}
    env["PYTHONPATH"] = str(target)
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "0"


def test_opening_an_up_to_date_database_does_not_import_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Workers open the registry at start: at head, the check is one SELECT and Alembic stays unloaded."""
    import subprocess
    import sys

    from modelrunner.registry.db import _declared_head, head_revision, open_database

    assert _declared_head() == head_revision()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    open_database(url).dispose()  # creates and migrates
    code = (
        "import sys; from modelrunner.registry.db import open_database; "
        f"open_database({url!r}).dispose(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_turning_on_wal_is_retried_while_the_database_is_locked() -> None:
    """SQLite may answer "database is locked" to ``PRAGMA journal_mode=WAL`` at once, without its busy
    timeout, while another connection opens a new database: retried until it passes or the deadline."""

    class Cursor:
        def __init__(self, fails: int, error: str = "database is locked") -> None:
            self.fails, self.error, self.calls = fails, error, 0

        def execute(self, sql: str) -> None:
            assert sql == "PRAGMA journal_mode=WAL"
            self.calls += 1
            if self.calls <= self.fails:
                raise sqlite3.OperationalError(self.error)

    locked_twice = Cursor(2)
    db.set_wal(locked_twice)
    assert locked_twice.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db.set_wal(Cursor(1000), deadline_s=0.05)  # past the deadline: the error
    other = Cursor(1, "disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        db.set_wal(other)  # not a lock: not retried
    assert other.calls == 1
