"""Shared printing helpers for CLI commands: one stdout console, times, contracts, small values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from modelrunner.contract import Contract
from modelrunner.registry.changes import change_text, compact

__all__ = ["aliases_text", "change_text", "compact", "console", "contract_table", "metrics_text", "when"]

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
