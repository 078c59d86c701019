"""Resolve a spec's steps (registry refs, built-in transforms, bundle folders) and load them.

:func:`resolve_steps` turns every step into a :class:`StepTarget` (the exact version a model ref resolved to,
its contract); :func:`check_spec` builds the checked graph from those contracts; :func:`load_pipeline`
loads every step and returns a :class:`PipelinePredictor`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrunner.bundle.predictor import Predictor
from modelrunner.contract import Contract
from modelrunner.errors import ModelrunnerError, PipelineError, Unavailable
from modelrunner.pipelines.executor import PipelinePredictor
from modelrunner.pipelines.graph import Graph, build_graph
from modelrunner.pipelines.spec import PipelineSpec, StepSpec
from modelrunner.pipelines.transforms import get_transform, transform_info

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import ModelVersion


@dataclass(frozen=True)
class StepTarget:
    """What one step resolved to: ``ref`` is ``digits@3``, a transform name, or ``bundle:<path>``."""

    step: str
    kind: str
    ref: str
    contract: Contract
    sha256: str = ""
    mv: ModelVersion | None = None
    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


def resolve_steps(
    spec: PipelineSpec, *, registry: Registry | None = None, base_dir: Path | None = None
) -> dict[str, StepTarget]:
    """Resolve every step; PipelineError naming each step that cannot be resolved."""
    targets: dict[str, StepTarget] = {}
    problems: list[tuple[str, str]] = []
    for name, step in spec.steps.items():
        try:
            targets[name] = _resolve(name, step, registry, base_dir)
        except ModelrunnerError as exc:
            if isinstance(exc, Unavailable):
                raise
            problems.append((f"step {name!r} ({step.kind} {step.target}): {exc}", name))
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise PipelineError(
            f"pipeline {spec.name!r}: {problems[0][0]}{more}",
            step=problems[0][1],
            problems=[p[0] for p in problems],
        )
    return targets


def _resolve(name: str, step: StepSpec, registry: Registry | None, base_dir: Path | None) -> StepTarget:
    if step.transform:
        info = transform_info(step.transform)
        opts = info.check_options(step.options)
        return StepTarget(name, "transform", info.name, info.contract, options=opts)
    if step.options:
        raise PipelineError("options: only transforms take options")
    if step.model:
        if registry is None:
            raise PipelineError("a model step needs a registry to resolve it")
        mv = registry.resolve(step.model)
        return StepTarget(name, "model", mv.ref, mv.contract, sha256=mv.sha256, mv=mv)
    from modelrunner.bundle.bundle import open_bundle

    path = Path(str(step.bundle))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    bundle = open_bundle(path)
    return StepTarget(name, "bundle", f"bundle:{step.bundle}", bundle.manifest.contract, path=bundle.path)


def check_spec(
    spec: PipelineSpec, *, registry: Registry | None = None, base_dir: Path | None = None
) -> tuple[Graph, dict[str, StepTarget]]:
    """Resolve the steps and check every edge: (graph, targets), or PipelineError naming step and field."""
    targets = resolve_steps(spec, registry=registry, base_dir=base_dir)
    graph = build_graph(spec, {name: t.contract for name, t in targets.items()})
    return graph, targets


def load_step(target: StepTarget, registry: Registry | None = None) -> Predictor:
    """Load one resolved step."""
    if target.kind == "transform":
        return get_transform(target.ref, target.options)
    from modelrunner.bundle.bundle import open_bundle

    if target.kind == "model":
        if registry is None or target.mv is None:
            raise PipelineError(f"step {target.step!r}: a model step needs a registry to load it")
        return open_bundle(registry.fetch(target.mv)).load()
    assert target.path is not None
    return open_bundle(target.path).load()


def load_pipeline(
    graph: Graph, targets: Mapping[str, StepTarget], *, registry: Registry | None = None, ref: str = ""
) -> PipelinePredictor:
    """Load every step of a checked graph; on failure close what was loaded and re-raise."""
    loaded: dict[str, Predictor] = {}
    try:
        for name in graph.order:
            loaded[name] = load_step(targets[name], registry)
    except BaseException:
        for predictor in loaded.values():
            with contextlib.suppress(Exception):
                predictor.close()
        raise
    return PipelinePredictor(graph, loaded, {n: t.ref for n, t in targets.items()}, ref=ref)
