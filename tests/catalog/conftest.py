"""Fixtures of the catalog tests: registries (empty, 500 models, odd text) with the catalog served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelrunner.registry import Registry
from modelrunner.settings import Settings
from support.catalog_helpers import served_catalog


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    with Registry(settings) as reg:
        yield reg


@pytest.fixture
def ui(registry: Registry, settings: Settings) -> Iterator[httpx.Client]:
    """A client of the catalog served alone (``modelrunner ui``) over ``registry``."""
    with served_catalog(registry, settings) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
