"""``modelrunner monitor``: drift, data quality and estimated accuracy of an endpoint; alert settings;
baselines from live traffic."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from modelrunner.cli.output import console
from modelrunner.errors import FailedPrecondition, InvalidArgument


class _ShowByDefault(TyperGroup):
    """``modelrunner monitor digits`` is ``modelrunner monitor show digits``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


monitor_app = typer.Typer(
    cls=_ShowByDefault,
    no_args_is_help=True,
    help="Drift, data quality and estimated accuracy of an endpoint's traffic "
    "(modelrunner monitor ENDPOINT); alert settings; baselines.",
)

WINDOW_HELP = "Traffic window: the last 30s, 10m, 1h, 2d (default 1h)."
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> int:
    """``"10m"`` -> 600 seconds (s, m, h, d; a bare number is seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise InvalidArgument(f"invalid --window {text!r}: give a duration like 30s, 10m, 1h or 2d")
    return max(1, int(float(match.group(1)) * _UNITS[match.group(2) or "s"]))


def _registry() -> Any:
    from modelrunner.cli.models import open_registry

    return open_registry()


def show(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    window: str = typer.Option("1h", "--window", help=WINDOW_HELP),
    all_features: bool = typer.Option(False, "--all", help="Every feature (default: the 20 furthest)."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
    plot: str | None = typer.Option(
        None, "--plot", help="Write drift over time as a PNG (needs the 'monitoring' extra: matplotlib)."
    ),
) -> None:
    """Per feature and output: drift score, test, statistic, p-value, threshold, status; data quality
    (NaN, out of range, unseen categories); estimated accuracy; firing alerts."""
    from modelrunner.monitoring.status import alerts, drift_status

    registry = _registry()
    seconds = parse_window(window)
    report = drift_status(registry, endpoint, window_s=seconds)
    states = alerts(registry, endpoint)
    if plot:
        from modelrunner.monitoring.plot import plot_drift

        path = plot_drift(registry, endpoint, plot, window_s=seconds)
        console().print(f"wrote {path}")
    if as_json:
        out = report.to_json()
        out["alerts"] = [{"kind": a.kind, "state": a.state, "since": a.since.isoformat()} for a in states]
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    _print_report(report, states, window, all_features)


def _print_report(report: Any, states: list[Any], window: str, all_features: bool) -> None:
    out = console()
    out.print(
        f"[bold]{report.endpoint}[/bold]: {report.model}@{report.version}, last {window}, "
        f"{report.rows} rows: [bold]{report.status}[/bold]"
        + (
            f" ({report.drifted} of {len(report.features)} features drift; alert at {report.needed})"
            if report.features
            else ""
        )
    )
    if report.estimated_accuracy is not None:
        ref = report.reference_accuracy
        out.print(
            f"estimated accuracy {report.estimated_accuracy:.3f} "
            f"(mean confidence {report.confidence:.3f}"
            + (f"; reference accuracy {ref:.3f})" if ref is not None else ")")
        )
    if report.online_accuracy is not None:
        out.print(f"online accuracy {report.online_accuracy:.3f} ({report.labelled_rows} labelled rows)")
    if report.quality:
        out.print(f"data quality: {', '.join(report.quality[:10])}")
    firing = [a.kind for a in states if a.state == "firing"]
    out.print(f"alerts firing: {', '.join(firing) if firing else 'none'}")
    if report.status == "no reference":
        out.print(
            "no reference profile: save the model with training_data=..., or run "
            f"'modelrunner monitor baseline {report.endpoint} --window 1h' on known-good traffic"
        )
        return
    out.print(_feature_table(report.features, all_features))


_FEATURE_COLUMNS = (
    "feature",
    "side",
    "test",
    "score",
    "threshold",
    "stat",
    "p-value",
    "NaN",
    "outside",
    "status",
)


def _feature_table(features: list[Any], all_features: bool) -> Table:
    """The features, the most drifted first (relative to their threshold): the first 20 unless all."""
    ranked = sorted(features, key=lambda f: -f.score / f.threshold if f.threshold else 0)
    table = Table(title_justify="left")
    for column in _FEATURE_COLUMNS:
        table.add_column(column)
    for f in ranked if all_features else ranked[:20]:
        stat = "K-S" if f.test == "psi" else "chi2"
        table.add_row(
            f.feature,
            f.side,
            f.test,
            f"{f.score:.4f}",
            f"{f.threshold:.4f}",
            f"{stat} {f.statistic:.3g}",
            f"{f.p_value:.3g}",
            f"{f.nan_rate:.1%}",
            f"{f.out_of_range:.1%}",
            f.status,
        )
    return table


def monitor_set(
    model: str = typer.Argument(..., help="Model name (thresholds apply to every version)."),
    psi: float | None = typer.Option(None, "--psi", help="Smallest PSI that is drift (default 0.2)."),
    js: float | None = typer.Option(
        None, "--js", help="Smallest Jensen-Shannon distance that is drift (categorical; default 0.1)."
    ),
    quantile: float | None = typer.Option(None, "--quantile", help="Calibration quantile (default 0.99)."),
    min_rows: int | None = typer.Option(None, "--min-rows", help="Fewest rows scored (default 200)."),
    min_features: float | None = typer.Option(
        None, "--min-features", help="Share of features drifting that fires (default 0.05)."
    ),
    nan: float | None = typer.Option(None, "--nan", help="NaN rate above the reference's (default 0.05)."),
    out_of_range: float | None = typer.Option(None, "--out-of-range", help="Default 0.05."),
    unseen: float | None = typer.Option(None, "--unseen", help="Unseen categories rate (default 0.05)."),
    accuracy_drop: float | None = typer.Option(
        None, "--accuracy-drop", help="Estimated accuracy drop below the reference (default 0.05)."
    ),
    reset: bool = typer.Option(False, "--reset", help="Back to the defaults."),
) -> None:
    """Set a model's drift alert thresholds (audited); unset options keep their value."""
    from modelrunner.monitoring.drift import Thresholds

    given = {
        "psi": psi,
        "js": js,
        "quantile": quantile,
        "min_rows": min_rows,
        "min_features": min_features,
        "nan": nan,
        "out_of_range": out_of_range,
        "unseen": unseen,
        "accuracy_drop": accuracy_drop,
    }
    for key, value in given.items():
        if value is not None and (value < 0 or (key in ("quantile", "min_features") and value > 1)):
            bounds = "in [0, 1]" if key in ("quantile", "min_features") else ">= 0"
            raise InvalidArgument(f"--{key.replace('_', '-')} must be {bounds}, got {value}")
    registry = _registry()
    registry.resolve(model)  # NotFound naming the model
    current = {} if reset else registry.drift_thresholds(model)
    merged = {**current, **{k: v for k, v in given.items() if v is not None}}
    registry.set_drift_thresholds(model, merged)
    out = Thresholds.from_json(merged).to_json()
    console().print(f"{model}: " + ", ".join(f"{k}={v:g}" for k, v in out.items()))


def baseline(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    window: str = typer.Option("1h", "--window", help=WINDOW_HELP),
) -> None:
    """Make the last window of this endpoint's traffic the reference of the version it serves (for bundles
    saved without training data, or after a known, accepted change)."""
    from modelrunner.monitoring.profile import Profile
    from modelrunner.monitoring.status import merged, served

    registry = _registry()
    target = served(registry, endpoint)
    since = int(time.time() - parse_window(window))
    rows = registry.sketches(endpoint, since=since, version=target.mv.version)
    sketch = merged(rows, target.profile.reference.counts.size)
    if sketch.rows == 0:
        raise FailedPrecondition(
            f"endpoint {endpoint!r} has no traffic of {target.mv.ref} in the last {window}"
        )
    profile = Profile(target.profile.specs, sketch, "baseline", _confidence(target.profile, sketch))
    registry.put_baseline(target.mv.name, target.mv.version, profile.to_json())
    console().print(
        f"{target.mv.ref}: baseline of {sketch.rows} rows ({len(profile.specs)} features) from "
        f"the last {window} of {endpoint}"
    )


def _confidence(reference: Any, sketch: Any) -> dict[str, Any] | None:
    conf = dict(reference.confidence or {})
    if not conf or not sketch.conf_rows:
        return conf or None
    conf["mean"] = sketch.conf_sum / sketch.conf_rows
    return conf


def print_profile(registry: Any, mv: Any, limit: int = 12) -> None:
    """``modelrunner show``: the reference profile saved with the version (drift monitoring's baseline)."""
    from modelrunner.monitoring.status import reference

    profile = reference(registry, mv)
    if profile.source == "none":
        return
    out = console()
    conf = profile.confidence or {}
    line = (
        f"\n[bold]reference profile[/bold] ({profile.source}): {len(profile.specs)} features of "
        f"{profile.reference.rows} rows"
    )
    if conf.get("mean") is not None:
        acc = conf.get("accuracy")
        line += f"; mean confidence {conf['mean']:.3f}" + (f", accuracy {acc:.3f}" if acc is not None else "")
    out.print(line)
    table = Table(title_justify="left")
    for column in ("feature", "side", "kind", "range / top categories", "bins", "missing"):
        table.add_column(column)
    for spec, counts in list(zip(profile.specs, profile.feature_counts(), strict=True))[:limit]:
        total = max(1, int(counts.sum()))
        if spec.kind == "numeric":
            what, bins = f"{spec.edges[0]:g} .. {spec.edges[-1]:g}", str(len(spec.edges) - 1)
        else:
            top = sorted(zip(spec.categories, counts[:-2], strict=True), key=lambda c: -c[1])[:3]
            what = ", ".join(f"{c} {n / total:.0%}" for c, n in top)
            bins = str(len(spec.categories))
        table.add_row(spec.name, spec.side, spec.kind, what, bins, f"{counts[-1] / total:.1%}")
    out.print(table)
    if len(profile.specs) > limit:
        out.print(f"... and {len(profile.specs) - limit} more (modelrunner monitor ENDPOINT scores them all)")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` (show, set, baseline) to the main app."""
    monitor_app.command("show")(show)
    monitor_app.command("set")(monitor_set)
    monitor_app.command("baseline")(baseline)
    app.add_typer(monitor_app, name="monitor")
