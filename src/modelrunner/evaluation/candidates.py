"""Candidates: model or pipeline versions (``digits@3``, ``digits-ocr@2``) or bundle paths, all of one model.

A pipeline version (flavor ``pipeline``) is resolved with its steps as they resolve now and loads every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrunner.bundle.predictor import Predictor
from modelrunner.contract import Contract
from modelrunner.errors import InvalidArgument

if TYPE_CHECKING:
    from modelrunner.pipelines.targets import PipelineVersion
    from modelrunner.registry.registry import Registry

PIPELINE_FLAVOR = "pipeline"
PIPELINE_PREFIX = "pipeline:"


@dataclass(frozen=True)
class Candidate:
    """One thing to evaluate. ``version`` is None for a bundle read from a path (not in the registry)."""

    label: str  # "digits@3" or the path as given
    name: str
    version: int | None
    contract: Contract
    bundle_dir: Path
    flavor_options: dict[str, Any]
    sha256: str = ""
    pipeline: PipelineVersion | None = field(default=None, compare=False, repr=False)
    source: Registry | None = field(default=None, compare=False, repr=False)  # the registry it came from

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}" if self.version is not None else self.label

    def load(self) -> Predictor:
        """The candidate's predictor (a pipeline loads every step)."""
        if self.pipeline is not None:
            from modelrunner.pipelines.steps import load_pipeline

            pv = self.pipeline
            return load_pipeline(pv.graph, pv.steps, registry=self.source, ref=pv.ref)
        from modelrunner.bundle.bundle import open_bundle

        return open_bundle(self.bundle_dir).load()

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in the order of the ``proba`` columns, when the flavor recorded them."""
        classes = self.flavor_options.get("classes")
        return list(classes) if isinstance(classes, list) else None


def _from_path(text: str) -> Candidate:
    from modelrunner.bundle.bundle import open_bundle

    bundle = open_bundle(text)
    m = bundle.manifest
    return Candidate(
        label=text,
        name=m.name,
        version=None,
        contract=m.contract,
        bundle_dir=bundle.path,
        flavor_options=dict(m.flavor_options),
    )


def _from_registry(registry: Registry, text: str) -> Candidate:
    mv = registry.resolve(text.removeprefix(PIPELINE_PREFIX))
    if mv.flavor == PIPELINE_FLAVOR:
        from modelrunner.pipelines.targets import resolve_pipeline

        pv = resolve_pipeline(registry, mv)
        return Candidate(
            label=text,
            name=mv.name,
            version=mv.version,
            contract=pv.contract,
            bundle_dir=Path(pv.directory),
            flavor_options={},
            sha256=mv.sha256,
            pipeline=pv,
            source=registry,
        )
    directory = registry.fetch(mv)
    options = dict((mv.manifest or {}).get("flavor_options") or {})
    return Candidate(
        label=text,
        name=mv.name,
        version=mv.version,
        contract=mv.contract,
        bundle_dir=Path(directory),
        flavor_options=options,
        sha256=mv.sha256,
    )


def resolve_candidates(registry: Registry | None, refs: list[str]) -> list[Candidate]:
    """Resolve refs (registry) or paths (bundles); refuse candidates of different models; drop duplicates."""
    if not refs:
        raise InvalidArgument("no candidates: give model versions such as digits@2 digits@3")
    out: list[Candidate] = []
    for text in refs:
        if Path(text).exists() and not text.startswith(PIPELINE_PREFIX):
            cand = _from_path(text)
        else:
            if registry is None:
                raise InvalidArgument(f"{text!r} is neither a bundle path nor usable without a registry")
            cand = _from_registry(registry, text)
        if cand.version is not None and any((c.name, c.version) == (cand.name, cand.version) for c in out):
            continue
        out.append(cand)
    names = sorted({c.name for c in out})
    if len(names) > 1:
        listed = ", ".join(c.label for c in out)
        raise InvalidArgument(
            f"candidates of different models ({', '.join(names)}): {listed}; compare versions of one model"
        )
    return out
