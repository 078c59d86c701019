"""A pipeline version as a bundle of flavor ``pipeline``: versioned, aliased and audited like a model.

The bundle holds ``modelrunner.yaml`` (flavor ``pipeline``, the derived contract, the step refs resolved at
push), ``pipeline.yaml`` (the spec; bundle steps rewritten to ``steps/<name>``), the bundle steps' folders
under ``steps/``, and ``example.npz`` (from the spec's ``example:`` files) used to warm the pipeline up.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from modelrunner.bundle import provenance
from modelrunner.bundle.examples import read_example, write_example
from modelrunner.bundle.manifest import EXAMPLE_FILE, Lineage, Manifest
from modelrunner.errors import BundleError, PipelineError
from modelrunner.pipelines.graph import Graph
from modelrunner.pipelines.spec import SPEC_FILE, PipelineSpec, load_spec, parse_spec
from modelrunner.pipelines.steps import StepTarget, check_spec

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import ModelVersion

FLAVOR = "pipeline"
STEPS_DIR = "steps"


def example_columns(spec: PipelineSpec, base_dir: Path) -> dict[str, np.ndarray] | None:
    """The spec's ``example:`` files read as a batch of one row (bytes inputs), or None."""
    if not spec.example:
        return None
    columns: dict[str, np.ndarray] = {}
    for name, rel in spec.example.items():
        if name not in spec.input:
            raise PipelineError(f"example: {name!r} is not an input of the pipeline", field=name)
        path = base_dir / rel
        if not path.is_file():
            raise PipelineError(f"example: no file {rel!r} for input {name!r}", field=name)
        column = np.empty(1, dtype=object)
        column[0] = path.read_bytes()
        columns[name] = column
    return columns


def build_bundle(
    spec_path: str | Path,
    dest: str | Path,
    *,
    registry: Registry | None = None,
    metrics: Mapping[str, float] | None = None,
) -> tuple[Path, Graph, dict[str, StepTarget]]:
    """Check the spec against the registry and write the pipeline bundle folder at ``dest``."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    base = spec_path.parent
    graph, targets = check_spec(spec, registry=registry, base_dir=base)
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    steps = {}
    for name, step in spec.steps.items():
        if step.bundle:
            target = targets[name]
            assert target.path is not None
            shutil.copytree(target.path, out / STEPS_DIR / name)
            step = step.model_copy(update={"bundle": f"{STEPS_DIR}/{name}"})
        steps[name] = step
    stored = spec.model_copy(update={"steps": steps, "example": {}})
    (out / SPEC_FILE).write_text(stored.to_yaml(), encoding="utf-8")
    example = example_columns(spec, base)
    if example is not None:
        write_example(out / EXAMPLE_FILE, example)
    commit, dirty = provenance.git_commit(base)
    Manifest(
        name=spec.name,
        flavor=FLAVOR,
        contract=graph.contract,
        description=spec.description,
        flavor_options={"spec": SPEC_FILE, "steps": {n: t.ref for n, t in targets.items()}},
        metrics={str(k): float(v) for k, v in (metrics or {}).items()},
        python=provenance.python_version(),
        example_input=EXAMPLE_FILE if example is not None else None,
        created_at=provenance.created_at(),
        lineage=Lineage(git_commit=commit, git_dirty=dirty),
    ).dump(out)
    return out, graph, targets


def push_pipeline(
    spec_path: str | Path,
    registry: Registry,
    *,
    alias: str | None = None,
    metrics: Mapping[str, float] | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Check and push a pipeline as the next version of its name; audit the step versions it resolved."""
    work = Path(tempfile.mkdtemp(prefix="modelrunner-pipeline-"))
    try:
        folder, _, targets = build_bundle(spec_path, work / "bundle", registry=registry, metrics=metrics)
        mv = registry.push(folder, alias=alias, actor=actor)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    registry.record(
        "pipeline.push",
        f"pipeline:{mv.name}",
        None,
        {"version": mv.version, "steps": {n: t.ref for n, t in targets.items()}},
        actor,
    )
    return mv


def read_bundle(directory: Path, manifest: Manifest) -> PipelineSpec:
    """The spec stored in a pipeline bundle (bundle steps point inside the bundle)."""
    if manifest.flavor != FLAVOR:
        raise BundleError(f"{manifest.name} is a {manifest.flavor} model, not a pipeline")
    path = directory / str(manifest.flavor_options.get("spec", SPEC_FILE))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"pipeline bundle {manifest.name}: cannot read {path.name}: {exc}") from exc
    return parse_spec(data, origin=f"{manifest.name}/{path.name}")


def bundle_example(directory: Path, manifest: Manifest) -> dict[str, np.ndarray] | None:
    """The pipeline bundle's example input, or None when it has none."""
    if not manifest.example_input or not (directory / manifest.example_input).is_file():
        return None
    return read_example(directory / manifest.example_input, manifest.contract)
