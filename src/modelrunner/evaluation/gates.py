"""Gates: check requirements against measured metrics, give verdicts, pick the best candidate."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modelrunner.evaluation.requirements import Requirement, higher_is_better


@dataclass(frozen=True)
class GateResult:
    """One requirement checked against one candidate's metrics."""

    requirement: str
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["value"] is not None and not math.isfinite(data["value"]):
            data["value"] = None
        return data


def fmt(value: float | None) -> str:
    """A short human form of a metric value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.4g}" if abs(value) >= 0.001 or value == 0 else f"{value:.2e}"


_NEGATION = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!="}


def check_gate(req: Requirement, metrics: Mapping[str, float]) -> GateResult:
    value = metrics.get(req.metric)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    passed = not missing and req.check(value)
    if missing:
        reason = f"{req.metric} was not measured"
    elif passed:
        reason = f"{req.metric} {fmt(value)} {req.op} {fmt(req.threshold)}"
    else:
        reason = f"{req.metric} {fmt(value)} {_NEGATION[req.op]} {fmt(req.threshold)}"
    return GateResult(
        requirement=str(req),
        metric=req.metric,
        op=req.op,
        threshold=req.threshold,
        value=None if missing else float(value or 0.0),
        passed=passed,
        reason=reason,
    )


def check_gates(requirements: Iterable[Requirement], metrics: Mapping[str, float]) -> list[GateResult]:
    return [check_gate(r, metrics) for r in requirements]


def verdict(gates: Sequence[GateResult]) -> str:
    """``pass``, or ``fail: <reasons of the failed gates>``."""
    failed = [g.reason for g in gates if not g.passed]
    return "pass" if not failed else "fail: " + "; ".join(failed)


def latency_key(metrics: Mapping[str, float]) -> float:
    """Tie-breaker: the served p99 when measured, else the in-process p99 (lower is better)."""
    for name in ("p99_ms", "inproc_p99_ms"):
        v = metrics.get(name)
        if v is not None and not math.isnan(v):
            return float(v)
    return math.inf


def score(metrics: Mapping[str, float], primary: str) -> float:
    """The primary metric oriented so that higher is better (NaN/missing -> -inf)."""
    v = metrics.get(primary)
    if v is None or math.isnan(v):
        return -math.inf
    return float(v) if higher_is_better(primary) else -float(v)


def improvement(candidate: Mapping[str, float], baseline: Mapping[str, float], primary: str) -> float:
    """How much better ``candidate`` is than ``baseline`` on ``primary`` (negative: worse)."""
    return score(candidate, primary) - score(baseline, primary)


def rank_key(metrics: Mapping[str, float], primary: str) -> tuple[float, float]:
    """Sort key, best first: primary metric descending (oriented), then latency ascending."""
    return (-score(metrics, primary), latency_key(metrics))
