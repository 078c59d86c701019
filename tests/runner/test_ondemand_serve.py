"""End to end: ``modelrunner serve --endpoint 'tenant-*=tenant-*@production' --max-loaded 100`` over 1,000
registered tiny scikit-learn models, a skewed random workload over real HTTP: no failed request, never more
than 100 models loaded, their memory under the budget; V2 repository index/unload of on-demand endpoints."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelrunner.registry.registry import Registry
from modelrunner.runner.memory import rss_bytes
from modelrunner.settings import Settings
from support.many_models import BODY, register_many, save_tiny
from support.runner_server import Server

MODELS = 1000
MAX_LOADED = 100
BUDGET = "2GB"
SWEEP = 240
"""Models requested once each by the sweeping clients: more than --max-loaded, so eviction must happen."""
AFTER_SWEEP_S = 3.0
MAX_SECONDS = 45.0


class SlowStartServer(Server):
    """A worker starting with scikit-learn to import: up to 3 minutes on a loaded machine (no bytecode)."""

    def wait_ready(self, timeout: float = 180.0) -> None:
        super().wait_ready(timeout)


def gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def counter(text: str, name: str, label: str) -> float:
    match = re.search(rf'^{name}_total\{{result="{label}"\}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def skewed(rng: random.Random) -> str:
    """A Zipf-like choice over tenant-1..999: a few hot ones, a long tail (tenant-0 is pinned)."""
    return f"tenant-{min(int(rng.paretovariate(0.9)), MODELS - 1)}"


class Workload:
    """Three clients posting to skewed random tenants, three sweeping tenants 1..SWEEP once each (eviction
    must happen), until the sweep is done and AFTER_SWEEP_S more (MAX_SECONDS at most); a sampler of
    /metrics records the most loaded models and bytes it saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.peak_loaded = self.peak_bytes = 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        sweeps = [threading.Thread(target=self._sweep, args=(range(1 + i, SWEEP + 1, 3),)) for i in range(3)]
        others = [threading.Thread(target=self._skewed, args=(i,)) for i in range(3)]
        others.append(threading.Thread(target=self._sample))
        for t in sweeps + others:
            t.start()
        deadline = time.monotonic() + MAX_SECONDS
        for t in sweeps:
            t.join(max(0.0, deadline - time.monotonic()))
        time.sleep(AFTER_SWEEP_S)
        self.stop.set()
        for t in sweeps + others:
            t.join(60)

    def _sweep(self, numbers: range) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            for i in numbers:
                if self.stop.is_set():
                    return
                self._post(client, f"tenant-{i}")

    def _skewed(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                self._post(client, skewed(rng))

    def _post(self, client: httpx.Client, name: str) -> None:
        try:
            r = client.post(f"/v1/endpoints/{name}/predict", json=BODY)
            error = None if r.status_code == 200 else f"{name}: HTTP {r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{name}: {type(exc).__name__}: {exc}"
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failures.append(error)

    def _sample(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                text = client.get("/metrics").text
                self.peak_loaded = max(self.peak_loaded, gauge(text, "modelrunner_ondemand_loaded"))
                self.peak_bytes = max(self.peak_bytes, gauge(text, "modelrunner_ondemand_bytes"))
                time.sleep(0.2)


@pytest.mark.slow
def test_a_thousand_models_served_on_demand_under_max_loaded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry(Settings(home=home))
    try:
        register_many(registry, save_tiny(tmp_path / "tiny"), [f"tenant-{i}" for i in range(MODELS)])
    finally:
        registry.close()
    # tenant-0 pinned (desired state): the worker imports scikit-learn while starting, not on a request
    pinned = ("--endpoint", "tenant-0=tenant-0@production")
    args = (*pinned, "--endpoint", "tenant-*=tenant-*@production", "--max-loaded", str(MAX_LOADED))
    with SlowStartServer(home, *args, "--memory-budget", BUDGET, workers=1) as server:
        (worker,) = server.worker_pids()
        rss_before = rss_bytes(worker)
        load = Workload(server.url)
        load.run()
        assert load.failures == [], load.failures[:5]
        text = httpx.get(f"{server.url}/metrics").text
        hits = counter(text, "modelrunner_ondemand_requests", "hit")
        misses = counter(text, "modelrunner_ondemand_requests", "miss")
        assert load.ok >= SWEEP and hits + misses == load.ok
        assert misses >= SWEEP and hits > 0  # the sweep alone missed SWEEP distinct models
        assert 0 < load.peak_loaded <= MAX_LOADED
        assert gauge(text, "modelrunner_ondemand_loaded") <= MAX_LOADED
        assert 'modelrunner_ondemand_evictions_total{reason="max_loaded"}' in text
        assert 0 < load.peak_bytes <= 2_000_000_000
        assert rss_bytes(worker) - rss_before < 2_000_000_000
        check_repository(server.url)


def state_of(client: httpx.Client, name: str) -> str:
    entries: list[dict[str, Any]] = client.post("/v2/repository/index").json()
    return str(next(e for e in entries if e["name"] == name)["state"])


def check_repository(url: str) -> None:
    """V2 repository: unloading the pinned tenant-0 makes it on demand (loaded again by its next request);
    unloading it then evicts it from this worker; on-demand endpoints loaded here are READY in the index;
    loading tenant-7 pins it at the target its pattern gives."""
    with httpx.Client(base_url=url, timeout=60) as client:
        ready = {e["name"] for e in client.post("/v2/repository/index", json={"ready": True}).json()}
        assert "tenant-0" in ready and len(ready) <= MAX_LOADED + 1  # + the pinned one
        for _ in range(2):  # pinned -> on demand -> not loaded
            r = client.post("/v2/repository/models/tenant-0/unload")
            assert r.status_code == 200, r.text
            assert state_of(client, "tenant-0") == "UNAVAILABLE"
            assert client.post("/v1/endpoints/tenant-0/predict", json=BODY).status_code == 200
            assert state_of(client, "tenant-0") == "READY"
        # V2 ready and metadata see a version loaded on demand; a versioned infer loads it like any other
        assert client.get("/v2/models/tenant-0/ready").status_code == 200
        meta = client.get("/v2/models/tenant-0").json()
        assert meta["versions"] == ["1"] and meta["inputs"][0]["name"] == "x", meta
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.5, 0.25, 0.0, 1.0]}
        r = client.post("/v2/models/tenant-999/versions/1/infer", json={"inputs": [tensor]})
        assert r.status_code == 200 and r.json()["model_version"] == "1", r.text
        r = client.post("/v2/repository/models/tenant-7/load")  # pins it: the pattern's target by default
        assert r.status_code == 200 and r.json()["target"] == "tenant-7@production", r.text
        assert state_of(client, "tenant-7") == "READY"
        assert client.post("/v2/repository/models/tenant-7/unload").status_code == 200  # on demand again
        bad = client.post("/v1/endpoints/tenant-5000/predict", json=BODY)
        assert bad.status_code == 404 and "tenant-5000" in bad.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "tenant-*-*=x-*"), "exactly one '*'"),
        (("--endpoint", "t-*=t-*", "--memory-budget", "lots"), "invalid memory size 'lots'"),
    ],
)
def test_bad_pattern_options_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "modelrunner", "serve", "--port", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
