"""Text transforms. ``text.join_labels``: per-element labels (and boxes) -> one string, left to right."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.errors import ValidationError
from modelrunner.pipelines.transforms.base import Columns, TransformInfo, ragged


def _join(labels: np.ndarray, boxes: np.ndarray | None, separator: str) -> str:
    labels = np.asarray(labels).reshape(-1)
    if boxes is not None and np.size(boxes):  # an unconnected optional input arrives empty
        boxes = np.asarray(boxes).reshape(-1, 4)
        if len(boxes) != len(labels):
            raise ValidationError(
                f"field 'boxes': {len(boxes)} boxes for {len(labels)} labels", field="boxes"
            )
        labels = labels[np.argsort(boxes[:, 0], kind="stable")]
    return separator.join(str(v) for v in labels.tolist())


def join_labels(columns: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> Columns:
    labels = columns["labels"]
    boxes = columns.get("boxes")
    texts = [
        _join(labels[i], None if boxes is None else boxes[i], str(options["separator"]))
        for i in range(len(labels))
    ]
    return {"text": ragged(texts)}


JOIN_LABELS = TransformInfo(
    name="text.join_labels",
    description="Join a row's labels into one string, ordered by the left edge of their boxes when given.",
    contract=Contract.build(
        [
            Field(name="labels", dtype=DType.INT64, shape=(-1,), description="one label per element"),
            Field(
                name="boxes",
                dtype=DType.INT64,
                shape=(-1, 4),
                optional=True,
                description="x0, y0, x1, y1 per element; orders the labels left to right",
            ),
        ],
        [Field(name="text", dtype=DType.STRING, description="the labels joined")],
    ),
    fn=join_labels,
    options={"separator": ""},
)

TRANSFORMS = (JOIN_LABELS,)
