import math

import pytest

from modelrunner.errors import InvalidArgument, RequirementError
from modelrunner.evaluation.requirements import (
    GRAMMAR,
    Requirement,
    higher_is_better,
    parse_requirement,
    parse_requirements,
)


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("accuracy>=0.95", "accuracy", ">=", 0.95),
        ("p99_ms<=10", "p99_ms", "<=", 10.0),
        ("qps>=800", "qps", ">=", 800.0),
        ("  rmse < 1.5e-1 ", "rmse", "<", 0.15),
        ("r2>.5", "r2", ">", 0.5),
        ("cer==0", "cer", "==", 0.0),
        ("inproc_p99_ms <= -1", "inproc_p99_ms", "<=", -1.0),
    ],
)
def test_parses(text: str, metric: str, op: str, threshold: float) -> None:
    req = parse_requirement(text)
    assert (req.metric, req.op, req.threshold) == (metric, op, threshold)


def test_str_round_trips() -> None:
    for text in ("accuracy>=0.95", "p99_ms<=10", "qps>=800", "rmse<0.15"):
        assert str(parse_requirement(text)) == text
        assert parse_requirement(str(parse_requirement(text))) == parse_requirement(text)


@pytest.mark.parametrize(
    "text",
    [
        "accuracy=>0.9",
        "accuracy>=",
        ">=0.9",
        "accuracy >= high",
        "accuracy 0.9",
        "accuracy>=0.9 and qps>1",
        "",
        "accuracy>=1e999",
    ],
)
def test_bad_syntax_shows_the_grammar(text: str) -> None:
    with pytest.raises(RequirementError) as err:
        parse_requirement(text)
    msg = str(err.value)
    assert repr(text) in msg
    if "finite" not in msg:
        assert GRAMMAR in msg and "accuracy" in msg and "p99_ms" in msg
    assert isinstance(err.value, InvalidArgument)


def test_unknown_metric_lists_known_ones() -> None:
    with pytest.raises(RequirementError, match=r"unknown metric 'acuracy'.*known metrics: .*accuracy"):
        parse_requirement("acuracy>=0.9")


def test_custom_metric_names_are_known_when_given() -> None:
    with pytest.raises(RequirementError):
        parse_requirement("brier<=0.1")
    assert parse_requirement("brier<=0.1", ["brier"]).metric == "brier"


def test_check_and_missing_values() -> None:
    ge, le = Requirement("accuracy", ">=", 0.9), Requirement("p99_ms", "<=", 10)
    eq = Requirement("cer", "==", 0)
    assert ge.check(0.9) and ge.check(1.0) and not ge.check(0.89)
    assert le.check(10) and not le.check(10.01)
    assert eq.check(0.0) and not eq.check(0.1)
    assert not ge.check(None) and not ge.check(math.nan)


def test_parse_many_dedupes_and_directions() -> None:
    reqs = parse_requirements(["accuracy>=0.9", "accuracy >= 0.9", "qps>=1"])
    assert [str(r) for r in reqs] == ["accuracy>=0.9", "qps>=1"]
    assert higher_is_better("accuracy") and not higher_is_better("p99_ms") and higher_is_better("custom")
