"""Experiments in the desired state, the prediction log and feedback (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from modelrunner.errors import FailedPrecondition, IncompatibleContract, InvalidArgument, NotFound
from modelrunner.registry import PredictionRecord, Registry
from modelrunner.registry.tables import predictions
from support.registry_helpers import write_bundle


@pytest.fixture
def served(registry: Registry, tmp_path: Path) -> Registry:
    """toy@1 (production, served by endpoint 'toy'), toy@2 compatible, toy@3 needing a new input."""
    registry.push(write_bundle(tmp_path / "1", payload=b"1"), alias="production")
    registry.push(write_bundle(tmp_path / "2", payload=b"2"))
    registry.push(write_bundle(tmp_path / "3", payload=b"3", inputs=("x", "z")))
    registry.set_endpoint("toy", "toy@production")
    return registry


def test_start_end_and_listing(served: Registry) -> None:
    reg = served
    g0 = reg.state_generation()
    exp = reg.start_experiment(
        "toy",
        "toy@2",
        mode="canary",
        percent=10,
        sticky_key="user_id",
        rules=["accuracy >= baseline - 0.01"],
        min_labels=300,
        then="promote",
        actor="alice",
    )
    assert (exp.endpoint, exp.mode, exp.candidate, exp.candidate_ref, exp.percent) == (
        "toy",
        "canary",
        "toy@2",
        "toy@2",
        10.0,
    )
    assert (exp.sticky_key, exp.rules, exp.min_labels, exp.then_action, exp.state) == (
        "user_id",
        ("accuracy >= baseline - 0.01",),
        300,
        "promote",
        "running",
    )
    assert reg.state_generation() == g0 + 1
    assert reg.experiment("toy") == exp == reg.experiment_by_id(exp.id)
    assert reg.running_experiments() == {"toy": exp}
    with pytest.raises(FailedPrecondition, match=f"already runs experiment {exp.id}"):
        reg.start_experiment("toy", "toy@2", mode="shadow")
    ended = reg.end_experiment(exp.id, "aborted", decision={"accuracy": 0.5}, actor="bob")
    assert (ended.state, ended.decision, ended.ended_by) == ("aborted", {"accuracy": 0.5}, "bob")
    assert ended.ended_at is not None and reg.state_generation() == g0 + 2
    assert reg.experiment("toy") is None
    with pytest.raises(FailedPrecondition, match="already ended \\(aborted by bob\\)"):
        reg.end_experiment(exp.id, "promoted")
    shadow = reg.start_experiment("toy", "toy@2", mode="shadow")
    assert shadow.percent == 100.0 and shadow.id != exp.id
    assert [e.id for e in reg.experiments("toy")] == [shadow.id, exp.id]
    assert reg.experiments("other") == [] and len(reg.experiments(limit=1)) == 1
    actions = [e.action for e in reg.audit(subject="endpoint:toy", limit=10)]
    assert actions[:3] == ["experiment.start", "experiment.aborted", "experiment.start"][::-1]
    aborted = next(e for e in reg.audit(action="experiment.aborted"))
    assert aborted.after["decision"] == {"accuracy": 0.5} and aborted.actor == "bob"


def test_refusals(served: Registry) -> None:
    reg = served
    with pytest.raises(IncompatibleContract, match="input 'z' is new and required"):
        reg.start_experiment("toy", "toy@3", mode="shadow")
    with pytest.raises(InvalidArgument, match="the version endpoint 'toy' serves"):
        reg.start_experiment("toy", "toy@1", mode="shadow")
    with pytest.raises(NotFound, match="unknown endpoint 'ghost'"):
        reg.start_experiment("ghost", "toy@2", mode="shadow")
    with pytest.raises(NotFound, match="no version 9"):
        reg.start_experiment("toy", "toy@9", mode="shadow")
    bad = [
        ({"mode": "blue"}, "mode"),
        ({"mode": "canary", "percent": 0}, "percent"),
        ({"mode": "ab", "percent": 101}, "percent"),
        ({"mode": "ab", "sticky_key": "a b"}, "sticky key"),
        ({"mode": "ab", "rules": "accuracy > 1"}, "rules"),
        ({"mode": "ab", "min_labels": -1}, "min_labels"),
        ({"mode": "ab", "then": "explode"}, "then"),
    ]
    for kwargs, word in bad:
        with pytest.raises(InvalidArgument, match=word):
            reg.start_experiment("toy", "toy@2", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="invalid experiment state"):
        reg.end_experiment("exp-x", "running")
    with pytest.raises(NotFound, match="exp-x"):
        reg.experiment_by_id("exp-x")
    assert reg.experiments() == []


def test_two_deciders_end_an_experiment_once(served: Registry) -> None:
    exp = served.start_experiment("toy", "toy@2", mode="canary")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def decide(state: str) -> None:
        barrier.wait(timeout=30)
        try:
            served.end_experiment(exp.id, state)
            outcomes.append("won")
        except FailedPrecondition:
            outcomes.append("lost")

    threads = [threading.Thread(target=decide, args=(s,)) for s in ("promoted", "aborted") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert (
        len(
            served.audit(subject="endpoint:toy", action="experiment.promoted")
            + served.audit(subject="endpoint:toy", action="experiment.aborted")
        )
        == 1
    )


def _record(
    rid: str,
    variant: str = "production",
    *,
    version: int = 1,
    endpoint: str = "toy",
    exp: str | None = None,
    ts: datetime | None = None,
    out: int = 1,
) -> PredictionRecord:
    return PredictionRecord(
        request_id=rid,
        endpoint=endpoint,
        variant=variant,
        model="toy",
        version=version,
        ts=ts or datetime.now(UTC),
        latency_ms=1.5,
        outputs={"y": [out]},
        experiment_id=exp,
        inputs={"x": [[0.0, 1.0]]} if rid == "r0" else None,
    )


def test_log_feedback_and_join(registry: Registry) -> None:
    reg = registry
    assert reg.log_predictions([]) == 0
    rows = [
        _record(f"r{i}", "candidate" if i % 2 else "production", version=2 if i % 2 else 1, exp="e1", out=i)
        for i in range(6)
    ]
    rows.append(_record("r0", "shadow", version=2, exp="e1", out=9))  # the shadow's copy of r0
    rows.append(_record("r0", endpoint="other"))
    assert reg.log_predictions(rows) == 8
    logged = reg.prediction_rows("toy")
    assert [(r.request_id, r.variant) for r in logged][:2] == [("r0", "production"), ("r1", "candidate")]
    assert len(logged) == 7 and logged[1].outputs == {"y": [1]} and logged[0].latency_ms == 1.5
    assert reg.known_requests("toy", ["r1", "zz"]) == {"r1"}
    result = reg.record_feedback("toy", [("r0", 0), ("r1", 1), ("nope", 3), ("r1", 7)])
    assert (result.joined, result.unknown, result.duplicates) == (3, ["nope"], 1)
    again = reg.record_feedback("toy", [("r1", 1)])
    assert (again.joined, again.unknown, again.duplicates) == (1, [], 1)
    joined = reg.labelled("toy")
    assert [(r.request_id, r.variant, r.target, r.outputs) for r in joined] == [
        ("r0", "production", 0, {"y": [0]}),
        ("r1", "candidate", 1, {"y": [1]}),
        ("r0", "shadow", 0, {"y": [9]}),
    ]
    assert [r.request_id for r in reg.labelled("toy", limit=1)] == ["r0"]
    assert reg.labelled("toy", experiment_id="e2") == [] and reg.labelled("other") == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert reg.labelled("toy", since=later) == [] and reg.prediction_rows("toy", since=later) == []
    with pytest.raises(InvalidArgument, match=r"items\[0\].request_id"):
        reg.record_feedback("toy", [("", 1)])


def test_prune_by_age_and_rows(registry: Registry) -> None:
    reg = registry
    reg.log_predictions([_record(f"r{i}") for i in range(10)])
    reg.record_feedback("toy", [("r0", 1), ("r9", 1)])
    with reg._write() as conn:  # age the first three rows by a day
        conn.execute(
            update(predictions)
            .where(predictions.c.request_id.in_(["r0", "r1", "r2"]))
            .values(ts=datetime.now(UTC) - timedelta(days=1))
        )
    assert reg.prune_predictions(older_than_s=3600) == 3
    assert [r.request_id for r in reg.labelled("toy")] == ["r9"]  # r0's feedback went with it
    assert reg.prune_predictions(keep_rows=4) == 3
    assert [r.request_id for r in reg.prediction_rows("toy")] == ["r6", "r7", "r8", "r9"]
    assert reg.prune_predictions(older_than_s=3600, keep_rows=100) == 0


def test_deleting_the_endpoint_stops_its_experiment(served: Registry) -> None:
    exp = served.start_experiment("toy", "toy@2", mode="shadow")
    served.delete_endpoint("toy", actor="carol")
    ended = served.experiment_by_id(exp.id)
    assert (ended.state, ended.ended_by, ended.decision) == (
        "stopped",
        "carol",
        {"reason": "endpoint 'toy' was deleted"},
    )
    served.set_endpoint("toy", "toy@production")
    assert served.experiment("toy") is None
