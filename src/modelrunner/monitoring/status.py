"""Reading drift state from the registry: the reference of a version, a window of merged sketches, the drift
report of an endpoint now or over time, and its alerts. What ``modelrunner monitor``, the workers' check loop
and the continuous-training triggers call (see docs/monitoring.md, "For code")."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrunner.errors import NotFound
from modelrunner.monitoring.drift import DriftReport, Thresholds, evaluate
from modelrunner.monitoring.online import online_accuracy
from modelrunner.monitoring.profile import Profile, generic_specs
from modelrunner.monitoring.sketch import Sketch


def reference(registry: Any, mv: Any) -> Profile:
    """The reference of a version: its baseline set by ``monitor baseline``, else the profile saved in its
    bundle, else generic bins with an empty reference (live traffic is sketched, nothing is scored)."""
    stored = registry.baseline(mv.name, mv.version)
    if stored is not None:
        return Profile.from_json(stored)
    if (mv.manifest or {}).get("profile"):
        from modelrunner.bundle.bundle import open_bundle

        profile = open_bundle(registry.fetch(mv)).profile()
        if profile is not None:
            return profile  # type: ignore[no-any-return]
    specs = generic_specs(mv.contract)
    return Profile(specs, Sketch.empty(sum(s.slots for s in specs)), "none")


def merged(rows: list[Any], slots: int) -> Sketch:
    """One sketch of the rows (any workers, windows) that have ``slots`` slots."""
    out = Sketch.empty(slots)
    for row in rows:
        if row.slots == slots:
            out = out.merge(Sketch.from_json(row.sketch))
    return out


def merge_json(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two stored sketches added (what a worker's flush does to its row of a window)."""
    return Sketch.from_json(old).merge(Sketch.from_json(new)).to_json()


@dataclass(frozen=True)
class Served:
    endpoint: str
    mv: Any
    profile: Profile
    thresholds: Thresholds


def served(registry: Any, endpoint: str) -> Served:
    """The version ``endpoint``'s desired target resolves to now, its reference and its model's thresholds."""
    from modelrunner.registry.refs import parse_target

    state = registry.endpoint(endpoint)
    kind, ref = parse_target(state.target)
    if kind == "pipeline":
        raise NotFound(f"endpoint {endpoint!r} serves a pipeline: monitor its steps' endpoints instead")
    mv = registry.resolve(ref)
    return _served_version(registry, endpoint, mv.name, mv.version, mv)


def drift_status(
    registry: Any,
    endpoint: str,
    *,
    window_s: float = 3600,
    now: float | None = None,
    target: Served | None = None,
) -> DriftReport:
    """The drift report of the version ``endpoint`` serves, over the last ``window_s`` seconds of traffic
    (all workers and runners merged)."""
    s = target or served(registry, endpoint)
    end = time.time() if now is None else now
    rows = registry.sketches(endpoint, since=int(end - window_s), version=s.mv.version)
    report = _report(s, merged(rows, s.profile.reference.counts.size), (end - window_s, end))
    report.online_accuracy, report.labelled_rows = online_accuracy(
        registry, endpoint, s.mv.version, end - window_s
    )
    return report


def _report(s: Served, sketch: Sketch, window: tuple[float, float]) -> DriftReport:
    if s.profile.source == "none":
        return DriftReport(s.endpoint, s.mv.name, s.mv.version, sketch.rows, window, "no reference")
    return evaluate(
        s.profile,
        sketch,
        s.thresholds,
        endpoint=s.endpoint,
        model=s.mv.name,
        version=s.mv.version,
        window=window,
    )


def history(
    registry: Any,
    endpoint: str,
    *,
    since: float,
    step_s: float,
    window_s: float | None = None,
    now: float | None = None,
) -> list[DriftReport]:
    """Drift reports every ``step_s`` seconds from ``since``, each over the ``window_s`` (default ``step_s``)
    before it, for whichever version served then (for plots: swaps show as version changes)."""
    end = time.time() if now is None else now
    window = window_s or step_s
    rows = registry.sketches(endpoint, since=int(since - window))
    by_version: dict[int, Served] = {}
    out: list[DriftReport] = []
    for t in np.arange(since + step_s, end + step_s, step_s):
        inside = [r for r in rows if t - window <= r.window_start < t]
        if not inside:
            continue
        version = max(inside, key=lambda r: (r.rows, r.version)).version
        if version not in by_version:
            by_version[version] = _served_version(registry, endpoint, inside[0].model, version)
        s = by_version[version]
        sketch = merged([r for r in inside if r.version == version], s.profile.reference.counts.size)
        out.append(_report(s, sketch, (float(t - window), float(t))))
    return out


def _served_version(registry: Any, endpoint: str, model: str, version: int, mv: Any = None) -> Served:
    mv = mv or registry.resolve(f"{model}@{version}")
    thresholds = Thresholds.from_json(registry.drift_thresholds(model))
    return Served(endpoint, mv, reference(registry, mv), thresholds)


def alerts(registry: Any, endpoint: str | None = None) -> list[Any]:
    """Alert states (``registry.drift.AlertState``: endpoint, kind, state firing/resolved, since, detail)."""
    return list(registry.alerts(endpoint))


def firing(registry: Any, endpoint: str) -> list[str]:
    """The kinds of alert firing now for ``endpoint`` ("drift", "quality", "accuracy")."""
    return [a.kind for a in registry.alerts(endpoint) if a.state == "firing"]
