from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from modelrunner.errors import InvalidArgument, NotFound
from modelrunner.registry import Registry, WorkerStatus
from modelrunner.registry.tables import worker_status
from support.registry_helpers import write_bundle


@pytest.fixture
def two_versions(registry: Registry, tmp_path: Path) -> Registry:
    registry.push(write_bundle(tmp_path / "1", payload=b"1"), alias="production")
    registry.push(write_bundle(tmp_path / "2", payload=b"2"))
    return registry


def test_endpoint_changes_bump_the_generation(two_versions: Registry) -> None:
    reg = two_versions
    g0 = reg.state_generation()
    ep = reg.set_endpoint("digits", "toy@production", config={"max_batch_size": 8}, actor="alice")
    assert ep.generation == g0 + 1 == reg.state_generation()
    assert (ep.target, ep.previous_target, ep.force) == ("toy@production", None, False)
    assert ep.config == {"max_batch_size": 8}
    ep = reg.set_endpoint("digits", "toy@2", force=True)
    assert (ep.target, ep.previous_target, ep.force, ep.config) == (
        "toy@2",
        "toy@production",
        True,
        {"max_batch_size": 8},
    )
    assert reg.endpoint("digits") == ep and reg.state_generation() == g0 + 2
    back = reg.rollback_endpoint("digits")
    assert (back.target, back.previous_target) == ("toy@production", "toy@2")
    assert [e.name for e in reg.endpoints()] == ["digits"]
    reg.delete_endpoint("digits")
    assert reg.endpoints() == [] and reg.state_generation() == g0 + 4
    subjects = [(e.action, e.subject) for e in reg.audit(subject="endpoint:digits")]
    assert subjects[0] == ("endpoint.delete", "endpoint:digits") and len(subjects) == 4


def test_alias_moves_bump_the_generation(two_versions: Registry) -> None:
    reg = two_versions
    g0 = reg.state_generation()
    reg.set_alias("toy", "production", 2)
    assert reg.state_generation() == g0 + 1
    reg.set_alias("toy", "production", 2)  # no move, no bump
    assert reg.state_generation() == g0 + 1
    reg.delete_alias("toy", "production")
    assert reg.state_generation() == g0 + 2
    reg.push(write_bundle(Path(reg.settings.home) / "b3", payload=b"3"), alias="production")
    assert reg.state_generation() == g0 + 3


def test_endpoint_errors(two_versions: Registry) -> None:
    reg = two_versions
    with pytest.raises(NotFound, match="unknown model 'ghost'"):
        reg.set_endpoint("e", "ghost@production")
    with pytest.raises(NotFound, match="no alias 'prod'"):
        reg.set_endpoint("e", "toy@prod")
    with pytest.raises(InvalidArgument):
        reg.set_endpoint("bad name", "toy@1")
    with pytest.raises(NotFound, match="unknown endpoint 'e'"):
        reg.endpoint("e")
    with pytest.raises(NotFound, match="unknown endpoint"):
        reg.delete_endpoint("e")
    reg.set_endpoint("e", "toy@1")
    with pytest.raises(InvalidArgument, match="no previous target"):
        reg.rollback_endpoint("e")


def test_targets_of_every_kind_are_resolved_before_they_are_stored(two_versions: Registry) -> None:
    reg = two_versions
    g0 = reg.state_generation()
    with pytest.raises(NotFound, match="'digits-ocr'"):
        reg.set_endpoint("typo", "pipeline:digits-ocr@production")
    with pytest.raises(NotFound, match="no alias 'prodution'"):
        reg.set_endpoint("typo", "pipeline:toy@prodution")
    with pytest.raises(InvalidArgument, match="toy@1 is a python model, not a pipeline"):
        reg.set_endpoint("typo", "pipeline:toy@1")
    with pytest.raises(InvalidArgument, match="unknown kind 'pipe:'"):
        reg.set_endpoint("typo", "pipe:toy@1")
    with pytest.raises(InvalidArgument, match="invalid model reference"):
        reg.set_endpoint("typo", "pipeline:")
    assert reg.endpoints() == [] and reg.state_generation() == g0, "nothing was stored"


def test_wait_for_change_wakes_on_a_bump(two_versions: Registry) -> None:
    reg = two_versions
    g0 = reg.state_generation()
    started = time.monotonic()
    assert reg.wait_for_change(g0, timeout=0.3) == g0
    assert time.monotonic() - started >= 0.25
    timer = threading.Timer(0.2, reg.set_alias, args=("toy", "production", 2))
    timer.start()
    started = time.monotonic()
    assert reg.wait_for_change(g0, timeout=10) == g0 + 1
    assert time.monotonic() - started < 5
    timer.join()
    listener = reg._listener
    assert listener is not None
    assert (listener._conn is not None) == (reg.engine.dialect.name == "postgresql")  # LISTEN on Postgres


def test_worker_status_rows(registry: Registry) -> None:
    row = WorkerStatus(runner_id="w1", endpoint="digits", state="loading", target="toy@production")
    registry.report_worker(row)
    registry.report_worker(
        WorkerStatus(
            runner_id="w1",
            endpoint="digits",
            state="serving",
            model="toy",
            version=2,
            sha256="a" * 64,
            generation=5,
            load_ms=120,
        )
    )
    registry.report_worker(WorkerStatus(runner_id="w2", endpoint="digits", state="failed", error="boom"))
    registry.report_worker(WorkerStatus(runner_id="w2", endpoint="other", state="draining"))
    rows = registry.workers(endpoint="digits")
    assert [(r.runner_id, r.state) for r in rows] == [("w1", "serving"), ("w2", "failed")]
    w1 = rows[0]
    assert (w1.version, w1.generation, w1.load_ms, w1.target) == (2, 5, 120, None)
    assert w1.heartbeat is not None and abs(w1.heartbeat - datetime.now(UTC)) < timedelta(seconds=30)
    assert len(registry.workers()) == 3
    with registry.engine.begin() as conn:  # w2's heartbeats stopped a minute ago
        conn.execute(
            update(worker_status)
            .where(worker_status.c.runner_id == "w2")
            .values(heartbeat=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert [r.runner_id for r in registry.workers(alive_within_s=10)] == ["w1"]
    assert registry.remove_worker("w2") == 2
    assert [r.runner_id for r in registry.workers()] == ["w1"]
    with pytest.raises(InvalidArgument, match="invalid worker state"):
        registry.report_worker(WorkerStatus(runner_id="w1", endpoint="x", state="dancing"))  # type: ignore[arg-type]


def test_evaluations_and_gates(registry: Registry) -> None:
    assert registry.gates("toy") == []
    registry.set_gates("toy", ["accuracy >= 0.9", "p99_ms <= 50"], actor="alice")
    registry.set_gates("toy", ["accuracy >= 0.95"])
    assert registry.gates("toy") == ["accuracy >= 0.95"]
    first = registry.record_evaluation(
        "toy",
        1,
        metrics={"accuracy": 0.93},
        passed=False,
        gates=[{"requirement": "accuracy >= 0.95", "passed": False}],
        dataset_sha256="b" * 64,
        dataset_name="digits-test",
    )
    second = registry.record_evaluation("toy", 2, metrics={"accuracy": 0.97}, passed=True)
    assert first.id != second.id and first.dataset_name == "digits-test" and first.passed is False
    assert [e.version for e in registry.evaluations("toy")] == [2, 1]
    assert registry.evaluations("toy", version=1)[0].gates == [
        {"requirement": "accuracy >= 0.95", "passed": False}
    ]
    assert registry.evaluations("other") == []
    actions = [e.action for e in registry.audit()]
    assert actions.count("gates.set") == 2 and actions.count("evaluation.record") == 2
    with pytest.raises(InvalidArgument, match="list of requirement strings"):
        registry.set_gates("toy", "accuracy >= 0.9")  # type: ignore[arg-type]
