"""Writing a prediction log and its feedback the way the runner does, from real model answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelrunner.registry.types import PredictionRecord


def log_answers(
    registry: Any,
    experiment: Any,
    variant: str,
    ref: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    prefix: str,
    latency_ms: float = 2.0,
) -> list[str]:
    """Predict ``x`` with ``ref`` (one request per row), log it under ``variant``, send ``y`` as feedback."""
    from modelrunner.bundle import open_bundle

    mv = registry.resolve(ref)
    predictor = open_bundle(registry.fetch(mv)).load()
    try:
        labels = predictor.predict({"input": x})["label"]
    finally:
        predictor.close()
    ids = [f"{prefix}-{i}" for i in range(len(x))]
    now = datetime.now(UTC)
    registry.log_predictions(
        [
            PredictionRecord(
                request_id=rid,
                endpoint=experiment.endpoint,
                variant=variant,
                model=mv.name,
                version=mv.version,
                ts=now,
                latency_ms=latency_ms + (i % 7) * 0.1,
                outputs={"label": [int(label)]},
                experiment_id=experiment.id,
            )
            for i, (rid, label) in enumerate(zip(ids, labels, strict=True))
        ]
    )
    registry.record_feedback(experiment.endpoint, [(rid, int(t)) for rid, t in zip(ids, y, strict=True)])
    return ids
