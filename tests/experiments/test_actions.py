"""Decisions acted on in a real registry: promote through the gates (the alias moves), abort, audit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.experiments.actions import decide_once
from modelrunner.experiments.stats import load_stats
from support.exp_log import log_answers

RULES = ["accuracy >= baseline - 0.01", "error_rate <= 0.05"]


@pytest.fixture
def reg(db_url: str, tmp_home: Path, digits_models: dict[str, Path]) -> Any:
    """digits@1 weak (production), @2 good, @3 bad; endpoint digits -> digits@production."""
    from modelrunner.registry import Registry

    registry = Registry(database_url=db_url, store_url=str(tmp_home / "artifacts"))
    registry.push(digits_models["weak"], alias="production", actor="tester")
    registry.push(digits_models["good"], actor="tester")
    registry.push(digits_models["bad"], actor="tester")
    registry.set_endpoint("digits", "digits@production", actor="tester")
    yield registry
    registry.close()


def _run(reg: Any, candidate: str, data: Any, n: int = 300) -> Any:
    _, _, x, y = data
    exp = reg.start_experiment(
        "digits", candidate, mode="ab", rules=RULES, min_labels=100, then="promote", actor="tester"
    )
    rng = np.random.default_rng(1)
    idx = rng.choice(len(x), size=2 * n)
    log_answers(reg, exp, "production", "digits@1", x[idx[:n]], y[idx[:n]], prefix="p")
    log_answers(reg, exp, "candidate", candidate, x[idx[n:]], y[idx[n:]], prefix="c")
    return exp


def test_a_better_candidate_is_promoted_through_the_alias(reg: Any, digits_data: Any) -> None:
    exp = _run(reg, "digits@2", digits_data)
    looks: dict[str, int] = {}
    assert decide_once(reg, exp, looks) == "promote digits@production -> 2"
    assert reg.resolve("digits@production").version == 2
    ended = reg.experiment_by_id(exp.id)
    assert ended.state == "promoted" and reg.experiment("digits") is None
    rules = ended.decision["verdict"]["rules"]
    assert [r["outcome"] for r in rules] == ["pass", "pass"]
    assert rules[0]["test"].startswith("Newcombe") and rules[1]["test"].startswith("Wilson")
    online = reg.evaluations("digits", 2)[0]
    assert online.dataset_name == f"online:{exp.id}" and online.metrics["accuracy"] > 0.8
    assert decide_once(reg, ended, looks) is None  # the same checkpoint is not judged twice
    actions = [a.action for a in reg.audit(limit=20)]
    assert "experiment.promoted" in actions and "experiment.promote" in actions


def test_a_decision_that_fails_midway_is_taken_again_at_the_next_tick(
    reg: Any, digits_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails once while promoting (after the evaluations are stored): the checkpoint is not
    spent, the next call promotes, and the online evaluations are stored once."""
    from modelrunner.errors import Unavailable

    exp = _run(reg, "digits@2", digits_data)
    real = reg.end_experiment
    calls = []

    def busy_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise Unavailable("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(reg, "end_experiment", busy_once)
    looks: dict[str, int] = {}
    with pytest.raises(Unavailable):
        decide_once(reg, exp, looks)
    assert looks == {} and reg.experiment_by_id(exp.id).state == "running"
    assert decide_once(reg, exp, looks) == "promote digits@production -> 2"
    assert reg.experiment_by_id(exp.id).state == "promoted" and list(looks) == [exp.id]
    for version in (1, 2):
        online = [e for e in reg.evaluations("digits", version) if e.dataset_name == f"online:{exp.id}"]
        assert len(online) == 1, version
    assert reg.experiment_by_id(exp.id).decision["evaluations"] == {
        v: e.id
        for v, e in (
            ("production", reg.evaluations("digits", 1)[0]),
            ("candidate", reg.evaluations("digits", 2)[0]),
        )
    }


def test_the_decider_tick_publishes_online_series_and_acts(reg: Any, digits_data: Any) -> None:
    from modelrunner.experiments.loop import tick
    from modelrunner.monitoring import metrics as prom
    from modelrunner.monitoring.prometheus import PROMETHEUS

    prom.reset()
    _run(reg, "digits@3", digits_data)
    assert tick(reg, ["digits", "other"], {}, observer=PROMETHEUS) == ["digits: abort"]
    text = prom.render()[0].decode()
    for variant in ("production", "candidate"):
        assert f'modelrunner_online_metric{{endpoint="digits",metric="accuracy",variant="{variant}"}}' in text
        assert f'modelrunner_online_labelled{{endpoint="digits",variant="{variant}"}} 300.0' in text
    assert 'metric="error_rate",variant="candidate"} 0.0' in text
    assert tick(reg, ["digits"], {}) == []  # nothing running any more
    exp = reg.start_experiment("digits", "digits@2", mode="shadow", actor="tester")  # no rules
    due: dict[str, float] = {}
    assert tick(reg, ["digits"], {}, None, due) == [] and due[exp.id] > time.monotonic() + 5
    prom.reset()


def test_one_live_worker_per_endpoint_decides(reg: Any, digits_data: Any) -> None:
    from modelrunner.experiments.loop import leads, tick
    from modelrunner.registry.types import WorkerStatus

    for worker in ("host:2", "host:1"):
        reg.report_worker(WorkerStatus(runner_id=worker, endpoint="digits", state="serving"))
    assert leads(reg, "digits", "host:1") and not leads(reg, "digits", "host:2")
    assert leads(reg, "digits", "host:9")  # not reporting yet: it decides rather than nobody
    _run(reg, "digits@3", digits_data)
    assert tick(reg, ["digits"], {}, "host:2") == []  # stands by
    assert tick(reg, ["digits"], {}, "host:1") == ["digits: abort"]


def test_a_worse_candidate_is_aborted_and_production_stays(reg: Any, digits_data: Any) -> None:
    exp = _run(reg, "digits@3", digits_data)
    assert decide_once(reg, exp, {}) == "abort"
    assert reg.resolve("digits@production").version == 1
    ended = reg.experiment_by_id(exp.id)
    assert ended.state == "aborted"
    assert "accuracy >= baseline - 0.01" in ended.decision["reason"]
    assert ended.decision["variants"]["candidate"]["metrics"]["accuracy"]["value"] < 0.3
    # a second decider arriving late acts on nothing: the experiment already ended
    assert decide_once(reg, exp, {}) is None


def test_the_saved_gates_still_apply(reg: Any, digits_data: Any) -> None:
    reg.set_gates("digits", ["accuracy >= 0.99"], actor="tester")
    exp = _run(reg, "digits@2", digits_data)
    result = decide_once(reg, exp, {})
    assert result is not None and result.startswith("promote aborted: the saved gates refuse digits@2")
    assert reg.resolve("digits@production").version == 1
    assert reg.experiment_by_id(exp.id).state == "aborted"


def test_nothing_is_decided_before_the_minimums(reg: Any, digits_data: Any) -> None:
    _, _, x, y = digits_data
    exp = reg.start_experiment(
        "digits", "digits@3", mode="canary", rules=RULES, min_labels=100, then="promote", actor="tester"
    )
    log_answers(reg, exp, "production", "digits@1", x[:200], y[:200], prefix="p")
    log_answers(reg, exp, "candidate", "digits@3", x[:60], y[:60], prefix="c")
    stats = load_stats(reg, exp)
    assert stats.candidate is not None and stats.candidate.labelled == 60
    assert decide_once(reg, exp, {}) is None and reg.experiment("digits") is not None


def test_the_decider_reports_online_metrics_to_the_observer_given(reg: Any, digits_data: Any) -> None:
    from modelrunner.experiments.loop import tick
    from modelrunner.monitoring import metrics as prom
    from modelrunner.monitoring.observer import RecordingObserver

    prom.reset()
    _run(reg, "digits@3", digits_data)
    observer = RecordingObserver()
    assert tick(reg, ["digits"], {}, observer=observer) == ["digits: abort"]
    labelled = {(e, v): n for e, v, n in observer.named("online_labelled")}
    assert labelled == {("digits", "production"): 300, ("digits", "candidate"): 300}
    metrics = {(v, m) for e, v, m, _ in observer.named("online_metric") if e == "digits"}
    assert {("production", "accuracy"), ("candidate", "accuracy"), ("candidate", "requests")} <= metrics
    assert b"modelrunner_online_metric{" not in prom.render()[0]  # nothing went to Prometheus directly
