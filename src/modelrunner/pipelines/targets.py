"""Pipelines as endpoint targets: ``pipeline:digits-ocr@production`` resolved, checked and loaded.

The runner asks :func:`resolve_target` what a target means now. A model target resolves to its
``ModelVersion`` as usual. A pipeline resolves to a :class:`PipelineVersion` whose identity (``sha256``)
covers the pipeline bundle **and the exact version every step resolved to**, so moving a step's alias makes
the endpoint reload, and whose graph is re-checked against the steps' contracts first: a step version that
would break an edge is refused (IncompatibleContract naming the edge) and the old pipeline keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

import numpy as np

from modelrunner.bundle.manifest import Manifest
from modelrunner.bundle.predictor import Predictor
from modelrunner.contract import Contract
from modelrunner.errors import IncompatibleContract, InvalidArgument, ModelrunnerError, PipelineError
from modelrunner.pipelines.graph import Graph, build_graph
from modelrunner.pipelines.package import FLAVOR, bundle_example, read_bundle
from modelrunner.pipelines.steps import StepTarget, check_spec, load_pipeline
from modelrunner.registry.refs import parse_target
from modelrunner.registry.types import ModelVersion

if TYPE_CHECKING:
    from modelrunner.pipelines.spec import PipelineSpec
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)

PREFIX = "pipeline:"


class Target(Protocol):
    """What the runner needs of a resolved endpoint target: a :class:`ModelVersion` or a
    :class:`PipelineVersion` both satisfy it (read-only attributes, so frozen dataclasses match).

    ``sha256`` is the identity the reconciler compares to decide whether to reload; ``contract`` is what
    a swap is checked against; ``flavor`` tells a pipeline (``FLAVOR``) from a model."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def ref(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def flavor(self) -> str: ...

    @property
    def contract(self) -> Contract: ...


@dataclass(frozen=True)
class PipelineVersion:
    """A pipeline version with its steps resolved: duck-types ``ModelVersion`` for the runner."""

    name: str
    version: int
    sha256: str
    contract: Contract
    pipeline: ModelVersion  # the version of the pipeline bundle itself
    directory: Path
    graph: Graph
    steps: dict[str, StepTarget]
    flavor: str = FLAVOR

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def step_refs(self) -> dict[str, str]:
        return {name: t.ref for name, t in self.steps.items()}


ResolvedTarget: TypeAlias = ModelVersion | PipelineVersion
"""What :func:`resolve_target` returns; both kinds satisfy :class:`Target`."""


if TYPE_CHECKING:  # mypy checks here that both resolved kinds satisfy Target

    def _is_target(mv: ModelVersion, pv: PipelineVersion) -> tuple[Target, Target]:
        return mv, pv


def split_target(target: str) -> tuple[bool, str]:
    """(``pipeline:`` given, the registry ref)."""
    text = str(target).strip()
    if text.startswith(PREFIX):
        return True, text[len(PREFIX) :]
    return False, text


def resolve_target(registry: Registry, target: str) -> ResolvedTarget:
    """A model target -> its ModelVersion; a pipeline target -> a checked :class:`PipelineVersion`.

    InvalidArgument for an unknown ``kind:`` prefix or a ``pipeline:`` that names a model."""
    kind, ref = parse_target(target)
    mv = registry.resolve(ref)
    if mv.flavor != FLAVOR:
        if kind is not None:
            raise InvalidArgument(
                f"invalid target {target!r}: {mv.ref} is a {mv.flavor} model, not a pipeline"
            )
        return mv
    return resolve_pipeline(registry, mv)


def resolve_pipeline_ref(registry: Registry, ref: str) -> PipelineVersion:
    """``digits-ocr@production`` (or ``pipeline:digits-ocr@production``) -> its checked
    :class:`PipelineVersion`; InvalidArgument when the ref names a model that is not a pipeline."""
    _, bare = split_target(ref)
    resolved = resolve_target(registry, PREFIX + bare)
    if not isinstance(resolved, PipelineVersion):  # resolve_target refuses this already: for mypy
        raise InvalidArgument(f"{resolved.ref} is a {resolved.flavor} model, not a pipeline")
    return resolved


def resolve_pipeline(registry: Registry, mv: ModelVersion) -> PipelineVersion:
    """Resolve every step of pipeline version ``mv`` now and check the graph against their contracts."""
    directory = Path(registry.fetch(mv))
    spec = read_bundle(directory, Manifest.read(directory))
    try:
        graph, steps = check_spec(spec, registry=registry, base_dir=directory)
    except PipelineError as exc:
        raise IncompatibleContract(
            f"pipeline {mv.ref} cannot run with its steps as they resolve now: {exc.message}", exc.problems
        ) from exc
    h = hashlib.sha256(mv.sha256.encode())
    for name in graph.order:
        h.update(f"\n{name}={steps[name].ref}:{steps[name].sha256}".encode())
    return PipelineVersion(
        name=mv.name,
        version=mv.version,
        sha256=h.hexdigest(),
        contract=graph.contract,
        pipeline=mv,
        directory=directory,
        graph=graph,
        steps=steps,
    )


def load_pipeline_version(
    registry: Registry, mv: PipelineVersion
) -> tuple[Predictor, Mapping[str, np.ndarray] | None]:
    """Load every step of a resolved pipeline: (predictor, example input or None); audits the steps."""
    predictor = load_pipeline(mv.graph, mv.steps, registry=registry, ref=mv.ref)
    try:
        example = bundle_example(mv.directory, Manifest.read(mv.directory))
    except ModelrunnerError as exc:
        log.warning("%s has no usable example input (%s); skipping warm-up", mv.ref, exc)
        example = None
    try:
        registry.record(
            "pipeline.load",
            f"pipeline:{mv.name}",
            None,
            {"version": mv.version, "steps": mv.step_refs()},
            None,
        )
    except ModelrunnerError:
        log.exception("could not audit the steps of %s", mv.ref)
    return predictor, example


def check_step_swap(registry: Registry, model: str, alias: str, version: int) -> list[str]:
    """What moving ``model@alias`` to ``version`` would break in the pipelines endpoints serve now.

    Each problem names the endpoint, the pipeline version and the edge (or the pipeline output whose type
    would change). Empty when the move is safe for every served pipeline.
    """
    from modelrunner.contract.compat import check_compatible

    new = registry.resolve(f"{model}@{version}")
    problems: list[str] = []
    for state in registry.endpoints():
        found = _served_pipeline(registry, state.target)
        if found is None:
            continue
        mv, spec, directory = found
        uses = [n for n, s in spec.steps.items() if s.model and _refers(s.model, model, alias)]
        if not uses:
            continue
        where = f"endpoint {state.name!r} ({mv.ref}, step {', '.join(repr(u) for u in uses)})"
        try:
            old_graph, steps = check_spec(spec, registry=registry, base_dir=directory)
            contracts = {n: (new.contract if n in uses else t.contract) for n, t in steps.items()}
            new_graph = build_graph(spec, contracts)
        except PipelineError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
            continue
        reasons = check_compatible(old_graph.contract, new_graph.contract)
        problems.extend(f"{where}: pipeline contract: {r}" for r in reasons)
    return problems


def refuse_breaking_step_swap(registry: Registry, model: str, alias: str, version: int) -> None:
    """IncompatibleContract, naming the endpoint and the edge, when moving ``model@alias`` to ``version``
    would break a pipeline an endpoint serves (:func:`check_step_swap`); the CLI and the catalog call it
    before ``set_alias``."""
    problems = check_step_swap(registry, model, alias, version)
    if problems:
        raise IncompatibleContract(f"{model}@{alias} -> version {version} refused: {problems[0]}", problems)


def _served_pipeline(registry: Registry, target: str) -> tuple[ModelVersion, PipelineSpec, Path] | None:
    _, ref = split_target(target)
    try:
        mv = registry.resolve(ref)
        if mv.flavor != FLAVOR:
            return None
        directory = Path(registry.fetch(mv))
        return mv, read_bundle(directory, Manifest.read(directory)), directory
    except ModelrunnerError:
        return None


def _refers(ref: str, model: str, alias: str) -> bool:
    from modelrunner.registry.refs import parse_ref

    parsed = parse_ref(ref)
    return parsed.name == model and parsed.alias == alias
