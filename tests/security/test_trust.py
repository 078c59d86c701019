"""Pickle trust: a worker bound beyond loopback loads a pickle artifact only with a recorded decision."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelrunner.bundle import trust as choke
from modelrunner.bundle.flavors import get_flavor
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, push_sklearn_models


@pytest.fixture
def policy_reset() -> Iterator[None]:
    yield
    choke.install(None)


def _not_serving(url: str, deadline_s: float = 60.0) -> dict[str, Any]:
    """The /readyz detail once every endpoint has settled."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        answer = httpx.get(url + "/readyz", timeout=10)
        if answer.status_code == 200:
            return dict(answer.json().get("not_serving", {}))
        time.sleep(0.1)
    raise AssertionError("endpoints did not settle")


def test_only_pickle_flavors_need_trust() -> None:
    assert get_flavor("sklearn").pickle and get_flavor("python").pickle
    assert not any(get_flavor(name).pickle for name in ("onnx", "xgboost", "lightgbm"))


def test_untrusted_pickle_fails_the_endpoint_naming_the_command(tmp_path: Path, policy_reset: None) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.security.trust import install_policy, trust
    from modelrunner.server.app import create_app

    settings = Settings(home=tmp_path, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0)
    with Registry(settings) as registry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            push_sklearn_models(registry, tmp_path / "bundles", versions=2)
        decision = trust(registry, "digits@2", actor="alice")
        assert decision["trusted_by"] == "alice" and decision["version"] == 2
        registry.set_endpoint("untrusted", "digits@1")
        registry.set_endpoint("trusted", "digits@2")
        install_policy(registry, settings, strict=True)  # as a worker bound beyond loopback
        runtime = Runtime(registry, settings)
        with ServerThread(create_app(runtime, settings)) as server:
            failed = _not_serving(server.url)
            assert set(failed) == {"untrusted"} and failed["untrusted"]["state"] == "failed"
            assert "modelrunner trust digits@1" in failed["untrusted"]["error"]
            answer = httpx.post(
                server.url + "/v1/endpoints/trusted/predict", json={"instances": [[0.0] * 64]}, timeout=30
            )
            assert answer.status_code == 200 and answer.json()["version"] == 2
        audit = registry.audit(action="trust")
        assert audit[0].actor == "alice" and audit[0].subject == "digits@2"


def test_loopback_loads_untrusted_pickles_with_one_warning(
    tmp_path: Path, policy_reset: None, caplog: pytest.LogCaptureFixture
) -> None:
    from modelrunner.bundle.bundle import open_bundle
    from modelrunner.registry.registry import Registry
    from modelrunner.security.trust import install_policy

    settings = Settings(home=tmp_path)
    with Registry(settings) as registry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            push_sklearn_models(registry, tmp_path / "bundles", versions=1)
        install_policy(registry, settings, strict=False)
        for _ in range(2):
            open_bundle(registry.fetch("digits@1")).load()
    warned = [r for r in caplog.records if "without a trust decision" in r.getMessage()]
    assert len(warned) == 1 and "modelrunner trust digits@1" in warned[0].getMessage()


def test_trust_pickle_setting_loads_everything(tmp_path: Path, policy_reset: None) -> None:
    from modelrunner.bundle.bundle import open_bundle
    from modelrunner.registry.registry import Registry
    from modelrunner.security.trust import install_policy

    settings = Settings(home=tmp_path, trust_pickle=True)
    with Registry(settings) as registry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            push_sklearn_models(registry, tmp_path / "bundles", versions=1)
        install_policy(registry, settings, strict=True)
        assert open_bundle(registry.fetch("digits@1")).load() is not None
