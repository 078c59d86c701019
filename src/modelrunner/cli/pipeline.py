"""Pipeline commands: check a pipeline file edge by edge, push it as a version, show how it resolves now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from modelrunner.cli.output import console, contract_table
from modelrunner.errors import InvalidArgument, PipelineError

if TYPE_CHECKING:
    from modelrunner.pipelines.graph import Graph
    from modelrunner.pipelines.spec import PipelineSpec
    from modelrunner.pipelines.steps import StepTarget
    from modelrunner.registry.registry import Registry

pipeline_app = typer.Typer(
    help="Pipelines: DAGs of models and transforms with checked edges.", no_args_is_help=True
)


def _registry_for(spec: PipelineSpec) -> Registry | None:
    """The registry, opened only when a step is a model ref."""
    if not any(step.model for step in spec.steps.values()):
        return None
    from modelrunner.cli.models import open_registry

    return open_registry()


def _edges_table(graph: Graph, targets: dict[str, StepTarget]) -> Table:
    table = Table(title=f"pipeline {graph.name}: {len(graph.order)} steps", title_justify="left")
    for column in ("step", "runs", "input", "reads", "type"):
        table.add_column(column)
    for name in graph.order:
        step = graph.spec.steps[name]
        runs = targets[name].ref + (" (map)" if step.map else "")
        rows = [(field, str(src), graph.values[src].describe()) for field, src in step.sources().items()]
        for i, (field, src_text, kind) in enumerate(rows or [("-", "-", "-")]):
            table.add_row(name if i == 0 else "", runs if i == 0 else "", field, src_text, kind)
    return table


def _problems(exc: PipelineError) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for problem in exc.problems:
        err.print(f"[red]error:[/red] {problem}")


def check(file: Path = typer.Argument(..., help="The pipeline YAML file.")) -> None:
    """Check every step and edge (names, dtypes, shapes, cycles) and print the derived contract."""
    from modelrunner.pipelines.spec import load_spec
    from modelrunner.pipelines.steps import check_spec

    spec = load_spec(file)
    try:
        graph, targets = check_spec(spec, registry=_registry_for(spec), base_dir=file.parent)
    except PipelineError as exc:
        _problems(exc)
        raise typer.Exit(2) from exc
    out = console()
    out.print(_edges_table(graph, targets))
    out.print(contract_table(graph.contract, f"contract of {graph.name}"))
    out.print(f"ok: {len(graph.order)} steps, every edge fits")


def _metrics(items: list[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            metrics[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InvalidArgument(f"invalid metric {item!r}: expected name=number")
    return metrics


def push(
    file: Path = typer.Argument(..., help="The pipeline YAML file."),
    alias: str | None = typer.Option(None, "--alias", "-a", help="Point this alias at the new version."),
    metric: list[str] = typer.Option([], "--metric", "-m", help="name=number, stored on the version."),  # noqa: B006
) -> None:
    """Check the pipeline and store it as the next version of its name (with the step versions it uses)."""
    from modelrunner.cli.models import open_registry
    from modelrunner.pipelines.package import push_pipeline

    try:
        mv = push_pipeline(file, open_registry(), alias=alias, metrics=_metrics(metric))
    except PipelineError as exc:
        _problems(exc)
        raise typer.Exit(2) from exc
    steps = ", ".join(f"{k}={v}" for k, v in mv.manifest.get("flavor_options", {}).get("steps", {}).items())
    where = f" as {mv.name}@{alias}" if alias else ""
    console().print(f"pushed {mv.ref}{where} (steps: {steps})")


def show(ref: str = typer.Argument(..., help="digits-ocr, digits-ocr@2 or digits-ocr@production.")) -> None:
    """How a pipeline version resolves now: each step's exact version, and its contract."""
    from modelrunner.cli.models import open_registry
    from modelrunner.pipelines.targets import resolve_pipeline_ref

    pv = resolve_pipeline_ref(open_registry(), ref)
    out = console()
    out.print(_edges_table(pv.graph, pv.steps))
    out.print(contract_table(pv.contract, f"contract of {pv.ref}"))


def register(app: typer.Typer) -> None:
    pipeline_app.command()(check)
    pipeline_app.command()(push)
    pipeline_app.command()(show)
    app.add_typer(pipeline_app, name="pipeline")
