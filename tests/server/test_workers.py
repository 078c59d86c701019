"""The HTTP surface of a real multi-process server (``modelrunner serve --workers 2``): metrics are summed
over every worker process whichever worker answers ``/metrics``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import httpx
import pytest

from modelrunner.monitoring.deferred import FLUSH_S
from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.server_helpers import ServeProcess, push_sklearn_models

DIGIT = {"instances": [{"input": [0.0] * 64}]}


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow
def test_metrics_are_summed_over_worker_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as registry, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        push_sklearn_models(registry, tmp_path / "bundles", versions=1)
    with ServeProcess(home, "--endpoint", "digits=digits@production", workers=2) as server:
        for _ in range(40):  # a fresh connection each time: the kernel spreads them over both workers
            r = httpx.post(f"{server.url}/v1/endpoints/digits/predict", json=DIGIT, timeout=10)
            assert r.status_code == 200, r.text
        workers = httpx.get(f"{server.url}/admin/workers", params={"alive_within_s": 30}).json()
        pids = {w["pid"] for w in workers}
        assert len(pids) == 2
        time.sleep(3 * FLUSH_S)  # each worker writes its counts to the shared files within FLUSH_S
        for _ in range(6):  # whichever worker answers, it reports the whole server
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert _sample(text, "modelrunner_requests_total", endpoint="digits", version="1") == 40
            assert _sample(text, "modelrunner_loaded_version", endpoint="digits", version="1") == 2
