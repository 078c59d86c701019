"""When to train: ``drift`` (a firing drift alert on the endpoint), ``labels>=N`` (new labelled rows since the
last run started), ``every=1h`` (the last run started that long ago), or none (= now, manual).

``due(...)`` returns the reason of the first trigger that fires (recorded as the run's trigger) or the list of
reasons why none did (printed by a one-shot run, which then exits 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelrunner.errors import InvalidArgument
from modelrunner.registry.tables import utcnow

_LABELS = re.compile(r"^labels\s*>=\s*(\d+)$")
_EVERY = re.compile(r"^every\s*=\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class Trigger:
    kind: str  # drift | labels | every
    text: str
    labels: int = 0
    every_s: float = 0.0


def parse_trigger(text: str) -> Trigger:
    """``drift``, ``labels>=500``, ``every=1h`` (s, m, h, d) -> Trigger (InvalidArgument naming it)."""
    t = (text or "").strip().lower()
    if t == "drift":
        return Trigger("drift", "drift")
    if m := _LABELS.match(t):
        if int(m.group(1)) < 1:
            raise InvalidArgument(f"--trigger {text!r}: the label count must be at least 1", field="trigger")
        return Trigger("labels", f"labels>={int(m.group(1))}", labels=int(m.group(1)))
    if m := _EVERY.match(t):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if seconds <= 0:
            raise InvalidArgument(f"--trigger {text!r}: the interval must be > 0", field="trigger")
        return Trigger("every", f"every={m.group(1)}{m.group(2) or 's'}", every_s=seconds)
    raise InvalidArgument(
        f"--trigger {text!r}: expected 'drift', 'labels>=N' or 'every=N[s|m|h|d]'", field="trigger"
    )


def _last_run(registry: Any, model: str) -> Any:
    runs = registry.training_runs(model, limit=1)
    return runs[0] if runs else None


def _serving_version(registry: Any, endpoint: str) -> int | None:
    try:
        return int(registry.check_target(registry.endpoint(endpoint).target).version)
    except Exception:  # noqa: BLE001 - no endpoint (yet): no drift either
        return None


def check(
    trigger: Trigger, registry: Any, model: str, endpoint: str, now: datetime | None = None
) -> tuple[bool, str]:
    """(fires, reason) for one trigger."""
    now = now or utcnow()
    last = _last_run(registry, model)
    if trigger.kind == "every":
        if last is None:
            return True, f"{trigger.text}: no earlier training run"
        age = (now - last.started_at).total_seconds()
        if age >= trigger.every_s:
            return True, f"{trigger.text}: the last run started {age:.0f}s ago"
        return False, f"{trigger.text}: the last run started {age:.0f}s ago (< {trigger.every_s:.0f}s)"
    if trigger.kind == "labels":
        since = last.started_at if last is not None else None
        new = len(registry.labelled_inputs(endpoint, since=since))
        word = "since the last run" if last is not None else "in the log"
        if new >= trigger.labels:
            return True, f"{trigger.text}: {new} new labelled rows {word}"
        return False, f"{trigger.text}: {new} new labelled rows {word} (< {trigger.labels})"
    return _drift(registry, model, endpoint, last)


def _drift(registry: Any, model: str, endpoint: str, last: Any) -> tuple[bool, str]:
    firing = [a for a in registry.alerts(endpoint) if a.state == "firing" and a.kind == "drift"]
    if not firing:
        return False, f"drift: no drift alert firing on endpoint {endpoint!r}"
    alert = firing[0]
    serving = _serving_version(registry, endpoint)
    if alert.version is not None and serving is not None and alert.version != serving:
        return False, f"drift: the alert is about version {alert.version}, the endpoint serves {serving} now"
    # one run per alert episode and parent: a refused or failed candidate is not retrained in a loop
    if last is not None and last.parent_version == serving and last.started_at >= alert.since:
        return False, (
            f"drift: run {last.id} ({last.state}) already answered this alert (firing since "
            f"{alert.since:%H:%M:%S} UTC)"
        )
    return True, f"drift: alert firing on endpoint {endpoint!r} since {alert.since:%H:%M:%S} UTC"


def due(triggers: list[Trigger], registry: Any, model: str, endpoint: str) -> tuple[str | None, list[str]]:
    """The reason of the first firing trigger (``manual`` without triggers), and every reason checked."""
    if not triggers:
        return "manual", ["manual"]
    reasons: list[str] = []
    for trigger in triggers:
        fires, reason = check(trigger, registry, model, endpoint)
        reasons.append(reason)
        if fires:
            return reason, reasons
    return None, reasons


def every_interval(triggers: list[Trigger]) -> float | None:
    """The smallest ``every=`` interval (the watch loop's longest useful sleep)."""
    values = [t.every_s for t in triggers if t.kind == "every"]
    return min(values) if values else None


def since_text(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}s"
