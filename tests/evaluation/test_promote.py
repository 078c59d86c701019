"""Promotion and saved gates: a real registry and real bundles; in-process speed only."""

from pathlib import Path
from typing import Any

import pytest

from modelrunner.errors import FailedPrecondition, InvalidArgument
from modelrunner.evaluation.evaluate import Options, evaluate
from modelrunner.evaluation.promote import parse_versions, promote

FAST = Options(served=False, single_calls=10)


def _production(reg: Any) -> int:
    return int(reg.resolve("digits@production").version)


def test_promotes_the_best_passing_candidate_with_audit(digits_reg: Any, digits_npz: Path) -> None:
    d = promote(
        digits_reg,
        "digits",
        versions="2,3",
        data=digits_npz,
        requirements=["accuracy>=0.85"],
        options=FAST,
        actor="alice",
    )
    assert d.promoted and d.chosen is not None and d.chosen.version == 2 and d.previous == 1
    assert d.improvement == pytest.approx(0.8894 - 0.4506, abs=1e-3)
    assert _production(digits_reg) == 2
    entry = digits_reg.audit(action="evaluation.promote")[0]
    assert entry.actor == "alice" and entry.subject == "digits@production"
    assert entry.before == {"version": 1} and entry.after["version"] == 2
    assert entry.after["evaluation_id"] == digits_reg.evaluations("digits", 2)[0].id
    assert entry.after["dataset"]["sha256"] == d.dataset["sha256"] and entry.after["requirements"] == [
        "accuracy>=0.85"
    ]
    # the current production (v1) was evaluated on the same data as the baseline
    assert entry.after["baseline_evaluation_id"] == digits_reg.evaluations("digits", 1)[0].id


def test_refuses_when_no_candidate_passes(digits_reg: Any, digits_npz: Path) -> None:
    d = promote(
        digits_reg, "digits", versions=[2, 3], data=digits_npz, requirements=["accuracy>=0.95"], options=FAST
    )
    assert not d.promoted and _production(digits_reg) == 1
    assert d.reason.startswith("no candidate meets: accuracy>=0.95 (digits@2: fail: accuracy 0.8894 < 0.95")
    refused = digits_reg.audit(action="evaluation.promote_refused")[0]
    assert refused.after["reason"] == d.reason


def test_refuses_without_enough_improvement(digits_reg: Any, digits_npz: Path) -> None:
    digits_reg.set_alias("digits", "production", 2)
    d = promote(digits_reg, "digits", versions="3", data=digits_npz, options=FAST)
    assert not d.promoted and _production(digits_reg) == 2
    assert "digits@3 accuracy 0.8794 does not beat production digits@2 (0.8894) by 0" in d.reason
    d = promote(digits_reg, "digits", versions="2,3", data=digits_npz, options=FAST)
    assert not d.promoted and d.reason == "digits@2 is the best candidate and already production"
    digits_reg.set_alias("digits", "production", 1)
    d = promote(digits_reg, "digits", versions="3", data=digits_npz, min_improvement=0.5, options=FAST)
    assert not d.promoted and "by 0.5 (improvement 0.4288)" in d.reason


def test_uses_stored_evaluations_without_data(digits_reg: Any, digits_npz: Path) -> None:
    with pytest.raises(InvalidArgument, match="no stored evaluation of digits@2, digits@3"):
        promote(digits_reg, "digits", versions="2,3", requirements=["accuracy>=0.85"])
    evaluate(digits_reg, ["digits@1", "digits@2", "digits@3"], digits_npz, options=FAST)
    d = promote(digits_reg, "digits", versions="2,3", requirements=["accuracy>=0.85"])
    assert d.promoted and d.chosen is not None and d.chosen.version == 2 and _production(digits_reg) == 2
    assert d.chosen.evaluation_id == digits_reg.evaluations("digits", 2)[0].id


def test_saved_gates_guard_every_move_to_production(digits_reg: Any, digits_npz: Path) -> None:
    digits_reg.set_gates("digits", ["accuracy >= 0.85"])
    with pytest.raises(FailedPrecondition, match=r"digits@2 cannot become production: accuracy >= 0.85: nev"):
        digits_reg.set_alias("digits", "production", 2)
    digits_reg.set_alias("digits", "staging", 2)  # other aliases are not gated
    evaluate(digits_reg, ["digits@1", "digits@2"], digits_npz, options=FAST)  # saved gates included
    with pytest.raises(FailedPrecondition, match=r"failed in evaluation #\d+ \(accuracy 0.4506 < 0.85\)"):
        digits_reg.set_alias("digits", "production", 1)
    digits_reg.set_alias("digits", "production", 2)
    assert _production(digits_reg) == 2
    digits_reg.set_alias("digits", "production", 1, actor="bob", force=True)
    override = digits_reg.audit(action="gates.override")[0]
    assert override.actor == "bob" and override.subject == "digits@1"
    assert "accuracy 0.4506 < 0.85" in override.after["failures"][0]


def test_saved_gates_refuse_a_push_straight_to_production(
    digits_reg: Any, digits_bundles: dict[str, Path]
) -> None:
    digits_reg.set_gates("digits", ["accuracy>=0.85"])
    with pytest.raises(FailedPrecondition, match="digits@4 cannot become production"):
        digits_reg.push(digits_bundles["good"], alias="production")
    assert _production(digits_reg) == 1 and digits_reg.model("digits").latest.version == 3


def test_promote_respects_saved_gates(digits_reg: Any, digits_npz: Path) -> None:
    digits_reg.set_gates("digits", ["accuracy>=0.885"])
    d = promote(digits_reg, "digits", versions="2,3", data=digits_npz, options=FAST)
    assert d.promoted and d.chosen is not None and d.chosen.version == 2
    assert digits_reg.audit(action="evaluation.promote")[0].after["requirements"] == ["accuracy>=0.885"]


def test_bad_versions_and_models(digits_reg: Any) -> None:
    assert parse_versions("4, 2,3,2") == [2, 3, 4]
    for bad in ("", "a,b", "0"):
        with pytest.raises(InvalidArgument, match="--best-of"):
            parse_versions(bad)
    with pytest.raises(Exception, match="unknown model 'nope'"):
        promote(digits_reg, "nope", versions="1")


def test_an_unmeasured_gate_does_not_hide_an_earlier_measurement(digits_reg: Any) -> None:
    digits_reg.set_gates("digits", ["p99_ms<=50"])
    gate = {"requirement": "p99_ms<=50", "metric": "p99_ms", "op": "<=", "threshold": 50.0}
    digits_reg.record_evaluation(
        "digits",
        2,
        metrics={"p99_ms": 12.0},
        passed=True,
        gates=[{**gate, "value": 12.0, "passed": True, "reason": "p99_ms 12 <= 50"}],
    )
    digits_reg.record_evaluation(
        "digits",
        2,
        metrics={},
        passed=False,
        gates=[{**gate, "value": None, "passed": False, "reason": "p99_ms was not measured"}],
    )
    digits_reg.set_alias("digits", "production", 2)  # the newest *measurement* passed
    digits_reg.record_evaluation(
        "digits",
        3,
        metrics={},
        passed=False,
        gates=[{**gate, "value": None, "passed": False, "reason": "p99_ms was not measured"}],
    )
    with pytest.raises(FailedPrecondition, match=r"p99_ms<=50: failed in evaluation #\d+ \(p99_ms was not"):
        digits_reg.set_alias("digits", "production", 3)


def test_first_promotion_and_other_aliases(digits_reg: Any, digits_npz: Path) -> None:
    digits_reg.set_gates("digits", ["accuracy>=0.99"])  # saved gates guard production only
    d = promote(digits_reg, "digits", versions="1,3", alias="staging", data=digits_npz, options=FAST)
    assert d.promoted and d.previous is None and d.chosen is not None and d.chosen.version == 3
    assert digits_reg.resolve("digits@staging").version == 3
    d = promote(digits_reg, "digits", versions="3", data=digits_npz, options=FAST)
    assert not d.promoted and "accuracy 0.8794 < 0.99" in d.reason
