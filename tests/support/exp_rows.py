"""Prediction-log rows built in memory, shaped like the registry's ``LabelledRow`` (for the pure tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelrunner.contract import Contract, DType, Field


@dataclass
class Row:
    request_id: str
    variant: str
    model: str
    version: int | None
    latency_ms: float
    error: str | None
    outputs: Any
    target: Any = None


def contract(output: str = "label", dtype: DType = DType.INT64) -> Contract:
    return Contract.build(
        [Field(name="input", dtype=DType.FLOAT64, shape=(4,))], [Field(name=output, dtype=dtype, shape=())]
    )


def rows(
    variant: str,
    preds: list[Any],
    targets: list[Any] | None = None,
    *,
    output: str = "label",
    version: int = 1,
    latency: float = 2.0,
    prefix: str = "",
) -> list[Row]:
    targets = targets if targets is not None else [None] * len(preds)
    return [
        Row(
            f"{prefix or variant}-{i}",
            variant,
            "m",
            version,
            latency + (i % 10) * 0.1,
            None,
            {output: [p]},
            t,
        )
        for i, (p, t) in enumerate(zip(preds, targets, strict=True))
    ]
