"""Array transforms: ``array.max`` and ``array.argmax`` over the last axis (e.g. a confidence per element)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.pipelines.transforms.base import Columns, TransformInfo


def _max(columns: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> Columns:
    values = np.asarray(columns["values"], dtype=np.float64)
    return {"max": values.max(axis=-1) if values.shape[-1] else np.zeros(values.shape[:-1])}


def _argmax(columns: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> Columns:
    values = np.asarray(columns["values"], dtype=np.float64)
    if not values.shape[-1]:
        return {"index": np.zeros(values.shape[:-1], dtype=np.int64)}
    return {"index": values.argmax(axis=-1).astype(np.int64)}


_VALUES = Field(name="values", dtype=DType.FLOAT64, shape=(-1,), description="a vector per row")

MAX = TransformInfo(
    name="array.max",
    description="The largest value of each row's vector (e.g. a class probability).",
    contract=Contract.build([_VALUES], [Field(name="max", dtype=DType.FLOAT64)]),
    fn=_max,
)
ARGMAX = TransformInfo(
    name="array.argmax",
    description="The index of the largest value of each row's vector.",
    contract=Contract.build([_VALUES], [Field(name="index", dtype=DType.INT64)]),
    fn=_argmax,
)

TRANSFORMS = (MAX, ARGMAX)
