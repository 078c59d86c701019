"""--decide rules: the requirement grammar with ``baseline``."""

from __future__ import annotations

import pytest

from modelrunner.errors import InvalidArgument
from modelrunner.evaluation.metrics import Task
from modelrunner.experiments.rules import Rule, parse_rule, parse_rules


@pytest.mark.parametrize(
    ("text", "rule", "canonical"),
    [
        ("accuracy >= baseline - 0.01", Rule("accuracy", ">=", 1.0, -0.01), "accuracy >= baseline - 0.01"),
        ("p99_ms<=baseline*1.2", Rule("p99_ms", "<=", 1.2, 0.0), "p99_ms <= baseline * 1.2"),
        ("p99_ms <= 1.5 * baseline", Rule("p99_ms", "<=", 1.5, 0.0), "p99_ms <= baseline * 1.5"),
        ("error_rate <= 0.01", Rule("error_rate", "<=", 0.0, 0.01), "error_rate <= 0.01"),
        ("macro_f1 > baseline", Rule("macro_f1", ">", 1.0, 0.0), "macro_f1 > baseline"),
        ("rmse < baseline + 2", Rule("rmse", "<", 1.0, 2.0), "rmse < baseline + 2"),
    ],
)
def test_forms_parse_and_print_canonically(text: str, rule: Rule, canonical: str) -> None:
    assert parse_rule(text) == rule
    assert str(rule) == canonical
    assert parse_rule(str(rule)) == rule


def test_thresholds_and_holds() -> None:
    r = parse_rule("accuracy >= baseline - 0.01")
    assert r.relative and r.threshold(0.9) == pytest.approx(0.89)
    assert r.holds(0.895, 0.9) and not r.holds(0.85, 0.9)
    assert r.threshold(None) is None and not r.holds(0.99, None)
    a = parse_rule("error_rate <= 0.01")
    assert not a.relative and a.threshold(None) == 0.01 and a.holds(0.0) and not a.wants_higher


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("accuracy >= baseline -", "cannot parse rule 'accuracy >= baseline -'"),
        ("accuracy => 0.9", "cannot parse rule 'accuracy => 0.9'"),
        ("accuracy >= basline", "cannot parse rule 'accuracy >= basline'"),
        ("acuracy >= 0.9", "unknown metric 'acuracy' in rule 'acuracy >= 0.9'"),
        ("accuracy == baseline", "rule 'accuracy == baseline': use >="),
        ("p99_ms <= baseline * -1", "the baseline factor must be positive"),
    ],
)
def test_bad_rules_name_the_rule(text: str, needle: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rule(text)
    assert needle in str(err.value)


def test_task_restricts_metrics_and_duplicates_are_kept_once() -> None:
    with pytest.raises(InvalidArgument, match="unknown metric 'rmse'.*classification"):
        parse_rule("rmse <= baseline", Task.CLASSIFICATION)
    assert parse_rule("agreement >= 0.9", Task.CLASSIFICATION).metric == "agreement"
    rules = parse_rules(["accuracy>=baseline-0.01", "accuracy >= baseline - 0.01", "p50_ms <= 5"])
    assert [str(r) for r in rules] == ["accuracy >= baseline - 0.01", "p50_ms <= 5"]
