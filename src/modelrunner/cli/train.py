"""``modelrunner train MODEL --trainer PATH``: retrain on the original data plus the labelled feedback, judge
the result on held-out recent labels, roll it out as an online experiment. One shot (cron friendly: exit 0
when nothing is due) or ``--watch``. See docs/training.md.
"""

from __future__ import annotations

import re
import signal
import threading
from typing import Any

import typer

from modelrunner.cli.models import open_registry
from modelrunner.cli.output import console
from modelrunner.errors import InvalidArgument

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str | None, option: str) -> float | None:
    """``"600"``, ``"30m"``, ``"1h"``, ``"7d"`` -> seconds (None for none/empty)."""
    if text is None or not text.strip() or text.strip().lower() in ("none", "all"):
        return None
    found = _DURATION.match(text.strip().lower())
    if found is None or float(found.group(1)) <= 0:
        raise InvalidArgument(
            f"{option} {text!r}: expected a duration such as 600, 30m, 1h or 7d", field=option
        )
    return float(found.group(1)) * _UNITS[found.group(2)]


def _report(outcome: Any) -> None:
    style = {"failed": "red", "locked": "red", "refused": "yellow"}.get(outcome.status)
    text = outcome.message
    console().print(f"[{style}]{text}[/{style}]" if style else text, markup=bool(style), highlight=False)


def train(
    model: str = typer.Argument(..., help="The model to retrain (its serving version is the parent)."),
    trainer: str = typer.Option(
        ...,
        "--trainer",
        "-t",
        help="train(data, base) -> model: 'pkg.module:function' or 'file.py:function'.",
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", "-e", help="Endpoint serving it (default: MODEL)."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="The original training set: .npz/.csv/.parquet or a "
        "callable 'pkg.module:function' / 'file.py:function' -> "
        "(columns, target).",
    ),
    trigger: list[str] = typer.Option(
        [],
        "--trigger",
        help="drift | labels>=N | every=1h (repeatable; any "  # noqa: B006
        "fires; none = train now).",
    ),
    require: list[str] = typer.Option(
        [],
        "--require",
        "-r",
        help="Offline gate on held-out labels, e.g. "  # noqa: B006
        '"accuracy>=0.95" (repeatable; the saved gates apply too).',
    ),
    rollout: str = typer.Option(
        "canary 10 then promote",
        "--rollout",
        help='"canary N then promote", "shadow then promote", "... then stop", "none".',
    ),
    decide: list[str] = typer.Option(
        [],
        "--decide",
        "-d",
        help='Online rule (default: "accuracy >= '  # noqa: B006
        'baseline", "error_rate <= 0.01").',
    ),
    min_labels: int = typer.Option(50, "--min-labels", min=0, help="Candidate labels before the decision."),
    window: str | None = typer.Option(
        None, "--window", help="Feedback rows of the last 30m, 1h, 7d (default: all)."
    ),
    holdout: float = typer.Option(
        0.2, "--holdout", min=0.0, max=0.9, help="Share of labelled rows held out."
    ),
    min_holdout: int = typer.Option(30, "--min-holdout", min=1, help="Fewest held-out rows to judge on."),
    balance: bool = typer.Option(False, "--balance", help="Oversample feedback rows to balance the classes."),
    watch_: bool = typer.Option(False, "--watch", help="Keep checking the triggers (Ctrl-C stops)."),
    interval: str = typer.Option("30s", "--interval", help="How often --watch checks the triggers."),
    lease: str = typer.Option("5m", "--lease", help="The lock's lease, renewed while a run works."),
) -> None:
    """Retrain MODEL when a trigger fires; judge, push and roll out the result."""
    from modelrunner.training.run import TrainOptions, prepare

    opts = TrainOptions(
        model=model,
        trainer=trainer,
        endpoint=endpoint,
        data=data,
        triggers=list(trigger),
        requirements=list(require),
        rollout=rollout,
        decide=list(decide),
        min_labels=min_labels,
        window_s=parse_duration(window, "--window"),
        holdout=holdout,
        min_holdout=min_holdout,
        balance=balance,
        lease_s=parse_duration(lease, "--lease") or 300.0,
    )
    _run(prepare(opts), watch_, parse_duration(interval, "--interval") or 30.0)


def _run(prep: Any, watching: bool, interval_s: float) -> None:
    from modelrunner.training.run import train_once, watch

    registry = open_registry()
    try:
        if not watching:
            outcome = train_once(registry, prep)
            _report(outcome)
            raise typer.Exit(outcome.exit_code)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            watch(registry, prep, interval_s=interval_s, stop=stop, report=_report)
        except KeyboardInterrupt:
            stop.set()
    finally:
        registry.close()


def register(app: typer.Typer) -> None:
    app.command()(train)
