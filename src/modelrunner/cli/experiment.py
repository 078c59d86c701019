"""Online experiment commands: ``experiment start | status | stop | list`` (against the registry directly).

Runners sharing the registry apply a started or stopped experiment by themselves (it is desired state);
their deciders judge the ``--decide`` rules and promote or abort.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from modelrunner.cli.models import open_registry
from modelrunner.cli.output import compact, console, when
from modelrunner.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from modelrunner.experiments.online import Estimate, VariantStats
    from modelrunner.experiments.stats import ExperimentStats

experiment_app = typer.Typer(
    help="Online tests: shadow, canary, A/B; feedback, online metrics, decisions.", no_args_is_help=True
)

DECIDE_HELP = (
    'Decision rule "metric op threshold", the threshold a number or relative to production: '
    '"accuracy >= baseline - 0.01", "p99_ms <= baseline * 1.2", "error_rate <= 0.01" '
    "(repeatable)."
)


class Mode(StrEnum):
    shadow = "shadow"
    canary = "canary"
    ab = "ab"


class Then(StrEnum):
    promote = "promote"


WAIT_HELP = "Wait until every live worker serving the endpoint applied the change."
LIVE_S = 10.0


def wait_applied(registry: Any, endpoint: str, timeout: float) -> str:
    """Until every live worker of ``endpoint`` reports the registry's current generation (a worker reports
    a generation once it applied that generation's experiment); one line saying how it went."""
    import time

    from modelrunner.errors import DeadlineExceeded

    generation = registry.state_generation()
    deadline = time.monotonic() + timeout
    while True:
        rows = registry.workers(endpoint, alive_within_s=LIVE_S)
        if not rows:
            return f"no live worker serves {endpoint}: runners apply it when they start"
        behind = [w for w in rows if (w.generation or 0) < generation]
        if not behind:
            return f"applied by {len(rows)} worker(s)"
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(
                f"{len(behind)} of {len(rows)} workers of {endpoint} did not apply the "
                f"change within {timeout:g}s"
            )
        time.sleep(0.1)


def _task_of(registry: Any, candidate: str) -> Any:
    from modelrunner.evaluation.metrics import infer_task

    return infer_task(registry.check_target(candidate).contract)


def start(
    endpoint: str = typer.Argument(..., help="Endpoint name, e.g. digits."),
    candidate: str = typer.Option(..., "--candidate", "-c", help="The version to test, e.g. digits@4."),
    mode: Mode = typer.Option(..., "--mode", "-m", help="shadow (mirror), canary or ab (split)."),
    percent: float | None = typer.Option(
        None,
        "--percent",
        "-p",
        min=0,
        max=100,
        help="Candidate's share (default: shadow 100, canary 10, ab 50).",
    ),
    sticky_key: str | None = typer.Option(
        None, "--sticky-key", help="Request field or header whose value fixes the variant."
    ),
    decide: list[str] = typer.Option([], "--decide", "-d", help=DECIDE_HELP),  # noqa: B006
    min_labels: int = typer.Option(0, "--min-labels", min=0, help="Candidate labels before deciding."),
    min_requests: int = typer.Option(0, "--min-requests", min=0, help="Candidate requests before deciding."),
    then: Then | None = typer.Option(None, "--then", help="On pass: promote (else the experiment stops)."),
    wait: bool = typer.Option(False, "--wait", "-w", help=WAIT_HELP),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait with --wait."),
) -> None:
    """Start an online experiment on ENDPOINT: production plus the candidate, mirrored or split."""
    from modelrunner.experiments.rules import parse_rules

    registry = open_registry()
    rules = parse_rules(decide, _task_of(registry, candidate))
    if then is not None and not rules:
        raise InvalidArgument("--then promote needs at least one --decide rule")
    exp = registry.start_experiment(
        endpoint,
        candidate,
        mode=mode.value,
        percent=percent,
        sticky_key=sticky_key,
        rules=[str(r) for r in rules],
        min_labels=min_labels,
        min_requests=min_requests,
        then=then.value if then else None,
    )
    prod = registry.endpoint(endpoint).target
    share = f"{exp.percent:g}% mirrored" if exp.mode == "shadow" else f"{exp.percent:g}%"
    sticky = f", sticky on {exp.sticky_key}" if exp.sticky_key else ""
    console().print(
        f"experiment {exp.id} on {endpoint}: {exp.mode} {exp.candidate_ref} ({share}{sticky}) "
        f"beside {prod}; runners using this registry apply it by themselves"
    )
    if rules:
        action = "promote" if exp.then_action else "stop"
        console().print(
            f"decide: {'; '.join(exp.rules)}; then {action} (min labels {exp.min_labels}, "
            f"min requests {exp.min_requests})"
        )
    if wait:
        console().print(wait_applied(registry, endpoint, timeout))


def _find(registry: Any, endpoint: str, experiment_id: str | None) -> Any:
    if experiment_id:
        return registry.experiment_by_id(experiment_id)
    exp = registry.experiment(endpoint)
    if exp is None:
        recent = registry.experiments(endpoint, limit=1)
        if not recent:
            raise NotFound(
                f"endpoint {endpoint!r} has no experiment: modelrunner experiment start "
                f"{endpoint} --candidate REF --mode canary"
            )
        exp = recent[0]
    return exp


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _with_ci(est: Estimate | None) -> str:
    if est is None or est.value is None:
        return "-"
    return f"{_num(est.value)} [{_num(est.low)}, {_num(est.high)}]"


def _variant_row(vs: VariantStats, primary: str) -> list[str]:
    return [
        vs.variant,
        vs.ref,
        str(vs.requests),
        str(vs.errors),
        _with_ci(vs.estimate("error_rate")),
        _num(vs.value("p50_ms"), 3),
        _num(vs.value("p99_ms"), 3),
        _with_ci(vs.estimate("agreement")),
        str(vs.labelled),
        _with_ci(vs.estimate(primary)),
    ]


def variants_table(stats: ExperimentStats) -> Table:
    from modelrunner.evaluation.metrics import PRIMARY_METRIC

    primary = PRIMARY_METRIC[stats.task]
    exp = stats.experiment
    table = Table(
        title=f"experiment {exp.id} on {exp.endpoint}: {exp.mode} {exp.percent:g}% — {exp.state}",
        title_justify="left",
    )
    for column in (
        "variant",
        "model",
        "requests",
        "errors",
        "error rate [95% CI]",
        "p50 ms",
        "p99 ms",
        "agreement [95% CI]",
        "labelled",
        f"{primary} [95% CI]",
    ):
        table.add_column(column)
    for vs in stats.variants.values():
        table.add_row(*_variant_row(vs, primary))
    return table


def _rules_table(stats: ExperimentStats) -> Table | None:
    from modelrunner.experiments.decide import judge, rules_of

    rules = rules_of(stats.experiment)
    if not rules:
        return None
    verdict = judge(rules, stats.candidate, stats.production)
    table = Table(title=f"rules now: {verdict.outcome}", title_justify="left")
    for column in ("rule", "now", "test", "why"):
        table.add_column(column)
    for v in verdict.rules:
        table.add_row(v.rule, v.outcome, v.test, v.reason)
    return table


def _decision_line(exp: Any) -> str:
    if exp.state == "running":
        then = "promote" if exp.then_action else "stop"
        return (
            f"decision: pending (rules judged at checkpoints from {exp.min_labels} labels / "
            f"{exp.min_requests} requests; then {then})"
            if exp.rules
            else "decision: manual (no --decide rules): modelrunner experiment stop "
            f"{exp.endpoint} --promote | --abort"
        )
    doc = exp.decision if isinstance(exp.decision, dict) else {}
    by = f" by {exp.ended_by}" if exp.ended_by else ""
    return f"decision: {exp.state}{by} at {when(exp.ended_at)}: {compact(doc.get('reason') or '-', 300)}"


def status(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    experiment_id: str | None = typer.Option(
        None, "--id", help="An earlier experiment (default: the running one, else the latest)."
    ),
) -> None:
    """Per variant: requests, errors, latency, agreement, labels, online quality with 95% intervals."""
    from modelrunner.experiments.stats import load_stats

    registry = open_registry()
    stats = load_stats(registry, _find(registry, endpoint, experiment_id))
    out = console()
    out.print(variants_table(stats))
    rules = _rules_table(stats)
    if rules is not None:
        out.print(rules)
    out.print(_decision_line(stats.experiment))


def stop(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    promote: bool = typer.Option(False, "--promote", help="Move the endpoint to the candidate (gated)."),
    abort: bool = typer.Option(False, "--abort", help="Drop the candidate; production keeps serving."),
    wait: bool = typer.Option(False, "--wait", "-w", help=WAIT_HELP),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait with --wait."),
) -> None:
    """Stop the running experiment on ENDPOINT by hand: --promote or --abort."""
    from modelrunner.experiments import actions
    from modelrunner.experiments.stats import load_stats

    if promote == abort:
        raise InvalidArgument("say --promote or --abort (one of them)")
    registry = open_registry()
    exp = registry.experiment(endpoint)
    if exp is None:
        raise NotFound(f"endpoint {endpoint!r} has no running experiment")
    stats = load_stats(registry, exp)
    if promote:
        moved = actions.promote(registry, stats, None, actor=None, manual=True)
        console().print(f"experiment {exp.id} promoted: {moved}; runners swap by themselves")
    else:
        actions.abort(registry, stats, None, actor=None, manual=True, reason="aborted by hand")
        console().print(f"experiment {exp.id} aborted: {exp.candidate_ref} dropped, production keeps serving")
    if wait:
        console().print(wait_applied(registry, endpoint, timeout))


def list_(
    endpoint: str | None = typer.Option(None, "--endpoint", "-e", help="Only this endpoint's experiments."),
    limit: int = typer.Option(50, "--limit", "-l", min=1, help="At most this many (newest first)."),
) -> None:
    """Experiments, newest first: mode, candidate, state and decision."""
    registry = open_registry()
    found = registry.experiments(endpoint, limit=limit)
    if not found:
        console().print(
            "no experiments yet: modelrunner experiment start ENDPOINT --candidate REF --mode shadow"
        )
        return
    table = Table(title="experiments", title_justify="left")
    for column in ("id", "endpoint", "mode", "candidate", "%", "rules", "state", "started", "ended", "why"):
        table.add_column(column)
    for exp in found:
        doc = exp.decision if isinstance(exp.decision, dict) else {}
        table.add_row(
            exp.id,
            exp.endpoint,
            exp.mode,
            exp.candidate_ref,
            f"{exp.percent:g}",
            str(len(exp.rules)),
            exp.state,
            when(exp.started_at),
            when(exp.ended_at),
            compact(doc.get("reason") or "-", 50),
        )
    console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``experiment start|status|stop|list`` to the main app."""
    experiment_app.command()(start)
    experiment_app.command()(status)
    experiment_app.command()(stop)
    experiment_app.command("list")(list_)
    app.add_typer(experiment_app, name="experiment")
