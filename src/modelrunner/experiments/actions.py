"""Acting on a decision: promote the candidate (through the saved gates) or abort; every decision audited.

Promotion records the online result of both variants as evaluations (``dataset_name`` ``online:<experiment
id>``; the candidate's carries the model's saved gates checked against its online metrics), then moves what
the endpoint follows: the alias of an alias target (``digits@production`` -> ``set_alias``, gated like any
move to production), else the endpoint itself (``set_endpoint``, a normal swap with its contract check). The
experiment ends ``promoted``; a refusal by the gates ends it ``aborted`` with the gates' reasons.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from modelrunner.errors import FailedPrecondition, ModelrunnerError, NotFound
from modelrunner.evaluation.gates import check_gates
from modelrunner.evaluation.requirements import parse_requirements
from modelrunner.experiments.decide import Verdict, current_look, judge, rules_of
from modelrunner.experiments.online import VariantStats, metric_names
from modelrunner.experiments.stats import ExperimentStats, load_stats
from modelrunner.registry.refs import parse_ref, parse_target

log = logging.getLogger(__name__)

DECIDER = "decider"
PROMOTE = "promote"


def then_action(experiment: Any) -> str | None:
    return getattr(experiment, "then", None) or getattr(experiment, "then_action", None)


def decision_doc(
    stats: ExperimentStats,
    verdict: Verdict | None,
    action: str,
    *,
    look: int | None = None,
    reason: str = "",
    manual: bool = False,
) -> dict[str, Any]:
    """What ``end_experiment`` keeps: the action, each rule's numbers, each variant's stats."""
    names = metric_names(stats.task)
    return {
        "action": action,
        "manual": manual,
        "look": look,
        "task": stats.task.value,
        "reason": reason or (verdict.reason if verdict else ""),
        "verdict": verdict.to_dict() if verdict else None,
        "variants": {v: s.to_dict(names) for v, s in stats.variants.items()},
    }


def _finite_metrics(stats: VariantStats, names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for name in names:
        value = stats.value(name)
        if value is not None and math.isfinite(value):
            out[name] = float(value)
    return out


def record_online(registry: Any, stats: ExperimentStats, actor: str | None) -> dict[str, int]:
    """Store each variant's online metrics as an evaluation; the candidate's carries its saved gates."""
    exp = stats.experiment
    sha = hashlib.sha256(f"online:{exp.id}".encode()).hexdigest()
    ids: dict[str, int] = {}
    cand = stats.candidate
    for variant, vs in stats.variants.items():
        if vs.model is None or vs.version is None:
            continue
        stored = [  # a decision retried after an error: this variant's evaluation is in already
            e
            for e in registry.evaluations(vs.model, vs.version)
            if e.dataset_name == f"online:{exp.id}" and (e.passed is not None) == (vs is cand)
        ]
        if stored:
            ids[variant] = int(stored[0].id)
            continue
        metrics = _finite_metrics(vs, metric_names(stats.task))
        gates = None
        passed = None
        if vs is cand:
            results = check_gates(parse_requirements(registry.gates(vs.model)), metrics)
            gates = [g.to_dict() for g in results]
            passed = all(g.passed for g in results)
        ev = registry.record_evaluation(
            vs.model,
            vs.version,
            metrics=metrics,
            gates=gates,
            passed=passed,
            dataset_sha256=sha,
            dataset_name=f"online:{exp.id}",
            actor=actor,
        )
        ids[variant] = int(ev.id)
    return ids


def move_to_candidate(registry: Any, experiment: Any, actor: str | None) -> str:
    """Point what the endpoint follows at the candidate; return what moved (one line)."""
    state = registry.endpoint(experiment.endpoint)
    kind, text = parse_target(state.target)
    cand = registry.resolve(experiment.candidate_ref)
    ref = parse_ref(text)
    if ref.alias is not None and not ref.is_latest and ref.name == cand.name:
        registry.set_alias(cand.name, ref.alias, cand.version, actor=actor)
        return f"{cand.name}@{ref.alias} -> {cand.version}"
    target = f"{kind}:{cand.ref}" if kind else cand.ref
    registry.set_endpoint(experiment.endpoint, target, config=state.config, actor=actor, create=False)
    return f"endpoint {experiment.endpoint} -> {target}"


def _end(registry: Any, experiment: Any, state: str, decision: dict[str, Any], actor: str | None) -> bool:
    """End the experiment if it still runs; False when another decider (or a user) ended it first."""
    try:
        ended = registry.end_experiment(experiment.id, state, decision=decision, actor=actor)
    except (FailedPrecondition, NotFound):
        return False
    return ended is not None and ended is not False


def abort(
    registry: Any,
    stats: ExperimentStats,
    verdict: Verdict | None,
    *,
    actor: str | None = DECIDER,
    look: int | None = None,
    reason: str = "",
    manual: bool = False,
) -> bool:
    """End the experiment ``aborted``: the candidate is dropped, production keeps serving."""
    doc = decision_doc(stats, verdict, "abort", look=look, reason=reason, manual=manual)
    return _end(registry, stats.experiment, "aborted", doc, actor)


def promote(
    registry: Any,
    stats: ExperimentStats,
    verdict: Verdict | None,
    *,
    actor: str | None = DECIDER,
    look: int | None = None,
    manual: bool = False,
) -> str:
    """Record the online evaluations, move the endpoint to the candidate, end ``promoted``.

    Automatic (``manual=False``): the saved gates are checked first and a refusal aborts the experiment; the
    experiment is ended before the move so that one decider acts. Manual: the move goes first (a gate refusal
    raises FailedPrecondition and the experiment keeps running)."""
    exp = stats.experiment
    cand = registry.resolve(exp.candidate_ref)
    ids = record_online(registry, stats, actor)
    doc = decision_doc(stats, verdict, "promote", look=look, manual=manual)
    doc["evaluations"] = ids
    if manual:
        moved = move_to_candidate(registry, exp, actor)
        doc["moved"] = moved
        _end(registry, exp, "promoted", doc, actor)
        return moved
    failures = registry.gate_failures(cand.name, cand.version)
    if failures:
        why = f"the saved gates refuse {cand.ref}: {'; '.join(failures)}"
        abort(registry, stats, verdict, actor=actor, look=look, reason=why)
        return f"aborted: {why}"
    if not _end(registry, exp, "promoted", doc, actor):
        return ""
    try:
        moved = move_to_candidate(registry, exp, actor)
    except ModelrunnerError as exc:  # a race with a gate or alias change: audited, production keeps serving
        log.error("experiment %s passed but the move failed: %s", exp.id, exc)
        registry.record(
            "experiment.promote_failed",
            exp.endpoint,
            before=None,
            after={"experiment": exp.id, "error": str(exc)},
            actor=actor,
        )
        return f"move failed: {exc}"
    registry.record(
        "experiment.promote",
        exp.endpoint,
        before=None,
        after={"experiment": exp.id, "moved": moved, "evaluations": ids},
        actor=actor,
    )
    return moved


def stop_passed(
    registry: Any,
    stats: ExperimentStats,
    verdict: Verdict,
    *,
    actor: str | None = DECIDER,
    look: int | None = None,
) -> bool:
    """Every rule passed but the experiment has no ``--then promote``: record and end it ``stopped``."""
    doc = decision_doc(
        stats,
        verdict,
        "stop",
        look=look,
        reason=f"passed ({verdict.reason}); no --then promote: production keeps serving",
    )
    doc["evaluations"] = record_online(registry, stats, actor)
    return _end(registry, stats.experiment, "stopped", doc, actor)


def decide_once(
    registry: Any,
    experiment: Any,
    looks: dict[str, int],
    *,
    actor: str | None = DECIDER,
    stats: ExperimentStats | None = None,
) -> str | None:
    """Look at a running experiment once: act when a new checkpoint gives a pass or a fail.

    ``looks`` remembers the last checkpoint judged per experiment id (one dict per decider). A checkpoint
    counts as judged once its outcome was acted on: when acting raises (the database busy, say) the next
    call judges it again, or an experiment whose traffic has stopped would never reach another checkpoint
    and keep running. Returns what was done (``promote ...``, ``abort``, ``stop``) or None when nothing was
    decided."""
    rules = rules_of(experiment)
    if not rules:
        return None
    stats = stats or load_stats(registry, experiment)
    look = current_look(experiment, rules, stats.candidate)
    if look < 0 or looks.get(experiment.id, -1) >= look:
        return None
    verdict = judge(rules, stats.candidate, stats.production)
    done = _act(registry, stats, verdict, actor=actor, look=look)
    looks[experiment.id] = look
    return done


def _act(
    registry: Any, stats: ExperimentStats, verdict: Verdict, *, actor: str | None, look: int
) -> str | None:
    """What a judged checkpoint leads to: abort on a fail; on a pass promote or stop; nothing on a wait."""
    if verdict.outcome == "fail":
        return "abort" if abort(registry, stats, verdict, actor=actor, look=look) else None
    if verdict.outcome != "pass":
        return None
    if then_action(stats.experiment) == PROMOTE:
        return f"promote {promote(registry, stats, verdict, actor=actor, look=look)}"
    return "stop" if stop_passed(registry, stats, verdict, actor=actor, look=look) else None
