"""An audit entry's change as one line of text (``modelrunner audit`` and the catalog's audit page)."""

from __future__ import annotations

import json
from typing import Any


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
