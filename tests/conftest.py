"""Shared fixtures: an isolated MODELRUNNER_HOME, PostgreSQL URLs (a fresh schema per test), a registry.

``registry`` and ``db_url`` are parametrized over SQLite and PostgreSQL. PostgreSQL comes from
``MODELRUNNER_TEST_PG_URL`` (default the local server); when it is unreachable the postgres cases are skipped,
except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]
# Under pytest-xdist (``make test TEST_WORKERS=2``: ``--dist loadfile --no-loadscope-reorder``) a worker
# takes the next file in collection order when it is almost idle: the longest ones (measured; tests/ relative)
# are collected first so that none of them starts last.
LONGEST_FIRST = (
    "docs/test_docs_run.py",
    "test_wheel.py",
    "runner/test_live_swaps.py",
    "cli/test_demo.py",
    "cli/test_init.py",
    "evaluation/test_ocr_pipeline.py",
    "runner/test_serve.py",
    "onboarding/test_optimize.py",
    "server/test_openapi.py",
    "evaluation/test_evaluate.py",
    "server/test_admin.py",
    "server/test_workers.py",
    "onboarding/test_cli.py",
    "server/test_grpc_serve.py",
    "catalog/test_actions.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:  # a serial run keeps the usual order
        return
    tests = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        name = item.path.relative_to(tests).as_posix() if item.path.is_relative_to(tests) else ""
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _libpq_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELRUNNER_HOME; other MODELRUNNER_* storage variables are cleared."""
    home = tmp_path / "mrhome"
    home.mkdir()
    for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELRUNNER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Base URL of a reachable PostgreSQL (skipped when unreachable, failed when CI=true)."""
    import psycopg

    url = os.environ.get("MODELRUNNER_TEST_PG_URL", PG_DEFAULT_URL)
    try:
        with psycopg.connect(_libpq_dsn(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {url.split('@')[-1]}: {str(exc).strip().splitlines()[0]}"
        if _in_ci():
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, uniquely named schema (dropped afterwards)."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"mr_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq_dsn(pg_url), autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq_dsn(pg_url), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_home: Path) -> str:
    """A database URL for an empty registry: SQLite under ``tmp_home``, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_home / 'registry.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def registry(db_url: str, tmp_home: Path) -> Iterator[Any]:
    """An empty :class:`modelrunner.registry.Registry` on each backend (artifacts under ``tmp_home``)."""
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    reg = Registry(Settings(home=tmp_home), database_url=db_url)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def reg(tmp_home: Path) -> Iterator[Any]:
    """A real registry (SQLite) under a fresh MODELRUNNER_HOME."""
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    registry = Registry(Settings(home=tmp_home))
    try:
        yield registry
    finally:
        registry.close()
