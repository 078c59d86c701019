"""Decision rules (``--decide``): the requirement grammar, with ``baseline`` = the production variant's value.

Grammar::

    rule      := metric op threshold
    op        := ">=" | "<=" | ">" | "<"
    threshold := number | "baseline" | "baseline" ("+" | "-") number | "baseline" "*" number
                 | number "*" "baseline"
    metric    := a metric of the model's task (accuracy, macro_f1, rmse, cer, ...) or a serving metric
                 (error_rate, p50_ms, p99_ms, agreement)

Examples: ``accuracy >= baseline - 0.01``, ``p99_ms <= baseline * 1.2``, ``error_rate <= 0.01``.
``==`` is refused: no finite sample shows two rates equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from modelrunner.errors import InvalidArgument, RequirementError
from modelrunner.evaluation.metrics import TASK_METRICS, Task
from modelrunner.evaluation.requirements import OPERATORS
from modelrunner.experiments.online import SERVING_METRICS, metric_names

GRAMMAR = (
    'metric (>=|<=|>|<) threshold, the threshold a number or "baseline", "baseline - 0.01", '
    '"baseline * 1.2"; e.g. "accuracy >= baseline - 0.01", "error_rate <= 0.01"'
)
HIGHER_IS_BETTER = frozenset({"accuracy", "macro_f1", "r2", "exact_match", "agreement"})

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE = re.compile(r"^\s*(?P<metric>[A-Za-z_]\w*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<rhs>.+?)\s*$")
_FORMS = [
    (re.compile(rf"^(?P<n>{_NUM})$"), "absolute"),
    (re.compile(r"^baseline$"), "same"),
    (re.compile(rf"^baseline\s*(?P<sign>[+-])\s*(?P<n>{_NUM})$"), "offset"),
    (re.compile(rf"^baseline\s*\*\s*(?P<n>{_NUM})$"), "scale"),
    (re.compile(rf"^(?P<n>{_NUM})\s*\*\s*baseline$"), "scale"),
]
ALL_METRICS = frozenset(n for t in Task for n in TASK_METRICS[t]) | frozenset(SERVING_METRICS)


@dataclass(frozen=True)
class Rule:
    """``metric op scale * baseline + offset`` (``scale`` 0: an absolute threshold ``offset``)."""

    metric: str
    op: str
    scale: float = 0.0
    offset: float = 0.0

    @property
    def relative(self) -> bool:
        return self.scale != 0.0

    def threshold(self, baseline: float | None) -> float | None:
        """The number the candidate's value is compared with (None: relative, baseline unknown)."""
        if not self.relative:
            return self.offset
        if baseline is None or not math.isfinite(baseline):
            return None
        return self.scale * baseline + self.offset

    def holds(self, value: float | None, baseline: float | None = None) -> bool:
        limit = self.threshold(baseline)
        if value is None or limit is None or not math.isfinite(value):
            return False
        return OPERATORS[self.op](float(value), limit)

    @property
    def wants_higher(self) -> bool:
        """True for ``>=``/``>`` rules: the candidate passes by being above the threshold."""
        return self.op in (">=", ">")

    def __str__(self) -> str:
        if not self.relative:
            rhs = _fmt(self.offset)
        elif self.scale != 1.0:
            rhs = f"baseline * {_fmt(self.scale)}"
        elif self.offset:
            rhs = f"baseline {'-' if self.offset < 0 else '+'} {_fmt(abs(self.offset))}"
        else:
            rhs = "baseline"
        return f"{self.metric} {self.op} {rhs}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _threshold(rhs: str, text: str) -> tuple[float, float]:
    for pattern, kind in _FORMS:
        found = pattern.match(rhs)
        if found is None:
            continue
        n = float(found.group("n")) if "n" in pattern.groupindex else 0.0
        if not math.isfinite(n):
            break
        if kind == "absolute":
            return 0.0, n
        if kind == "same":
            return 1.0, 0.0
        if kind == "offset":
            return 1.0, -n if found.group("sign") == "-" else n
        if n <= 0:
            raise RequirementError(f"rule {text!r}: the baseline factor must be positive")
        return n, 0.0
    raise RequirementError(f"cannot parse rule {text!r}: expected {GRAMMAR}")


def parse_rule(text: str, task: Task | None = None) -> Rule:
    """Parse one ``--decide`` rule; RequirementError (an InvalidArgument) naming the rule when it is wrong.

    With ``task``, the metric must be one that task measures online."""
    found = _RULE.match(text) if isinstance(text, str) else None
    if found is None:
        raise RequirementError(f"cannot parse rule {text!r}: expected {GRAMMAR}")
    metric, op = found.group("metric"), found.group("op")
    known = metric_names(task) if task is not None else tuple(sorted(ALL_METRICS))
    if metric not in known:
        what = f"a {task.value} model" if task is not None else "an online experiment"
        raise RequirementError(
            f"unknown metric {metric!r} in rule {text!r} for {what}; known: {', '.join(known)}"
        )
    if op == "==":
        raise RequirementError(f"rule {text!r}: use >=, <=, > or <; no sample can show a metric equal")
    scale, offset = _threshold(found.group("rhs").strip(), text)
    return Rule(metric=metric, op=op, scale=scale, offset=offset)


def parse_rules(texts: Iterable[str], task: Task | None = None) -> list[Rule]:
    """Several rules, duplicates kept once, order kept."""
    out: list[Rule] = []
    for text in texts:
        rule = parse_rule(text, task)
        if rule not in out:
            out.append(rule)
    return out


def needs_labels(rules: Iterable[Rule]) -> bool:
    return any(r.metric not in SERVING_METRICS for r in rules)


def check_rules_apply(rules: Iterable[Rule], task: Task) -> None:
    """InvalidArgument when a rule names a metric ``task`` does not measure."""
    allowed = metric_names(task)
    for rule in rules:
        if rule.metric not in allowed:
            raise InvalidArgument(
                f"rule {str(rule)!r}: {rule.metric} is not measured for a {task.value} "
                f"model (its metrics: {', '.join(allowed)})"
            )
