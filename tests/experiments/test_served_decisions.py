"""Automatic decisions on a real ``modelrunner serve --workers 2``: a worse candidate (trained on shuffled
labels) is aborted, a better one promoted and the endpoint swaps; no client request fails in either run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.client import Client
from modelrunner.errors import ModelrunnerError
from modelrunner.registry import Registry
from modelrunner.settings import Settings
from support.runner_server import Server

RULES = ["accuracy >= baseline - 0.01", "error_rate <= 0.05"]
REQUESTS = 400


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, digits_models: dict[str, Path]) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("served-exp") / "home"
    registry = Registry(Settings(home=home))
    registry.push(digits_models["weak"], alias="production")  # digits@1, ~0.5
    registry.push(digits_models["bad"])  # digits@2, shuffled labels
    registry.push(digits_models["good"])  # digits@3, ~0.89
    env = {"MODELRUNNER_PREDICTION_LOG_FLUSH_S": "0.2"}
    with Server(home, "--endpoint", "digits=digits@production", env=env) as server:
        yield registry, server
    registry.close()


def _applied(registry: Registry, server: Server, version: int | None = None) -> None:
    """Wait until both workers applied the registry's generation (and serve ``version``)."""
    generation = registry.state_generation()
    deadline = time.monotonic() + 60
    while True:
        rows = [w for w in server.workers() if w["endpoint"] == "digits"]
        if len(rows) == 2 and all(
            (w["generation"] or 0) >= generation
            and w["state"] == "serving"
            and (version is None or w["version"] == version)
            for w in rows
        ):
            return
        assert time.monotonic() < deadline, f"workers did not apply generation {generation}: {rows}"
        time.sleep(0.05)


class Traffic:
    """Single-row predictions from 4 client threads; every answer's request id, target and variant."""

    def __init__(self, url: str, x: np.ndarray, y: np.ndarray) -> None:
        self.url, self.x, self.y = url, x, y
        self.answers: list[tuple[str, int, str | None, int | None, int]] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _run(self, worker: int, count: int | None) -> None:
        rng = np.random.default_rng(worker)
        with Client(self.url, timeout=30) as client:
            i = 0
            while (count is None and not self.stop.is_set()) or (count is not None and i < count):
                row = int(rng.integers(len(self.x)))
                rid = f"w{worker}-{i}-{time.monotonic_ns()}"
                i += 1
                try:
                    pred = client.predict("digits", {"input": self.x[row : row + 1]}, request_id=rid)
                except ModelrunnerError as exc:
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self.lock:
                    self.answers.append(
                        (
                            pred.request_id or "",
                            int(self.y[row]),
                            pred.variant,
                            pred.version,
                            int(pred["label"][0]),
                        )
                    )

    def run(self, total: int) -> None:
        threads = [threading.Thread(target=self._run, args=(k, total // 4)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def background(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._run, args=(10 + k, None), daemon=True) for k in range(2)]
        for t in threads:
            t.start()
        return threads


def _logged(registry: Registry, request_ids: list[str], timeout: float = 30.0) -> None:
    """Wait until every answer is in the prediction log (each worker flushes on its own clock): the
    feedback batch is then stored in one pass, so the decider judges all of it or none of it."""
    deadline = time.monotonic() + timeout
    while len(registry.known_requests("digits", request_ids)) < len(request_ids):
        assert time.monotonic() < deadline, "the workers did not log every answer in time"
        time.sleep(0.1)


def _experiment(registry: Registry, server: Server, candidate: str, data: Any) -> tuple[Any, Traffic]:
    _, _, x, y = data
    exp = registry.start_experiment(
        "digits", candidate, mode="canary", percent=50, rules=RULES, min_labels=150, then="promote"
    )
    _applied(registry, server)
    traffic = Traffic(server.url, x, y)
    traffic.run(REQUESTS)
    assert not traffic.failures, traffic.failures[:3]
    assert {a[0] for a in traffic.answers} and all(a[0] for a in traffic.answers)
    shares = {v: sum(a[2] == v for a in traffic.answers) for v in ("production", "candidate")}
    assert shares["candidate"] >= 150 and shares["production"] >= 150, shares
    _logged(registry, [a[0] for a in traffic.answers])
    with Client(server.url) as client:  # the ground truth arrives later, in one batch
        result = client.feedback_many("digits", [(a[0], a[1]) for a in traffic.answers])
    assert result["joined"] == REQUESTS
    return exp, traffic


def _ended(registry: Registry, exp_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while (exp := registry.experiment_by_id(exp_id)).state == "running":
        assert time.monotonic() < deadline, "no decision in time"
        time.sleep(0.2)
    return exp


@pytest.mark.slow
def test_worse_candidate_is_aborted_then_better_one_promoted(served: Any, digits_data: Any) -> None:
    registry, server = served
    exp, traffic = _experiment(registry, server, "digits@2", digits_data)
    ended = _ended(registry, exp.id)
    assert ended.state == "aborted" and ended.ended_by == "decider"
    assert ended.decision["verdict"]["rules"][0]["outcome"] == "fail"
    for variant in ("production", "candidate"):  # online accuracy = accuracy of the answers the clients got
        mine = [a for a in traffic.answers if a[2] == variant]
        seen = ended.decision["variants"][variant]["metrics"]["accuracy"]
        assert seen["n"] == len(mine)
        assert seen["value"] == pytest.approx(sum(a[1] == a[4] for a in mine) / len(mine), abs=1e-6)
    assert registry.resolve("digits@production").version == 1
    _applied(registry, server, version=1)

    exp, traffic = _experiment(registry, server, "digits@3", digits_data)
    background = traffic.background()  # requests keep coming through the decision and the swap
    try:
        ended = _ended(registry, exp.id)
        assert ended.state == "promoted", ended.decision
        deadline = time.monotonic() + 30  # the decider ends the experiment, then moves the alias
        while registry.resolve("digits@production").version != 3:
            assert time.monotonic() < deadline, [a.action for a in registry.audit(limit=10)]
            time.sleep(0.1)
        _applied(registry, server, version=3)
    finally:
        traffic.stop.set()
        for t in background:
            t.join(30)
    assert not traffic.failures, traffic.failures[:3]
    with Client(server.url) as client:  # after the swap: production is digits@3, no experiment
        pred = client.predict("digits", {"input": digits_data[2][:1]})
    assert (pred.version, pred.variant) == (3, "production")
    online = registry.evaluations("digits", 3)[0]
    assert online.dataset_name == f"online:{exp.id}" and online.metrics["accuracy"] > 0.7
