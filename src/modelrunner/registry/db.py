"""Database engine for the registry: SQLite (WAL, busy timeout, BEGIN IMMEDIATE writes) or PostgreSQL.

Opening a database runs the Alembic migrations shipped in ``registry/migrations`` (serialized between
processes: an advisory lock on PostgreSQL, a write transaction on SQLite).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from modelrunner.errors import InvalidArgument, StorageError

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5
PG_LIVENESS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}
"""libpq options so a connection to an unreachable server fails within seconds (a partition: no RST ever
comes) instead of the kernel's ~15 minutes; a URL's own values win."""
_IMMEDIATE = "modelrunner_immediate"
_MIGRATION_LOCK_KEY = 7_310_318_114_117_110  # pg_advisory_xact_lock key for migrations


def safe_url(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<invalid url>"
    return parsed._replace(password=None).render_as_string(hide_password=False)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def upsert(conn: Connection, table: Any) -> Any:
    """An ``INSERT`` of ``table`` with ``on_conflict_do_*`` for this connection (PostgreSQL or SQLite); the
    dialect's module is imported on first use, so SQLite users (and every cold start) skip PostgreSQL's."""
    if is_postgres(conn):
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def make_engine(url: str) -> Engine:
    """An engine configured for concurrent use (no connection is made yet)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument(f"invalid database URL {safe_url(url)!r}: {exc}") from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = pg_connect_args(parsed.query)
        return create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise InvalidArgument(f"unsupported database URL {safe_url(parsed)!r}: {exc}") from exc


def pg_connect_args(query: Any) -> dict[str, Any]:
    """Connect timeout and TCP liveness options for PostgreSQL, except those the URL sets itself."""
    defaults = {"connect_timeout": CONNECT_TIMEOUT_S, **PG_LIVENESS}
    return {key: value for key, value in defaults.items() if key not in query}


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not memory:
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot connect to {safe_url(url)}: {exc}") from exc
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    if memory:
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        if not memory:
            set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def set_wal(cur: Any, deadline_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
    """``PRAGMA journal_mode=WAL`` on a new connection, retried while SQLite answers "database is locked".

    Turning a new database to WAL needs a lock that another connection opening it at the same moment may
    hold, and SQLite can answer that busy at once instead of through the busy timeout: seen once in CI as
    "cannot connect ...: database is locked" with six threads opening a new registry together (what the
    workers of ``serve`` do on a new home)."""
    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: BEGIN IMMEDIATE on SQLite (writers queue up instead of failing later)."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read transaction (one consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def check_connection(engine: Engine) -> None:
    """Connect once; raise StorageError 'cannot connect to <url>: <reason>' if the database is not there."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        raise StorageError(f"cannot connect to {safe_url(engine.url)}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    """The first meaningful line of a (DBAPI) error."""
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    return lines[0] if lines else orig.__class__.__name__


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic Config built in code, pointing at the migrations inside the installed package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _declared_head() -> str | None:
    """The newest revision named in the migration files (no Alembic import: ~10 MB and ~0.2 s a process)."""
    import re

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text_ = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision\s*(?::[^=]*)?=\s*["\']([^"\']+)["\']', text_, re.M)
        down = re.search(r'^down_revision\s*(?::[^=]*)?=\s*["\']([^"\']+)["\']', text_, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head_already(engine: Engine) -> bool:
    """True when the database's ``alembic_version`` is the one declared head (the common case at start)."""
    head = _declared_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except DBAPIError:  # no table yet: a new database
        return False
    return [r[0] for r in rows] == [head]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes open the database at once."""
    if _at_head_already(engine):
        return
    from alembic import command

    head = head_revision()
    try:
        with engine.connect() as conn:
            if current_revision(conn) == head:
                return
        with write_tx(engine) as conn:
            if is_postgres(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            if current_revision(conn) == head:
                return
            log.info("migrating registry database %s to %s", safe_url(engine.url), head)
            command.upgrade(alembic_config(conn), "head")
    except DBAPIError as exc:
        raise StorageError(f"cannot migrate {safe_url(engine.url)}: {first_line(exc)}") from exc


def open_database(url: str) -> Engine:
    """Engine for ``url``, connected, checked and migrated."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
