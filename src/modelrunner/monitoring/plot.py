"""``modelrunner monitor ENDPOINT --plot drift.png``: drift over time, swaps and alerts marked (matplotlib,
the optional ``monitoring`` extra)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelrunner.errors import FailedPrecondition
from modelrunner.monitoring.status import history

POINTS = 60


def plot_drift(
    registry: Any,
    endpoint: str,
    path: str | Path,
    *,
    window_s: float,
    span_s: float | None = None,
    now: float | None = None,
) -> Path:
    """Drift index (the largest score / threshold of any feature: above 1 is drift) and the share of
    drifting features over the last ``span_s`` (default 24 windows), each point scored over ``window_s``;
    version swaps (dotted) and alerts firing (red) / resolved (green) marked; estimated accuracy on the
    right axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise FailedPrecondition("--plot needs matplotlib: pip install 'modelrunner[monitoring]'") from exc
    end = time.time() if now is None else now
    span = span_s or window_s * 24
    step = max(span / POINTS, 1.0)
    reports = [
        r
        for r in history(registry, endpoint, since=end - span, step_s=step, window_s=window_s, now=end)
        if r.features
    ]
    if not reports:
        raise FailedPrecondition(f"endpoint {endpoint!r} has no scored traffic in the last {span:.0f}s")
    times = [r.window[1] - end for r in reports if r.window]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    index = [max(f.score / f.threshold for f in r.features if f.threshold) for r in reports]
    ax.plot(times, index, label="drift index (max score / threshold)", color="tab:blue")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("drift index (log; above 1: drift)")
    _marks(ax, reports, registry, endpoint, end, end - span)
    _right_axis(ax, times, reports)
    ax.set_xlabel("seconds before now")
    ax.set_title(f"{endpoint}: drift over {window_s:.0f}s windows")
    ax.legend(loc="upper left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _right_axis(ax: Any, times: list[float], reports: list[Any]) -> None:
    """The share of features drifting and the estimated accuracy (where known), on a 0-1 right axis."""
    right = ax.twinx()
    right.plot(
        times,
        [r.drifted / len(r.features) for r in reports],
        color="tab:orange",
        label="share of features drifting",
    )
    accuracy = [
        (t, r.estimated_accuracy)
        for t, r in zip(times, reports, strict=True)
        if r.estimated_accuracy is not None
    ]
    if accuracy:
        right.plot(
            [a[0] for a in accuracy], [a[1] for a in accuracy], color="tab:green", label="estimated accuracy"
        )
    right.set_ylim(0, 1.05)
    right.set_ylabel("share / accuracy")
    right.legend(loc="upper right")


def _marks(ax: Any, reports: list[Any], registry: Any, endpoint: str, end: float, start: float) -> None:
    previous = None
    for r in reports:
        if previous is not None and r.version != previous and r.window:
            ax.axvline(r.window[1] - end, color="black", linestyle=":", linewidth=1)
            ax.annotate(f"v{r.version}", (r.window[1] - end, 0.02), xycoords=("data", "axes fraction"))
        previous = r.version
    for entry in registry.audit(limit=500, subject=endpoint):
        at = entry.at.timestamp()
        if at < start or not entry.action.startswith("drift.alert."):
            continue
        color = "tab:red" if entry.action.endswith("firing") else "tab:green"
        ax.axvline(at - end, color=color, linewidth=1, alpha=0.7)
