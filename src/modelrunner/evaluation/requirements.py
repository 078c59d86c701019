"""Requirements ("gates"): ``metric op number`` strings such as ``accuracy>=0.95``, ``p99_ms<=10``.

Grammar::

    requirement := metric op number
    metric      := a known metric name (see METRICS) or the name of a custom metric
    op          := ">=" | "<=" | ">" | "<" | "=="
    number      := a decimal number, e.g. 0.95, 10, 1e3

Speed metrics come in two kinds: ``p50_ms``, ``p99_ms``, ``qps`` are measured through a served HTTP endpoint
(what clients see); ``inproc_p50_ms``, ``inproc_p99_ms``, ``inproc_rows_per_s`` call the predictor in-process.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from modelrunner.errors import RequirementError

# metric name -> (description, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("classification: share of correct labels", True),
    "macro_f1": ("classification: unweighted mean of per-class F1", True),
    "log_loss": ("classification: cross-entropy of predicted probabilities", False),
    "rmse": ("regression: root mean squared error", False),
    "mae": ("regression: mean absolute error", False),
    "r2": ("regression: coefficient of determination", True),
    "exact_match": ("ocr: share of texts recognised exactly", True),
    "cer": ("ocr: character error rate (edit distance / reference length)", False),
    "p50_ms": ("served: median request latency over HTTP, ms", False),
    "p99_ms": ("served: 99th percentile request latency over HTTP, ms", False),
    "qps": ("served: requests per second at the fixed concurrency", True),
    "error_rate": ("served: share of failed requests", False),
    "inproc_p50_ms": ("in-process: median single-row predict latency, ms", False),
    "inproc_p99_ms": ("in-process: 99th percentile single-row predict latency, ms", False),
    "inproc_rows_per_s": ("in-process: rows per second predicting in batches", True),
}

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}

GRAMMAR = 'metric (>=|<=|>|<|==) number, e.g. "accuracy>=0.95", "p99_ms<=10", "qps>=800"'

_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Requirement:
    """One threshold on one metric."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{_fmt(self.threshold)}"

    def check(self, value: float | None) -> bool:
        """True if ``value`` meets the requirement; a missing or NaN value never does."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](float(value), self.threshold)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def known_metrics(extra: Iterable[str] = ()) -> list[str]:
    """Every metric name a requirement may use: the built-in ones plus ``extra`` (custom metrics)."""
    return sorted(set(METRICS) | set(extra))


def higher_is_better(metric: str) -> bool:
    """Direction of a metric; custom metrics count as higher-is-better."""
    return METRICS.get(metric, ("", True))[1]


def parse_requirement(text: str, extra_metrics: Iterable[str] = ()) -> Requirement:
    """Parse one requirement string; raise :class:`RequirementError` showing the grammar or known metrics."""
    extra = list(extra_metrics)
    m = _RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise RequirementError(
            f"cannot parse requirement {text!r}: expected {GRAMMAR}; "
            f"metrics: {', '.join(known_metrics(extra))}"
        )
    metric = m.group("metric")
    if metric not in METRICS and metric not in extra:
        raise RequirementError(
            f"unknown metric {metric!r} in requirement {text!r}; "
            f"known metrics: {', '.join(known_metrics(extra))}"
        )
    threshold = float(m.group("number"))
    if not math.isfinite(threshold):
        raise RequirementError(f"requirement {text!r}: the threshold must be a finite number")
    return Requirement(metric=metric, op=m.group("op"), threshold=threshold)


def parse_requirements(texts: Iterable[str], extra_metrics: Iterable[str] = ()) -> list[Requirement]:
    """Parse several requirements (duplicates kept once, order kept)."""
    extra = list(extra_metrics)
    out: list[Requirement] = []
    for text in texts:
        req = parse_requirement(text, extra)
        if req not in out:
            out.append(req)
    return out
