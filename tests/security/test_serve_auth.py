"""``modelrunner serve --require-auth-for-predict`` across real worker processes, and check_exposure."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pytest

from modelrunner.errors import FailedPrecondition
from modelrunner.settings import Settings
from support.server_helpers import ServeProcess, push_sklearn_models


@pytest.mark.slow
def test_predict_needs_a_predictor_token_in_every_worker(tmp_path: Path) -> None:
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry

    with Registry(Settings(home=tmp_path)) as registry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            push_sklearn_models(registry, tmp_path / "bundles", versions=1)
        app_token = tokens.create(registry, "app", "predictor")[1]
        viewer = tokens.create(registry, "dash", "viewer")[1]
    body = {"instances": [[0.0] * 64]}
    with ServeProcess(
        tmp_path, "--require-auth-for-predict", "--endpoint", "digits=digits@production", workers=2
    ) as served:
        url = served.url + "/v1/endpoints/digits/predict"
        for _ in range(3):  # fresh connections land on either worker
            with httpx.Client(timeout=30) as fresh:
                assert fresh.post(url, json=body).status_code == 401
                refused = fresh.post(url, json=body, headers={"authorization": f"Bearer {viewer}"})
                assert refused.status_code == 403 and "'predictor'" in refused.text
                ok = fresh.post(url, json=body, headers={"authorization": f"Bearer {app_token}"})
                assert ok.status_code == 200 and ok.json()["version"] == 1
        assert httpx.get(served.url + "/readyz", timeout=30).status_code == 200  # probes stay open


def test_exposure_needs_a_token_in_the_registry_or_the_admin_token(tmp_path: Path) -> None:
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.workers import check_exposure

    settings = Settings(home=tmp_path)
    check_exposure("127.0.0.1", settings)
    with pytest.raises(FailedPrecondition, match="token create"):
        check_exposure("0.0.0.0", settings)
    with Registry(settings) as registry:
        tokens.create(registry, "ops", "admin")
        check_exposure("0.0.0.0", settings, registry)
    check_exposure("0.0.0.0", settings)  # opens the registry itself
