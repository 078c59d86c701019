"""Shared printing helpers for CLI commands: one stdout console, times, contracts, small values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from modelrunner.contract import Contract

_WIDE = 160  # when stdout is not a terminal, do not squeeze tables into 80 columns


def console() -> Console:
    """A console on the current stdout (created per call so tests capturing stdout see the output)."""
    probe = Console(highlight=False)
    if probe.is_terminal:
        return probe
    return Console(highlight=False, width=_WIDE, no_color=True)


def when(value: datetime | None) -> str:
    """A timestamp in local time, to the second; ``-`` when unknown."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def compact(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a JSON-like value."""
    if value is None:
        return "-"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


_NOISE = frozenset({"generation", "updated_at", "updated_by", "created_at", "previous_target", "size"})
_FIRST = ("target", "version", "alias")


def _order(keys: set[str]) -> list[str]:
    return [k for k in _FIRST if k in keys] + sorted(k for k in keys if k not in _FIRST and k not in _NOISE)


def change_text(before: Any, after: Any, limit: int = 90) -> str:
    """What an audit entry changed: ``target: a -> b`` per differing key, or the created / removed value."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in _order(set(before) | set(after)) if before.get(k) != after.get(k)]
        parts = [f"{k}: {compact(before.get(k), 30)} -> {compact(after.get(k), 30)}" for k in keys]
        return compact("; ".join(parts) or "no change", limit)
    if before is None:
        return "+ " + _fields(after, limit - 2)
    if after is None:
        return "- " + _fields(before, limit - 2)
    return compact(f"{compact(before, 40)} -> {compact(after, 40)}", limit)


def _fields(value: Any, limit: int) -> str:
    if isinstance(value, dict):
        shown = {k: value[k] for k in _order(set(value)) if value[k] not in ({}, None)}
        if isinstance(shown.get("sha256"), str):
            shown["sha256"] = shown["sha256"][:12]
        return compact(" ".join(f"{k}={compact(v, 30)}" for k, v in shown.items()), limit)
    return compact(value, limit)


def metrics_text(metrics: dict[str, Any] | None) -> str:
    """``accuracy=0.9667 f1=0.95``; ``-`` when empty."""
    if not metrics:
        return "-"
    parts = []
    for key, value in sorted(metrics.items()):
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, int | str | bool):
            shown = str(value)
        else:
            shown = compact(value, 30)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def aliases_text(aliases: dict[str, int] | None) -> str:
    """``production->1, staging->2``; ``-`` when none."""
    if not aliases:
        return "-"
    return ", ".join(f"{alias}->{version}" for alias, version in sorted(aliases.items()))


def contract_table(contract: Contract, title: str = "contract") -> Table:
    """One row per field: side, number, name, type, description."""
    table = Table(title=f"{title} (version {contract.version})", title_justify="left")
    for column in ("side", "#", "field", "type", "description"):
        table.add_column(column)
    for side, fields in (("input", contract.inputs), ("output", contract.outputs)):
        for field in fields:
            kind = field.describe() + (" (optional)" if field.optional else "")
            table.add_row(side, str(field.number), field.name, kind, field.description or "")
    return table
