"""Automatic decisions: judge an experiment's ``--decide`` rules on its online stats, then promote or abort.

Each rule is decided by a 99 % confidence interval of what it compares, never by the point value:

- candidate proportion vs a number (``error_rate <= 0.01``): the Wilson score interval of the proportion;
- candidate proportion vs ``baseline ± d`` (``accuracy >= baseline - 0.01``): the Newcombe hybrid score
  interval (Newcombe 1998, method 10) of the difference of two independent proportions;
- anything else (``p99_ms <= baseline * 1.2``, rmse, cer, macro_f1, a proportion times a factor): a percentile
  bootstrap interval of ``candidate - (scale * baseline + offset)``, each variant resampled on its own.

A rule passes when the whole interval is on its good side (for ``>=``: the lower bound clears the threshold),
fails when the whole interval is on the bad side (the upper bound cannot reach it), and waits otherwise. The
experiment fails on the first failing rule and passes when every rule passes. Rules are looked at only at
checkpoints — the first when ``min_labels`` / ``min_requests`` are reached, then each time the candidate's
count grows by half again — so the number of looks (and with it the chance that noise decides) grows with the
logarithm of the traffic, not with the number of decider ticks. Each look uses a 99 % interval (z = 2.576,
close to Pocock's constant boundary for 5-10 looks), so that a tie between the variants ends in a decision
in under 5 % of experiments over the ~8 looks from ``min_labels`` to 25 times it (tested by simulation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelrunner.experiments.online import (
    SERVING_METRICS,
    Z95,
    Sample,
    VariantStats,
    percentile_interval,
    resample_indices,
    wilson,
)
from modelrunner.experiments.rules import Rule, needs_labels, parse_rules

MIN_SAMPLES = 30  # fewer compared rows never decide, whatever the interval says
LOOK_GROWTH = 1.5
Z_DECIDE = 2.5758293035489  # 99 % two-sided at each look: ~5 % over the looks of a long experiment
DRAWS = 2000  # bootstrap resamples for a decision (the 0.5 % tails need more than the 95 % of a status)
WILSON = "Wilson score interval (99%)"
NEWCOMBE = "Newcombe hybrid score interval of the difference (99%)"
BOOTSTRAP = "percentile bootstrap interval (99%)"
NORMAL = "normal approximation of the difference (99%)"


@dataclass(frozen=True)
class RuleVerdict:
    """One rule judged: ``outcome`` pass | fail | wait, the numbers behind it and the test used."""

    rule: str
    metric: str
    outcome: str
    value: float | None
    baseline: float | None
    threshold: float | None
    low: float | None  # interval of the candidate's value (absolute rule) or of value - threshold
    high: float | None
    n: int
    test: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("value", "baseline", "threshold", "low", "high"):
            v = data[key]
            data[key] = None if v is None or not math.isfinite(v) else round(float(v), 6)
        return data


@dataclass
class Verdict:
    """All rules judged: ``outcome`` pass | fail | wait (``reason`` says why)."""

    outcome: str
    reason: str
    rules: list[RuleVerdict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "rules": [r.to_dict() for r in self.rules]}


def newcombe(s1: int, n1: int, s0: int, n0: int, z: float = Z95) -> tuple[float, float]:
    """Interval of ``s1/n1 - s0/n0`` (Newcombe's hybrid score method from two Wilson intervals at ``z``)."""
    a, b = wilson(s1, n1, z), wilson(s0, n0, z)
    assert a.value is not None and b.value is not None and a.low is not None and b.low is not None
    assert a.high is not None and b.high is not None
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return low, high


def _bootstrap_difference(cand: Sample, base: Sample | None, rule: Rule) -> tuple[float, float]:
    """Interval of ``cand - (scale * base + offset)`` by resampling each variant independently."""
    if cand.stat is None:  # a proportion against a scaled baseline: normal approximation
        assert base is not None and cand.successes is not None and base.successes is not None
        p1, p0 = cand.successes / cand.n, base.successes / base.n
        d = p1 - rule.scale * p0 - rule.offset
        se = math.sqrt(p1 * (1 - p1) / cand.n + rule.scale**2 * p0 * (1 - p0) / base.n)
        return d - Z_DECIDE * se, d + Z_DECIDE * se
    a = cand.stat(resample_indices(cand.n, DRAWS, salt=1))
    if base is None or base.stat is None:
        return percentile_interval(a - rule.offset, Z_DECIDE)
    b = base.stat(resample_indices(base.n, DRAWS, salt=2))
    k = min(len(a), len(b))
    return percentile_interval(a[:k] - (rule.scale * b[:k] + rule.offset), Z_DECIDE)


def _outcome(rule: Rule, low: float, high: float, limit: float) -> str:
    """pass | fail | wait from an interval of the compared value (``limit``: the threshold on that scale)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "wait"
    good = (
        (low >= limit if rule.op == ">=" else low > limit)
        if rule.wants_higher
        else (high <= limit if rule.op == "<=" else high < limit)
    )
    bad = high < limit if rule.wants_higher else low > limit
    return "pass" if good else "fail" if bad else "wait"


def judge_rule(rule: Rule, cand: VariantStats, base: VariantStats | None) -> RuleVerdict:
    """Judge one rule with the test that fits its metric and form (see the module docstring)."""
    cs = cand.samples.get(rule.metric)
    bs = base.samples.get(rule.metric) if base is not None else None
    value = cs.value if cs is not None and cs.n else None
    baseline = bs.value if bs is not None and bs.n else None
    threshold = rule.threshold(baseline)
    n = cs.n if cs is not None else 0

    def verdict(outcome: str, test: str, low: float | None, high: float | None, reason: str) -> RuleVerdict:
        return RuleVerdict(
            str(rule), rule.metric, outcome, value, baseline, threshold, low, high, n, test, reason
        )

    if cs is None or n < MIN_SAMPLES:
        return verdict(
            "wait",
            "-",
            None,
            None,
            f"{n} rows measured {rule.metric} for the candidate (at least {MIN_SAMPLES} needed)",
        )
    if rule.relative and (bs is None or bs.n < MIN_SAMPLES):
        have = bs.n if bs is not None else 0
        return verdict(
            "wait",
            "-",
            None,
            None,
            f"{have} production rows measured {rule.metric} (at least {MIN_SAMPLES} needed for the baseline)",
        )
    low, high, test, limit = _interval(rule, cs, bs)
    outcome = _outcome(rule, low, high, limit)
    scale = "difference" if test == NEWCOMBE else "value" if not rule.relative else "value - threshold"
    reason = (
        f"{rule.metric} {_f(value)} (baseline {_f(baseline)}, threshold {_f(threshold)}); "
        f"99% interval of the {scale} [{_f(low)}, {_f(high)}] vs {_f(limit)}: {outcome}"
    )
    return verdict(outcome, test, low, high, reason)


def _interval(rule: Rule, cs: Sample, bs: Sample | None) -> tuple[float, float, str, float]:
    """The rule's 99% interval (low, high), the test that made it, and the limit it is compared with:
    Wilson for an absolute rule on a proportion, Newcombe for a proportion against the baseline's, else a
    bootstrap (or normal) interval of the difference (of the value, back on its own scale, when absolute)."""
    if not rule.relative and cs.successes is not None:
        est = wilson(cs.successes, cs.n, Z_DECIDE)
        return est.low or 0.0, est.high or 0.0, WILSON, rule.offset
    if (
        rule.relative
        and rule.scale == 1.0
        and cs.successes is not None
        and bs is not None
        and bs.successes is not None
    ):
        low, high = newcombe(cs.successes, cs.n, bs.successes, bs.n, Z_DECIDE)
        return low, high, NEWCOMBE, rule.offset
    low, high = _bootstrap_difference(cs, bs if rule.relative else None, rule)
    test = NORMAL if cs.stat is None else BOOTSTRAP
    if not rule.relative:  # the interval is of value - offset: back on the value's scale
        return low + rule.offset, high + rule.offset, test, rule.offset
    return low, high, test, 0.0


def _f(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4g}"


def judge(rules: Sequence[Rule], cand: VariantStats | None, base: VariantStats | None) -> Verdict:
    """Every rule judged; fail on the first failing rule, pass when all pass, else wait."""
    if cand is None:
        return Verdict("wait", "the candidate has answered no request yet")
    results = [judge_rule(r, cand, base) for r in rules]
    failed = [v for v in results if v.outcome == "fail"]
    if failed:
        return Verdict("fail", "; ".join(f"{v.rule}: {v.reason}" for v in failed), results)
    if results and all(v.outcome == "pass" for v in results):
        return Verdict("pass", "every rule passes: " + "; ".join(v.rule for v in results), results)
    waiting = [v for v in results if v.outcome == "wait"]
    return Verdict("wait", "; ".join(f"{v.rule}: {v.reason}" for v in waiting) or "no rules", results)


def counts_needed(experiment: Any, rules: Sequence[Rule]) -> tuple[int, int]:
    """``(labels, requests)`` of the candidate before the first look."""
    labels = max(int(experiment.min_labels or 0), MIN_SAMPLES) if needs_labels(rules) else 0
    serving = any(r.metric in SERVING_METRICS for r in rules)
    requests = max(int(experiment.min_requests or 0), MIN_SAMPLES if serving else 0)
    return labels, requests


def look_number(count: int, first: int) -> int:
    """Which checkpoint ``count`` has reached: -1 before ``first``, then 0, 1, ... at first * 1.5**k."""
    if first <= 0:
        first = 1
    if count < first:
        return -1
    return int(math.floor(math.log(count / first) / math.log(LOOK_GROWTH) + 1e-9))


def current_look(experiment: Any, rules: Sequence[Rule], cand: VariantStats | None) -> int:
    """The checkpoint reached by the candidate (-1: minimums not met yet)."""
    if cand is None:
        return -1
    labels, requests = counts_needed(experiment, rules)
    looks = []
    if labels:
        looks.append(look_number(cand.labelled, labels))
    if requests:
        looks.append(look_number(cand.requests, requests))
    return min(looks) if looks else look_number(cand.requests, MIN_SAMPLES)


def rules_of(experiment: Any) -> list[Rule]:
    return parse_rules(list(experiment.rules or []))


__all__ = [
    "RuleVerdict",
    "Verdict",
    "counts_needed",
    "current_look",
    "judge",
    "judge_rule",
    "look_number",
    "newcombe",
    "rules_of",
]
