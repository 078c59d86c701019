"""The release path in-process on a real registry: a failing trainer, a candidate refused by its gates, a
candidate rolled out as a canary with its lineage, the triggers, the lock as seen by a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelrunner.training.run import TrainOptions, prepare, train_once
from support.training_helpers import KNN_TRAINER, log_labelled, serve_digits, shift, split, write_trainer


@pytest.fixture
def digits(reg: Any, tmp_path: Path) -> Any:
    serve_digits(reg, tmp_path)
    return reg


def _opts(tmp_path: Path, trainer: str = KNN_TRAINER, **kw: Any) -> TrainOptions:
    path = write_trainer(tmp_path, trainer)
    return TrainOptions(model="digits", trainer=f"{path}:train", **kw)


def _shifted_labels(registry: Any, n: int = 300) -> None:
    _, x_te, _, y_te = split()
    log_labelled(registry, shift(x_te[:n]), y_te[:n])


def test_a_trainer_that_raises_leaves_production_serving_and_is_audited(digits: Any, tmp_path: Path) -> None:
    _shifted_labels(digits, 100)
    before = digits.resolve("digits@production").version
    failing = "def train(data, base):\n    raise ValueError('bad')\n"
    outcome = train_once(digits, prepare(_opts(tmp_path, failing)))
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "ValueError: bad" in outcome.message and "production still serves digits@1" in outcome.message
    assert digits.resolve("digits@production").version == before and len(digits.model("digits").versions) == 1
    assert digits.experiment("digits") is None
    entry = digits.audit(subject="digits", action="training.failed")[0]
    assert "ValueError: bad" in entry.after["error"]
    assert digits.training_runs("digits")[0].state == "failed"  # and the lock is free again:
    assert digits.start_training("digits", trigger="manual").running


def test_a_candidate_failing_its_gates_never_reaches_traffic(digits: Any, tmp_path: Path) -> None:
    _shifted_labels(digits, 200)
    weak = """
        from sklearn.dummy import DummyClassifier

        def train(data, base):
            return DummyClassifier(strategy="most_frequent").fit(data.X, data.y)
    """
    outcome = train_once(
        digits,
        prepare(_opts(tmp_path, weak, requirements=["accuracy>=0.9"], rollout="canary 20 then promote")),
    )
    assert outcome.status == "refused" and outcome.exit_code == 3, outcome.message
    assert "accuracy>=0.9" in outcome.message and outcome.version == 2
    assert digits.experiment("digits") is None and digits.experiments("digits") == []
    assert digits.resolve("digits@production").version == 1
    assert digits.endpoint("digits").target == "digits@production"
    entry = digits.audit(subject="digits", action="training.refused_gates")[0]
    assert entry.after["new_version"] == 2 and entry.after["gates"][0]["passed"] is False


def test_a_passing_candidate_starts_a_canary_with_its_lineage(digits: Any, tmp_path: Path) -> None:
    _shifted_labels(digits, 300)
    opts = _opts(
        tmp_path,
        requirements=["accuracy>=0.9"],
        rollout="canary 20 then promote",
        data="modelrunner_test_digits_data:original",
        holdout=0.25,
    )
    (tmp_path / "modelrunner_test_digits_data.py").write_text(
        "from support.training_helpers import split\n\n"
        "def original():\n    x, _, y, _ = split()\n    return x, y\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        outcome = train_once(digits, prepare(opts))
    finally:
        sys.path.remove(str(tmp_path))
    assert outcome.status == "started", outcome.message
    exp = digits.experiment("digits")
    assert exp.candidate == "digits@2" and exp.mode == "canary" and exp.percent == 20.0
    assert exp.then_action == "promote" and "accuracy >= baseline" in exp.rules
    assert digits.resolve("digits@production").version == 1  # the decider moves it, not training
    mv = digits.resolve("digits@2")
    extra = mv.lineage["extra"]
    assert mv.lineage["parent"] == "digits@1" and extra["parent_version"] == 1
    assert extra["data"]["base_rows"] == 1257 and extra["data"]["feedback_rows"] == 225
    assert extra["data"]["holdout_rows"] == 75 and extra["data"]["base_matches_parent"] is True
    assert extra["trigger"] == "manual" and len(extra["trainer"]["sha256"]) == 64
    assert mv.lineage["training_data_sha256"] and outcome.metrics["accuracy"] >= 0.9
    ev = digits.evaluations("digits", 2)[0]
    assert ev.passed and ev.dataset_name == "holdout:recent-labelled"
    run = digits.training_runs("digits")[0]
    assert run.state == "succeeded" and run.new_version == 2 and run.parent_version == 1
    # an experiment runs: the next one-shot run has nothing to do
    again = train_once(digits, prepare(opts))
    assert again.status == "nothing" and exp.id in again.message


def test_triggers_say_why_nothing_is_due(digits: Any, tmp_path: Path) -> None:
    opts = _opts(tmp_path, triggers=["labels>=150", "every=1h", "drift"], rollout="none")
    outcome = train_once(digits, prepare(opts))  # no run yet: every=1h fires
    assert outcome.status in ("refused", "failed")  # no labels yet: nothing to train on or to judge with
    assert "every=1h" in digits.training_runs("digits")[0].trigger
    quiet = train_once(digits, prepare(opts))
    assert quiet.status == "nothing" and quiet.exit_code == 0
    assert "labels>=150: 0 new labelled rows" in quiet.message and "no drift alert" in quiet.message
    _shifted_labels(digits, 160)
    fired = train_once(digits, prepare(opts))
    assert fired.status == "pushed", fired.message
    assert digits.training_runs("digits")[0].trigger.startswith("labels>=150: 160 new labelled rows")


def test_a_firing_drift_alert_triggers_once_per_episode(digits: Any, tmp_path: Path) -> None:
    _shifted_labels(digits, 200)
    digits.set_alert("digits", "drift", "firing", version=1, detail={"drifted": 30})
    opts = _opts(tmp_path, triggers=["drift"], rollout="none")
    first = train_once(digits, prepare(opts))
    assert first.status == "pushed" and digits.training_runs("digits")[0].trigger.startswith("drift: alert")
    second = train_once(digits, prepare(opts))
    assert second.status == "nothing" and "already answered this alert" in second.message


def test_a_held_lock_refuses_the_run(digits: Any, tmp_path: Path) -> None:
    holder = digits.start_training("digits", trigger="manual", actor="cron")
    outcome = train_once(digits, prepare(_opts(tmp_path)))
    assert outcome.status == "locked" and outcome.exit_code == 2 and holder.id in outcome.message


def test_watch_reports_each_new_outcome_until_stopped(digits: Any, tmp_path: Path) -> None:
    import threading

    from modelrunner.training.run import watch

    stop, seen = threading.Event(), []

    def report(outcome: Any) -> None:
        seen.append(outcome)
        stop.set()

    prep = prepare(_opts(tmp_path, triggers=["labels>=1000"]))
    thread = threading.Thread(
        target=watch, args=(digits, prep), kwargs={"interval_s": 0.05, "stop": stop, "report": report}
    )
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and [o.status for o in seen] == ["nothing"]
