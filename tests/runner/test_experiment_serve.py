"""Experiments on a real ``modelrunner serve --workers 2`` (one server for the module): the canary share,
sticky keys across workers and a worker restart, shadow answers, a failing candidate, feedback from either
worker, a server restart, and stopping."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelrunner.registry import Registry
from modelrunner.runner.experiment import sticky_point
from modelrunner.settings import Settings
from support.runner_server import BODY, Server, save_toy

PATH = "/v1/endpoints/toy/predict"


class Served:
    def __init__(self, home: Path, registry: Registry, server: Server) -> None:
        self.home, self.registry, self.server = home, registry, server
        # a new connection per request ("connection: close"): the kernel spreads them over both workers
        self.fresh = httpx.Client(base_url=server.url, timeout=30, headers={"connection": "close"})

    def apply(self, change: Any) -> Any:
        """Change the experiment in the registry; wait until every worker applied it (its status row is
        at the new generation)."""
        result = change()
        generation = self.registry.state_generation()
        deadline = time.monotonic() + 60
        while True:
            rows = [w for w in self.server.workers() if w["endpoint"] == "toy"]
            if len(rows) == 2 and all(
                (w["generation"] or 0) >= generation and w["state"] == "serving" for w in rows
            ):
                return result
            assert time.monotonic() < deadline, f"workers did not apply generation {generation}: {rows}"
            time.sleep(0.05)

    def stop_running(self) -> None:
        exp = self.registry.experiment("toy")
        if exp is not None:
            self.apply(lambda: self.registry.end_experiment(exp.id, "stopped"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("exp")
    home = root / "home"
    registry = Registry(Settings(home=home))
    registry.push(save_toy(root / "b1", 1), alias="production")
    registry.push(save_toy(root / "b2", 2))
    registry.push(save_toy(root / "b3", 3, fail="data"))
    env = {"MODELRUNNER_PREDICTION_LOG_FLUSH_S": "0.2"}
    with Server(home, "--endpoint", "toy=toy@production", env=env) as server:
        served = Served(home, registry, server)
        yield served
        served.fresh.close()
    registry.close()


def _post(client: httpx.Client, **kw: Any) -> httpx.Response:
    r = client.post(PATH, json=kw.pop("json", BODY), **kw)
    assert r.status_code == 200, r.text
    return r


def _spread(url: str, count: int, clients: int = 4, **kw: Any) -> list[httpx.Response]:
    """``count`` predictions over ``clients`` keep-alive connections (spread over both workers)."""
    out: list[httpx.Response] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [_post(client, **kw) for _ in range(n)]
        with lock:
            out.extend(answers)

    threads = [threading.Thread(target=run, args=(count // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_plain_serving_says_request_id_and_variant(served: Served) -> None:
    served.stop_running()
    r = served.fresh.post(PATH, json=BODY, headers={"x-request-id": "client-7"})
    body = r.json()
    assert (body["request_id"], body["variant"], body["version"]) == ("client-7", "production", 1)
    assert (r.headers["x-request-id"], r.headers["x-modelrunner-variant"]) == ("client-7", "production")
    generated = served.fresh.post(PATH, json=BODY).json()["request_id"]
    assert len(generated) == 32 and generated != body["request_id"]
    bad = served.fresh.post(PATH, json=BODY, headers={"x-request-id": "x" * 200})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "x-request-id"


def test_canary_share_is_ten_percent(served: Served) -> None:
    served.stop_running()
    served.apply(lambda: served.registry.start_experiment("toy", "toy@2", mode="canary", percent=10))
    answers = _spread(served.server.url, 3000)
    bodies = [r.json() for r in answers]
    assert all(
        (b["variant"] == "candidate") == (b["version"] == 2 == b["predictions"][0]["y"]) for b in bodies
    )
    assert all(r.headers["x-modelrunner-variant"] == r.json()["variant"] for r in answers[:50])
    share = sum(b["variant"] == "candidate" for b in bodies) / len(bodies)
    assert 0.08 <= share <= 0.12, share


def test_sticky_keys_hold_across_workers_and_a_worker_restart(served: Served) -> None:
    served.stop_running()
    exp = served.apply(
        lambda: served.registry.start_experiment("toy", "toy@2", mode="ab", percent=50, sticky_key="user")
    )
    keys = [f"user-{i}" for i in range(200)]
    expected = {k: "candidate" if sticky_point(exp.id, k) < 50 else "production" for k in keys}

    def variants(by_body: bool) -> dict[str, str]:
        seen: dict[str, str] = {}
        for i, key in enumerate(keys):  # a fresh connection each: both workers answer
            kw: dict[str, Any] = (
                {"json": {**BODY, "user": key}} if by_body and i % 2 else {"headers": {"x-user": key}}
            )
            r = served.fresh.post(PATH, json=kw.get("json", BODY), headers=kw.get("headers"))
            assert r.status_code == 200, r.text
            seen[key] = r.json()["variant"]
        return seen

    assert variants(by_body=False) == expected
    before = served.server.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while before[0] in served.server.worker_pids() or len(served.server.worker_pids()) < 2:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)
    served.server.wait_ready(90)
    assert variants(by_body=True) == expected


def test_shadow_answers_like_production_and_a_failing_candidate_fails_nothing(served: Served) -> None:
    served.stop_running()
    url = served.server.url
    with httpx.Client(base_url=url, timeout=30) as client:
        alone = [_post(client, headers={"x-request-id": f"alone-{i}"}) for i in range(20)]
    exp = served.apply(lambda: served.registry.start_experiment("toy", "toy@3", mode="shadow"))
    with httpx.Client(base_url=url, timeout=30) as client:
        mirrored = [_post(client, headers={"x-request-id": f"alone-{i}"}) for i in range(20)]
    assert [r.content for r in mirrored] == [r.content for r in alone]  # byte for byte (same request ids)
    deadline = time.monotonic() + 30
    while (
        len(
            [r for r in served.registry.prediction_rows("toy", experiment_id=exp.id) if r.variant == "shadow"]
        )
        < 20
    ):
        assert time.monotonic() < deadline, "the shadow copies were never logged"
        time.sleep(0.1)
    rows = served.registry.prediction_rows("toy", experiment_id=exp.id)
    shadows = [r for r in rows if r.variant == "shadow"]
    assert all(r.error and "diverged on real data" in r.error and r.version == 3 for r in shadows)
    served.stop_running()
    served.apply(lambda: served.registry.start_experiment("toy", "toy@3", mode="canary", percent=100))
    answers = _spread(url, 40)  # the candidate fails every request: production answers them all
    assert {(r.json()["variant"], r.json()["version"]) for r in answers} == {("production", 1)}


def test_feedback_from_either_worker_joins(served: Served) -> None:
    served.stop_running()
    exp = served.apply(lambda: served.registry.start_experiment("toy", "toy@2", mode="canary", percent=50))
    ids = [served.fresh.post(PATH, json=BODY).json()["request_id"] for _ in range(30)]
    for i, rid in enumerate(ids):  # fresh connections: often another worker than the one that answered
        r = served.fresh.post("/v1/endpoints/toy/feedback", json={"request_id": rid, "target": i % 3})
        assert r.status_code == 200 and r.json() == {"joined": 1, "duplicates": 0}, r.text
    r = served.fresh.post(
        "/v2/models/toy/feedback",
        json={"items": [{"request_id": ids[0], "target": 2}, {"request_id": "nope", "target": 1}]},
    )
    assert r.status_code == 404 and "nope" in r.json()["error"], r.text
    r = served.fresh.post("/v1/endpoints/toy/feedback", json={"items": [{"target": 1}]})
    assert r.status_code in (400, 422) and r.json()["error"]["field"] == "items[0].request_id", r.text
    labelled = served.registry.labelled("toy", experiment_id=exp.id)
    assert sorted(r.request_id for r in labelled) == sorted(ids)
    assert {r.request_id: r.target for r in labelled}[ids[0]] == 2, "the later target wins"


@pytest.mark.slow
def test_experiment_survives_a_server_restart_and_stopping_restores_plain_serving(served: Served) -> None:
    served.stop_running()
    exp = served.apply(lambda: served.registry.start_experiment("toy", "toy@2", mode="canary", percent=100))
    served.server.stop()
    served.server.__enter__()  # the same home: the experiment is in the registry
    answers = _spread(served.server.url, 20)
    assert {(r.json()["variant"], r.json()["version"]) for r in answers} == {("candidate", 2)}
    served.apply(lambda: served.registry.end_experiment(exp.id, "stopped"))
    answers = _spread(served.server.url, 20)
    assert {(r.json()["variant"], r.json()["version"]) for r in answers} == {("production", 1)}
