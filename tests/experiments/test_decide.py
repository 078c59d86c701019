"""Statistical decisions: intervals decide, noise waits; checkpoints bound the number of looks."""

from __future__ import annotations

import numpy as np
import pytest

from modelrunner.evaluation import metrics as m
from modelrunner.experiments import decide
from modelrunner.experiments.decide import (
    NEWCOMBE,
    WILSON,
    Z_DECIDE,
    judge,
    judge_rule,
    look_number,
    newcombe,
)
from modelrunner.experiments.online import Z95, Sample, VariantStats, online_stats
from modelrunner.experiments.rules import parse_rule, parse_rules
from support.exp_rows import contract, rows


def test_newcombe_matches_the_paper() -> None:
    low, high = newcombe(56, 70, 48, 80)  # Newcombe (1998), example (a), method 10: 0.0524 to 0.3339
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def _stats(
    acc_prod: float, acc_cand: float, n_prod: int, n_cand: int, *, seed: int = 0, cand_latency: float = 2.0
) -> dict[str, VariantStats]:
    rng = np.random.default_rng(seed)

    def answers(acc: float, n: int) -> list[int]:
        return np.where(rng.random(n) < acc, 1, 0).tolist()

    logged = rows("production", answers(acc_prod, n_prod), [1] * n_prod) + rows(
        "candidate", answers(acc_cand, n_cand), [1] * n_cand, latency=cand_latency
    )
    return online_stats(logged, logged, m.Task.CLASSIFICATION, lambda model, version: contract())


def test_clearly_better_passes_clearly_worse_fails_close_waits() -> None:
    rule = parse_rule("accuracy >= baseline - 0.01")
    better = _stats(0.80, 0.95, 600, 300)
    v = judge_rule(rule, better["candidate"], better["production"])
    assert v.outcome == "pass" and v.test == NEWCOMBE and v.low is not None and v.low >= -0.01
    worse = _stats(0.90, 0.10, 600, 300)
    assert judge_rule(rule, worse["candidate"], worse["production"]).outcome == "fail"
    same = _stats(0.90, 0.90, 200, 60, seed=3)  # a tie on little data: the interval straddles -0.01
    v = judge_rule(rule, same["candidate"], same["production"])
    assert v.outcome == "wait" and v.low is not None and v.low < -0.01 < (v.high or 0)


def test_too_few_rows_wait_and_absolute_rules_use_wilson() -> None:
    few = _stats(0.9, 0.99, 100, 20)
    assert judge_rule(parse_rule("accuracy >= 0.5"), few["candidate"], few["production"]).outcome == "wait"
    ok = _stats(0.9, 1.0, 100, 400)
    v = judge_rule(parse_rule("error_rate <= 0.02"), ok["candidate"], ok["production"])
    assert v.outcome == "pass" and v.test == WILSON  # 0 errors in 400: 99 % upper bound 0.016
    small = _stats(0.9, 1.0, 100, 200)
    assert (
        judge_rule(parse_rule("error_rate <= 0.02"), small["candidate"], small["production"]).outcome
        == "wait"
    )  # 0 errors in 200 cannot yet show <= 2 % (upper bound 0.032)


def test_latency_ratio_rule_by_bootstrap() -> None:
    slow = _stats(0.9, 0.9, 300, 300, cand_latency=8.0)
    v = judge_rule(parse_rule("p99_ms <= baseline * 1.2"), slow["candidate"], slow["production"])
    assert v.outcome == "fail" and v.test.startswith("percentile bootstrap")
    same = _stats(0.9, 0.9, 300, 300)
    assert (
        judge_rule(parse_rule("p50_ms <= baseline * 1.2"), same["candidate"], same["production"]).outcome
        == "pass"
    )


def test_judge_combines_rules() -> None:
    s = _stats(0.80, 0.95, 600, 300)
    rules = parse_rules(["accuracy >= baseline - 0.01", "error_rate <= 0.01"])
    v = judge(rules, s["candidate"], s["production"])
    assert v.outcome == "wait"  # accuracy passes, 0 errors in 300 cannot show <= 1 % yet
    rules = parse_rules(["accuracy >= baseline - 0.01", "accuracy >= 0.99"])
    v = judge(rules, s["candidate"], s["production"])
    assert v.outcome == "fail" and "accuracy >= 0.99" in v.reason
    assert judge(rules, None, s["production"]).outcome == "wait"


@pytest.mark.parametrize(
    ("count", "first", "look"),
    [(0, 150, -1), (149, 150, -1), (150, 150, 0), (224, 150, 0), (225, 150, 1), (338, 150, 2)],
)
def test_looks_at_geometric_checkpoints(count: int, first: int, look: int) -> None:
    assert look_number(count, first) == look


def _accuracy_only(variant: str, hits: np.ndarray) -> VariantStats:
    stats = VariantStats(variant, "m", 1, requests=len(hits), errors=0, labelled=len(hits))
    stats.samples["accuracy"] = Sample(float(hits.mean()), len(hits), successes=int(hits.sum()))
    return stats


@pytest.mark.parametrize(("z", "most"), [(Z_DECIDE, 0.06), (Z95, 1.0)])
def test_a_tie_rarely_decides_across_repeated_looks(
    z: float, most: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal models judged at every checkpoint up to ~2,500 labels: noise decides (either way) in < 6 % of
    the runs with the decision level; 95 % intervals at each look would decide in over 10 %."""
    monkeypatch.setattr(decide, "Z_DECIDE", z)
    rule = parse_rule("accuracy >= baseline")  # true difference 0: a decision either way is noise
    decided, runs = 0, 300
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        prod, cand = rng.random(2600) < 0.9, rng.random(2600) < 0.9
        for n in (150, 225, 338, 506, 759, 1139, 1709, 2563):
            verdict = judge_rule(
                rule, _accuracy_only("candidate", cand[:n]), _accuracy_only("production", prod[:n])
            )
            if verdict.outcome != "wait":
                decided += 1
                break
    if z == Z95:
        assert decided / runs > 0.1
    else:
        assert decided / runs < most
