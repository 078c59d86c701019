"""Promotion: move an alias to the best candidate only if it passes every gate and beats the current one.

With ``data``, the candidates (and the version the alias points at now) are evaluated afresh on it; without,
each candidate's stored evaluations are used (the newest data set every candidate was evaluated on). The
alias move is audited (``evaluation.promote``) with the evaluation ids, data set and metrics behind it;
a refusal is audited too (``evaluation.promote_refused``) with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelrunner.errors import InvalidArgument, NotFound
from modelrunner.evaluation import metrics as m
from modelrunner.evaluation.datasets import DataSource
from modelrunner.evaluation.evaluate import EvaluationRun, Options, ProgressSink, ServeFn, evaluate
from modelrunner.evaluation.gates import GateResult, check_gates, fmt, improvement, rank_key, verdict
from modelrunner.evaluation.requirements import Requirement, parse_requirements

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

PRODUCTION = "production"


@dataclass
class Scored:
    """One version's metrics and gate results, fresh or from a stored evaluation."""

    version: int
    metrics: dict[str, float]
    gates: list[GateResult]
    evaluation_id: int | None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class Decision:
    model: str
    alias: str
    promoted: bool
    reason: str
    chosen: Scored | None = None
    previous: int | None = None
    primary: str = ""
    improvement: float | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    candidates: list[Scored] = field(default_factory=list)
    run: EvaluationRun | None = None


def parse_versions(text: str | Sequence[int | str]) -> list[int]:
    """``"2,3,4"`` or ``[2, 3, 4]`` -> ``[2, 3, 4]``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        out = [int(str(v).strip()) for v in items if str(v).strip()]
    except ValueError as exc:
        raise InvalidArgument(f"--best-of {text!r}: expected version numbers like 2,3,4") from exc
    if not out or any(v < 1 for v in out):
        raise InvalidArgument(f"--best-of {text!r}: expected version numbers like 2,3,4")
    return sorted(set(out))


def _current(registry: Registry, name: str, alias: str) -> int | None:
    registry.model(name)  # NotFound for an unknown model, before anything else
    try:
        return int(registry.resolve(f"{name}@{alias}").version)
    except NotFound:
        return None


Fresh = tuple[list[Scored], Scored | None, dict[str, Any], EvaluationRun, m.Task]


def _fresh(
    registry: Registry,
    name: str,
    versions: list[int],
    current: int | None,
    data: DataSource,
    reqs: list[str],
    options: Options,
    actor: str | None,
    progress: ProgressSink | None,
    serve: ServeFn | None,
) -> Fresh:
    refs = [f"{name}@{v}" for v in versions]
    if current is not None and current not in versions:
        refs.append(f"{name}@{current}")
    options = replace(options, include_saved_gates=False)  # the caller decided which gates apply
    run = evaluate(
        registry, refs, data, reqs, options=options, store=True, actor=actor, progress=progress, serve=serve
    )
    scored = {
        r.candidate.version: Scored(int(r.candidate.version or 0), r.metrics, r.gates, r.evaluation_id)
        for r in run.results
    }
    dataset = {"name": run.dataset.name, "sha256": run.dataset.sha256, "rows": run.dataset.rows}
    base = scored.get(current) if current is not None else None
    return [scored[v] for v in versions], base, dataset, run, run.task


def _stored(
    registry: Registry, name: str, versions: list[int], current: int | None, reqs: list[Requirement]
) -> tuple[list[Scored], Scored | None, dict[str, Any]]:
    history = {v: registry.evaluations(name, v) for v in versions}
    missing = [v for v, evs in history.items() if not evs]
    if missing:
        listed = ", ".join(f"{name}@{v}" for v in missing)
        raise InvalidArgument(f"no stored evaluation of {listed}: run `modelrunner evaluate` or pass --data")
    shared = set.intersection(*({e.dataset_sha256 for e in evs} for evs in history.values()))
    newest = max(
        (e for evs in history.values() for e in evs if e.dataset_sha256 in shared),
        key=lambda e: e.id,
        default=None,
    )
    if newest is None:
        raise InvalidArgument("the candidates were never evaluated on the same data set: pass --data")
    sha = newest.dataset_sha256

    def pick(v: int) -> Scored | None:
        ev = next((e for e in registry.evaluations(name, v) if e.dataset_sha256 == sha), None)
        if ev is None:
            return None
        values = {k: float(x) if x is not None else float("nan") for k, x in ev.metrics.items()}
        return Scored(v, values, check_gates(reqs, values), ev.id)

    scored = [s for s in (pick(v) for v in versions) if s is not None]
    base = pick(current) if current is not None else None
    return scored, base, {"name": newest.dataset_name, "sha256": sha}


def _judge(
    decision: Decision,
    scored: list[Scored],
    base: Scored | None,
    min_improvement: float,
    reqs: Sequence[Requirement] = (),
) -> None:
    """Fill ``decision.chosen``/``reason``/``promoted`` (no side effects)."""
    name, alias, primary = decision.model, decision.alias, decision.primary
    passing = sorted((s for s in scored if s.passed), key=lambda s: rank_key(s.metrics, primary))
    if not passing:
        why = "; ".join(f"{name}@{s.version}: {verdict(s.gates)}" for s in scored)
        decision.reason = f"no candidate meets: {'; '.join(str(r) for r in reqs)} ({why})"
        return
    best = decision.chosen = passing[0]
    if decision.previous == best.version:
        decision.reason = f"{name}@{best.version} is the best candidate and already {alias}"
        return
    if decision.previous is not None:
        if base is None:
            decision.reason = (
                f"{alias} ({name}@{decision.previous}) has no evaluation on the same data set "
                "to compare with: pass --data"
            )
            return
        gain = decision.improvement = improvement(best.metrics, base.metrics, primary)
        if gain < min_improvement:
            decision.reason = (
                f"{name}@{best.version} {primary} {fmt(best.metrics.get(primary))} does not beat {alias} "
                f"{name}@{decision.previous} ({fmt(base.metrics.get(primary))}) by {fmt(min_improvement)} "
                f"(improvement {fmt(gain)})"
            )
            return
    decision.promoted = True
    vs = f" over {name}@{decision.previous}" if decision.previous is not None else ""
    decision.reason = (
        f"{name}@{best.version} passes every gate and has the best {primary} "
        f"({fmt(best.metrics.get(primary))}){vs}"
    )


def promote(
    registry: Registry,
    name: str,
    *,
    versions: Sequence[int | str] | str,
    alias: str = PRODUCTION,
    data: DataSource | None = None,
    requirements: Sequence[str] = (),
    min_improvement: float = 0.0,
    task: m.Task | None = None,
    options: Options | None = None,
    actor: str | None = None,
    progress: ProgressSink | None = None,
    serve: ServeFn | None = None,
) -> Decision:
    """Pick the best of ``versions`` and move ``name@alias`` to it when it passes and beats the current."""
    options = options or Options(task=task)
    wanted = parse_versions(versions)
    current = _current(registry, name, alias)
    texts = list(requirements) + (registry.gates(name) if alias == PRODUCTION else [])
    reqs = parse_requirements(texts, [c.name for c in options.custom])
    decision = Decision(model=name, alias=alias, promoted=False, reason="", previous=current)
    if data is not None:
        scored, base, dataset, run, found = _fresh(
            registry, name, wanted, current, data, [str(r) for r in reqs], options, actor, progress, serve
        )
        decision.run = run
    else:
        found = options.task or m.infer_task(registry.resolve(f"{name}@{wanted[0]}").contract)
        scored, base, dataset = _stored(registry, name, wanted, current, reqs)
    decision.primary, decision.dataset, decision.candidates = m.PRIMARY_METRIC[found], dataset, scored
    _judge(decision, scored, base, min_improvement, reqs)
    _apply(registry, decision, reqs, base, actor)
    return decision


def _apply(
    registry: Registry, decision: Decision, reqs: list[Requirement], base: Scored | None, actor: str | None
) -> None:
    subject = f"{decision.model}@{decision.alias}"
    detail: dict[str, Any] = {
        "requirements": [str(r) for r in reqs],
        "dataset": decision.dataset,
        "primary": decision.primary,
        "candidates": {
            s.version: {"evaluation_id": s.evaluation_id, "passed": s.passed} for s in decision.candidates
        },
        "baseline_evaluation_id": base.evaluation_id if base else None,
        "reason": decision.reason,
    }
    if not decision.promoted or decision.chosen is None:
        detail["version"] = decision.previous  # unchanged
        registry.record(
            "evaluation.promote_refused",
            subject,
            before={"version": decision.previous},
            after=detail,
            actor=actor,
        )
        return
    chosen = decision.chosen
    registry.set_alias(decision.model, decision.alias, chosen.version, actor=actor)
    finite = {k: v for k, v in chosen.metrics.items() if v == v}
    detail.update(
        version=chosen.version,
        evaluation_id=chosen.evaluation_id,
        improvement=decision.improvement,
        metrics=finite,
    )
    registry.record(
        "evaluation.promote", subject, before={"version": decision.previous}, after=detail, actor=actor
    )
