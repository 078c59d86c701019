import math

from modelrunner.evaluation.gates import check_gates, fmt, improvement, rank_key, verdict
from modelrunner.evaluation.requirements import parse_requirements

REQS = parse_requirements(["accuracy>=0.95", "p99_ms<=10", "qps>=800"])


def test_all_pass() -> None:
    gates = check_gates(REQS, {"accuracy": 0.97, "p99_ms": 4.2, "qps": 1200.0})
    assert all(g.passed for g in gates) and verdict(gates) == "pass"
    assert gates[0].reason == "accuracy 0.97 >= 0.95"


def test_failures_say_why() -> None:
    gates = check_gates(REQS, {"accuracy": 0.93, "p99_ms": 12.5, "qps": 900.0})
    assert [g.passed for g in gates] == [False, False, True]
    assert verdict(gates) == "fail: accuracy 0.93 < 0.95; p99_ms 12.5 > 10"


def test_missing_and_nan_values_fail() -> None:
    gates = check_gates(REQS, {"accuracy": math.nan, "qps": 900.0})
    assert not gates[0].passed and gates[0].reason == "accuracy was not measured"
    assert not gates[1].passed and gates[1].value is None
    assert gates[1].to_dict()["value"] is None and gates[2].to_dict()["passed"] is True


def test_ranking_and_improvement() -> None:
    a = {"accuracy": 0.95, "p99_ms": 8.0}
    b = {"accuracy": 0.95, "p99_ms": 3.0}
    c = {"accuracy": 0.97, "inproc_p99_ms": 30.0}
    ranked = sorted([a, b, c], key=lambda x: rank_key(x, "accuracy"))
    assert ranked == [c, b, a]
    assert improvement(c, a, "accuracy") == 0.97 - 0.95
    assert improvement({"rmse": 1.0}, {"rmse": 1.5}, "rmse") == 0.5  # lower is better
    assert fmt(None) == "n/a" and fmt(10.0) == "10" and fmt(1234.5) == "1,234" and fmt(0.5) == "0.5"
