"""Evaluation commands: ``evaluate`` candidates against requirements, ``promote`` the best, ``gates``."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from modelrunner.cli.output import console

if TYPE_CHECKING:
    from modelrunner.evaluation.evaluate import EvaluationRun, Options
    from modelrunner.evaluation.promote import Decision
    from modelrunner.registry.registry import Registry

gates_app = typer.Typer(
    help="Requirements saved on a model, enforced on every move to production.", no_args_is_help=True
)

REQUIRE_HELP = 'Requirement "metric op number", e.g. "accuracy>=0.95", "p99_ms<=10", "qps>=800" (repeatable).'
DATA_HELP = ".npz, .csv, .parquet (input fields + target), or a callable pkg.module:function."
TASK_HELP = "classification, regression or ocr (default: inferred from the model's outputs)."
METRIC_HELP = "Custom metric pkg.module:function or name=pkg.module:function (repeatable)."


def _registry() -> Registry:
    from modelrunner.cli.models import open_registry

    return open_registry()


class _Bars:
    """A rich progress bar per stage, on stderr, only on a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        err = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
        )

    def stage(self, label: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(label, total=total)
        return lambda n: self.progress.advance(task, n)


@contextlib.contextmanager
def _progress() -> Iterator[_Bars]:
    bars = _Bars()
    with bars.progress:
        yield bars


def _options(
    task: str | None,
    metric: list[str],
    target: str,
    served: bool,
    concurrency: int,
    requests: int,
    batch_size: int,
) -> Options:
    from modelrunner.evaluation.evaluate import Options
    from modelrunner.evaluation.metrics import load_custom_metric, parse_task
    from modelrunner.evaluation.speed import LoadSpec

    return Options(
        task=parse_task(task),
        custom=tuple(load_custom_metric(m) for m in metric),
        target=target,
        batch_size=batch_size,
        served=served,
        load=LoadSpec(requests=requests, concurrency=concurrency),
    )


def results_table(run: EvaluationRun) -> Table:
    """candidate | task metrics | speed | gates passed | verdict, best first."""
    from modelrunner.evaluation.gates import fmt
    from modelrunner.evaluation.report import table_columns

    columns = table_columns(run)
    table = Table(
        title=f"{run.model} on {run.dataset.name} ({run.dataset.rows} rows, {run.task.value})",
        title_justify="left",
    )
    table.add_column("candidate")
    for _, title in columns:
        table.add_column(title, justify="right")
    table.add_column("gates passed", justify="right")
    table.add_column("verdict")
    best = run.best
    for r in run.ranked():
        verdict = f"[green]{r.verdict}[/green]" if r.passed else f"[red]{r.verdict}[/red]"
        name = f"{r.ref} (best)" if r is best else r.ref
        table.add_row(name, *[fmt(r.metrics.get(k)) for k, _ in columns], r.gates_passed(), verdict)
    return table


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run_json(run: EvaluationRun) -> dict[str, Any]:
    best = run.best
    data: dict[str, Any] = _json_safe(
        {
            "model": run.model,
            "task": run.task.value,
            "requirements": [str(r) for r in run.requirements],
            "dataset": {"name": run.dataset.name, "sha256": run.dataset.sha256, "rows": run.dataset.rows},
            "best": best.ref if best else None,
            "candidates": [
                {
                    "ref": r.ref,
                    "version": r.candidate.version,
                    "metrics": r.metrics,
                    "passed": r.passed,
                    "verdict": r.verdict,
                    "evaluation_id": r.evaluation_id,
                    "gates": [g.to_dict() for g in r.gates],
                }
                for r in run.ranked()
            ],
        }
    )
    return data


def evaluate(
    candidates: list[str] = typer.Argument(..., help="Versions of one model (digits@2 digits@3) or bundles."),
    data: str = typer.Option(..., "--data", "-d", help=DATA_HELP),
    require: list[str] = typer.Option([], "--require", "-r", help=REQUIRE_HELP),  # noqa: B006
    task: str | None = typer.Option(None, "--task", help=TASK_HELP),
    metric: list[str] = typer.Option([], "--metric", "-m", help=METRIC_HELP),  # noqa: B006
    target: str = typer.Option("target", "--target", help="Name of the target column in the data."),
    report: Path | None = typer.Option(Path("report.html"), "--report", help="HTML report to write."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    served: bool = typer.Option(True, "--served/--no-served", help="Also measure speed through real HTTP."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Requests in flight (served)."),
    requests: int = typer.Option(500, "--requests", min=1, help="Requests per candidate (served)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Rows per predict call for quality."),
    store: bool = typer.Option(True, "--store/--no-store", help="Keep the results in the registry."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
) -> None:
    """Evaluate candidates on a data set: metrics, speed (in-process and served), gates, verdicts.

    Exits 1 when no candidate meets every requirement (--require and the model's saved gates)."""
    from modelrunner.evaluation.evaluate import evaluate as run_evaluation
    from modelrunner.evaluation.report import write_report

    options = _options(task, metric, target, served, concurrency, requests, batch_size)
    registry = _registry()
    with _progress() as bars:
        run = run_evaluation(registry, candidates, data, require, options=options, store=store, progress=bars)
    out = console()
    best = run.best
    unmet = "no candidate meets: " + "; ".join(str(r) for r in run.requirements)
    if as_json:
        typer.echo(json.dumps(run_json(run), indent=2))
    else:
        out.print(results_table(run))
        out.print(f"best: {best.ref}" if best else unmet)
    if report is not None and not no_report:
        path = write_report(run, report)
        if not as_json:
            out.print(f"report: {path}")
    if best is None:  # a failed evaluation must fail a script or a CI step
        if as_json:
            typer.echo(unmet, err=True)  # stdout stays one JSON document
        raise typer.Exit(1)


def _decision_text(d: Decision) -> str:
    if d.promoted and d.chosen is not None:
        was = f" (was version {d.previous})" if d.previous is not None else ""
        return f"promoted {d.model}@{d.alias} -> version {d.chosen.version}{was}: {d.reason}"
    return f"not promoted: {d.reason}"


def promote(
    name: str = typer.Argument(..., help="Model name."),
    best_of: str = typer.Option(..., "--best-of", help="Candidate versions, e.g. 2,3,4."),
    alias: str = typer.Option("production", "--alias", "-a", help="Alias to move."),
    require: list[str] = typer.Option([], "--require", "-r", help=REQUIRE_HELP),  # noqa: B006
    data: str | None = typer.Option(
        None, "--data", "-d", help="Evaluate afresh on this data (default: use stored evaluations)."
    ),
    min_improvement: float = typer.Option(
        0.0, "--min-improvement", help="How much the primary metric must beat the current version by."
    ),
    task: str | None = typer.Option(None, "--task", help=TASK_HELP),
    metric: list[str] = typer.Option([], "--metric", "-m", help=METRIC_HELP),  # noqa: B006
    target: str = typer.Option("target", "--target", help="Name of the target column in the data."),
    served: bool = typer.Option(True, "--served/--no-served", help="Also measure speed through real HTTP."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Requests in flight (served)."),
    requests: int = typer.Option(500, "--requests", min=1, help="Requests per candidate (served)."),
) -> None:
    """Move ALIAS to the best candidate if it passes every gate and beats the current one; else exit 1."""
    from modelrunner.evaluation.promote import promote as run_promote

    options = _options(task, metric, target, served, concurrency, requests, 256)
    registry = _registry()
    with _progress() as bars:
        decision = run_promote(
            registry,
            name,
            versions=best_of,
            alias=alias,
            data=data,
            requirements=require,
            min_improvement=min_improvement,
            options=options,
            progress=bars,
        )
    out = console()
    if decision.run is not None:
        out.print(results_table(decision.run))
    out.print(_decision_text(decision))
    if not decision.promoted:
        raise typer.Exit(1)


def gates_set(
    name: str = typer.Argument(..., help="Model name."),
    requirements: list[str] = typer.Argument(..., help='Requirements, e.g. "accuracy>=0.95" "p99_ms<=10".'),
) -> None:
    """Save the model's gates (replacing the old ones); every move to production must then pass them."""
    from modelrunner.evaluation.requirements import parse_requirements

    reqs = [str(r) for r in parse_requirements(requirements)]
    registry = _registry()
    registry.model(name)
    registry.set_gates(name, reqs)
    console().print(f"gates of {name}: {'; '.join(reqs)}")


def gates_show(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Show the model's saved gates."""
    registry = _registry()
    registry.model(name)
    gates = registry.gates(name)
    console().print(f"gates of {name}: {'; '.join(gates)}" if gates else f"{name} has no gates")


def gates_clear(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Remove the model's gates."""
    registry = _registry()
    registry.model(name)
    registry.set_gates(name, [])
    console().print(f"gates of {name} cleared")


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``promote`` and ``gates`` to the main app."""
    app.command()(evaluate)
    app.command()(promote)
    gates_app.command("set")(gates_set)
    gates_app.command("show")(gates_show)
    gates_app.command("clear")(gates_clear)
    app.add_typer(gates_app, name="gates")
