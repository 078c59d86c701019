"""Run candidates against a data set and requirements: metrics, speed, gates, verdicts, the best one.

``evaluate(registry, ["digits@2", "digits@3"], "test.npz", ["accuracy>=0.95", "p99_ms<=10"])`` returns an
:class:`EvaluationRun`; with ``store=True`` each candidate's result is kept in the registry (``evaluations``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from modelrunner.errors import InvalidArgument, ModelrunnerError, RequirementError
from modelrunner.evaluation import metrics as m
from modelrunner.evaluation.candidates import Candidate, resolve_candidates
from modelrunner.evaluation.datasets import Dataset, DataSource, load_dataset
from modelrunner.evaluation.gates import GateResult, check_gates, rank_key, verdict
from modelrunner.evaluation.requirements import Requirement, parse_requirements
from modelrunner.evaluation.speed import (
    LoadSpec,
    http_load,
    inprocess_metrics,
    predict_all,
    request_bodies,
    served_metrics,
    single_row_latency,
)

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)

SERVED_METRICS = ("p50_ms", "p99_ms", "qps", "error_rate")
SPEED_METRICS = SERVED_METRICS + ("inproc_p50_ms", "inproc_p99_ms", "inproc_rows_per_s")


class ProgressSink(Protocol):
    def stage(self, label: str, total: int) -> Callable[[int], None]:
        """Start a stage of ``total`` steps; return the function that advances it."""
        ...


class _Quiet:
    def stage(self, label: str, total: int) -> Callable[[int], None]:
        return lambda n: None


ServeFn = Callable[[Sequence[Candidate]], contextlib.AbstractContextManager[dict[str, str]]]
"""Serve candidates behind real HTTP endpoints; the context yields ``{candidate.ref: predict URL}``."""


@dataclass(frozen=True)
class Options:
    task: m.Task | None = None
    custom: tuple[m.CustomMetric, ...] = ()
    target: str = "target"
    batch_size: int = 256
    single_calls: int = 200
    served: bool = True
    load: LoadSpec = field(default_factory=LoadSpec)
    include_saved_gates: bool = True


@dataclass
class CandidateResult:
    candidate: Candidate
    metrics: dict[str, float]
    gates: list[GateResult]
    confusion: tuple[list[Any], list[list[int]]] | None = None
    latencies: dict[str, list[float]] = field(default_factory=dict)
    evaluation_id: int | None = None

    @property
    def ref(self) -> str:
        return self.candidate.ref

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def verdict(self) -> str:
        return verdict(self.gates)

    def gates_passed(self) -> str:
        return f"{sum(g.passed for g in self.gates)}/{len(self.gates)}"


@dataclass
class EvaluationRun:
    model: str
    dataset: Dataset
    task: m.Task
    requirements: list[Requirement]
    results: list[CandidateResult]
    served: bool = False

    @property
    def primary(self) -> str:
        return m.PRIMARY_METRIC[self.task]

    def ranked(self) -> list[CandidateResult]:
        """Passing candidates first, each group by primary metric then latency."""
        return sorted(self.results, key=lambda r: (not r.passed, *rank_key(r.metrics, self.primary)))

    @property
    def best(self) -> CandidateResult | None:
        passing = [r for r in self.ranked() if r.passed]
        return passing[0] if passing else None


def decide_task(candidates: Sequence[Candidate], task: m.Task | None) -> m.Task:
    if task is not None:
        return task
    found = {c.ref: m.infer_task(c.contract) for c in candidates}
    kinds = set(found.values())
    if len(kinds) > 1:
        listed = ", ".join(f"{ref} -> {t.value}" for ref, t in found.items())
        raise InvalidArgument(f"candidates imply different tasks ({listed}); pass --task")
    return kinds.pop()


def check_applicable(reqs: Sequence[Requirement], task: m.Task, options: Options) -> None:
    """Refuse requirements on metrics this evaluation cannot produce (before any work is done)."""
    custom = [c.name for c in options.custom]
    allowed = set(m.TASK_METRICS[task]) | set(SPEED_METRICS) | set(custom)
    for req in reqs:
        if req.metric not in allowed:
            which = ", ".join(m.TASK_METRICS[task])
            raise RequirementError(
                f"metric {req.metric!r} does not apply to a {task.value} task "
                f"(its metrics: {which}; speed: {', '.join(SPEED_METRICS)})"
            )
        if req.metric in SERVED_METRICS and not options.served:
            other = {"qps": "inproc_rows_per_s"}.get(req.metric, f"inproc_{req.metric}")
            raise RequirementError(
                f"{req} needs the served measurement: drop --no-served, or require {other} instead"
            )


@contextlib.contextmanager
def _model_code(cand: Candidate, what: str) -> Iterator[None]:
    """Errors raised by model code become one line naming the candidate."""
    try:
        yield
    except ModelrunnerError:
        raise
    except Exception as exc:  # noqa: BLE001 - model code can raise anything
        raise InvalidArgument(f"{cand.ref}: {what} failed: {exc.__class__.__name__}: {exc}") from exc


def _quality(
    cand: Candidate, task: m.Task, ds: Dataset, options: Options, sink: ProgressSink, predictor: Any
) -> tuple[dict[str, float], Any, float]:
    cols = ds.inputs_for(cand.contract)
    advance = sink.stage(f"{cand.ref}: predict {ds.rows} rows", ds.rows)
    with _model_code(cand, "predict"):
        outputs, rows_per_s = predict_all(predictor, cols, batch_size=options.batch_size, progress=advance)
    classes = np.asarray(cand.classes) if cand.classes is not None else None
    values = m.compute_metrics(task, ds.target, outputs, cand.contract, options.custom, classes=classes)
    confusion = None
    if task is m.Task.CLASSIFICATION:
        confusion = m.confusion_matrix(ds.target, outputs[m.prediction_field(cand.contract, task)])
    return values, confusion, rows_per_s


def _evaluate_one(
    cand: Candidate, task: m.Task, ds: Dataset, options: Options, sink: ProgressSink
) -> CandidateResult:
    with _model_code(cand, "load"):
        predictor = cand.load()
    try:
        values, confusion, rows_per_s = _quality(cand, task, ds, options, sink, predictor)
        cols = ds.inputs_for(cand.contract)
        advance = sink.stage(f"{cand.ref}: in-process latency", options.single_calls)
        with _model_code(cand, "predict"):
            stats = single_row_latency(predictor, cols, calls=options.single_calls, progress=advance)
    finally:
        predictor.close()
    values.update(inprocess_metrics(stats, rows_per_s))
    return CandidateResult(
        candidate=cand, metrics=values, gates=[], confusion=confusion, latencies={"inproc": stats.samples_ms}
    )


def _measure_served(
    results: Sequence[CandidateResult], ds: Dataset, options: Options, serve: ServeFn, sink: ProgressSink
) -> None:
    started = sink.stage("starting a server on 127.0.0.1", 1)
    with serve([r.candidate for r in results]) as urls:
        started(1)
        for r in results:
            bodies = request_bodies(ds.inputs_for(r.candidate.contract), options.load.requests)
            advance = sink.stage(
                f"{r.ref}: served, {options.load.concurrency} concurrent", options.load.requests
            )
            stats = http_load(urls[r.ref], bodies, options.load, progress=advance)
            r.metrics.update(served_metrics(stats))
            r.latencies["served"] = stats.samples_ms


def _default_serve() -> ServeFn:
    from modelrunner.evaluation.served import serve_candidates

    return serve_candidates


def evaluate(
    registry: Registry | None,
    refs: Sequence[str],
    data: DataSource | Dataset,
    requirements: Sequence[str] = (),
    *,
    options: Options | None = None,
    store: bool = True,
    actor: str | None = None,
    progress: ProgressSink | None = None,
    serve: ServeFn | None = None,
) -> EvaluationRun:
    """Evaluate every candidate on ``data``; check ``requirements`` (plus the model's saved gates)."""
    options = options or Options()
    sink = progress or _Quiet()
    custom = [c.name for c in options.custom]
    asked = parse_requirements(requirements, custom)
    candidates = resolve_candidates(registry, list(refs))
    task = decide_task(candidates, options.task)
    check_applicable(asked, task, options)
    reqs = asked + [r for r in _saved_gates(registry, candidates[0], options, custom) if r not in asked]
    ds = data if isinstance(data, Dataset) else load_dataset(data, target=options.target)
    for cand in candidates:
        ds.inputs_for(cand.contract)  # every candidate must fit before any work is done
    results = [_evaluate_one(c, task, ds, options, sink) for c in candidates]
    if options.served:
        _measure_served(results, ds, options, serve or _default_serve(), sink)
    for r in results:
        r.gates = check_gates(reqs, r.metrics)
    run = EvaluationRun(
        model=candidates[0].name,
        dataset=ds,
        task=task,
        requirements=reqs,
        results=results,
        served=options.served,
    )
    if store and registry is not None:
        store_results(registry, run, actor=actor)
    return run


def _saved_gates(
    registry: Registry | None, cand: Candidate, options: Options, custom: list[str]
) -> list[Requirement]:
    if registry is None or not options.include_saved_gates or cand.version is None:
        return []
    try:
        return parse_requirements(registry.gates(cand.name), custom)
    except RequirementError as exc:
        raise RequirementError(f"saved gates of {cand.name!r}: {exc}") from exc


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in values.items()}


def store_results(registry: Registry, run: EvaluationRun, *, actor: str | None = None) -> None:
    """Keep each registry candidate's result (metrics, gate results, data set sha256) in the registry."""
    for r in run.results:
        if r.candidate.version is None:
            continue
        ev = registry.record_evaluation(
            r.candidate.name,
            r.candidate.version,
            metrics=_finite(r.metrics),
            gates=[g.to_dict() for g in r.gates],
            passed=r.passed,
            dataset_sha256=run.dataset.sha256,
            dataset_name=run.dataset.name,
            actor=actor,
        )
        r.evaluation_id = ev.id
