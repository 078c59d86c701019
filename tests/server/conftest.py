"""Server test fixtures: toy runtimes served for real, and the full stack (registry + sklearn + Runtime)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import httpx
import pytest

from modelrunner.runner.endpoint import Endpoint
from modelrunner.settings import Settings
from support.server_helpers import (
    ADMIN_TOKEN,
    LengthPredictor,
    ServerThread,
    Stack,
    StaticRuntime,
    SumPredictor,
    push_sklearn_models,
    toy_deployment,
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), max_request_bytes=64 * 1024)


@pytest.fixture(scope="module")
def toy_runtime() -> StaticRuntime:
    digits = Endpoint("toy")
    digits.current = toy_deployment("toy", SumPredictor())
    text = Endpoint("text")
    text.current = toy_deployment("text", LengthPredictor(), version=1)
    empty = Endpoint("empty")
    return StaticRuntime({"toy": digits, "text": text, "empty": empty})


@pytest.fixture(scope="module")
def toy_server(toy_runtime: StaticRuntime, settings: Settings) -> Iterator[str]:
    from modelrunner.server.app import create_app

    with ServerThread(create_app(toy_runtime, settings)) as server:
        yield server.url


@pytest.fixture
def client(toy_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toy_server, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    home = tmp_path_factory.mktemp("stack")
    settings = Settings(
        home=home,
        admin_token=ADMIN_TOKEN,
        poll_interval_s=0.05,
        heartbeat_s=0.2,
        drain_timeout_s=5.0,
        max_request_bytes=1024 * 1024,
    )
    registry = Registry(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: accuracy is not what these tests check
        push_sklearn_models(registry, home / "bundles")
    registry.set_endpoint("digits", "digits@production")
    runtime = Runtime(registry, settings)
    with ServerThread(create_app(runtime, settings)) as server:
        s = Stack(server.url, registry, runtime)
        yield s
        s.close()
    registry.close()


@pytest.fixture(scope="module")
def open_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The default loopback setup: registry-backed, no admin token, digits@1 (production) and @2, ready."""
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    home = tmp_path_factory.mktemp("open")
    settings = Settings(
        home=home, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0, max_request_bytes=1024 * 1024
    )
    registry = Registry(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: accuracy is not what these tests check
        push_sklearn_models(registry, home / "bundles", versions=2)
    registry.set_endpoint("digits", "digits@production")
    runtime = Runtime(registry, settings)
    with ServerThread(create_app(runtime, settings)) as server:
        s = Stack(server.url, registry, runtime)
        deadline = time.monotonic() + 30
        while s.anon.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "digits did not load in 30 s"
            time.sleep(0.02)
        yield s
        s.close()
    registry.close()
