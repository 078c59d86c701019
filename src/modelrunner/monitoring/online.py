"""True online accuracy: the logged predictions of a version joined with the labels fed back for them
(``Registry.labelled``: the prediction log and feedback of the online-tests work)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrunner.monitoring.sketch import category_key

LABEL_NAMES = ("label", "labels", "class", "prediction", "predicted", "output")


def online_accuracy(registry: Any, endpoint: str, version: int, since: float) -> tuple[float | None, int]:
    """(accuracy, labelled rows) of ``endpoint``'s predictions by ``version`` logged since ``since`` (epoch
    seconds) that got feedback; (None, 0) without any (or a registry without a prediction log)."""
    labelled = getattr(registry, "labelled", None)
    if labelled is None:
        return None, 0
    hits = total = 0
    for row in labelled(endpoint, since=datetime.fromtimestamp(since, UTC)):
        if row.version != version or row.error:
            continue
        predicted = predicted_labels(row.outputs)
        targets = row.target if isinstance(row.target, list) else [row.target]
        if predicted is None or len(predicted) != len(targets):
            continue
        for p, t in zip(predicted, targets, strict=True):
            hits += category_key(p) == category_key(t)
            total += 1
    return (hits / total if total else None), total


def predicted_labels(outputs: Any) -> list[Any] | None:
    """The predicted label of each row of logged outputs (JSON columns): the output named like a label,
    else the only output holding one scalar per row."""
    if not isinstance(outputs, dict):
        return None
    scalar = {
        k: v for k, v in outputs.items() if isinstance(v, list) and v and not isinstance(v[0], list | dict)
    }
    for name in LABEL_NAMES:
        if name in scalar:
            return list(scalar[name])
    return list(next(iter(scalar.values()))) if len(scalar) == 1 else None
