"""Client-side data shapes: what ``predict`` accepts (rows, columns, numpy, pandas) -> a JSON body, and the
JSON answer -> numpy columns or a DataFrame. pandas is never imported unless the caller uses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from modelrunner.errors import InvalidArgument

_OPTS = orjson.OPT_SERIALIZE_NUMPY


class Prediction(dict[str, np.ndarray]):
    """Output columns (``name -> numpy array``, one entry per row) and which model version answered."""

    model: str | None = None
    version: int | None = None
    request_id: str | None = None  # what to send feedback for (``Client.feedback``)
    variant: str | None = None  # production, candidate (canary/ab) — see docs/experiments.md

    def to_frame(self, index: Any = None) -> Any:
        """These columns as a pandas DataFrame (a multi-value output becomes one array per cell)."""
        import pandas as pd

        data = {name: (list(col) if col.ndim > 1 else col) for name, col in self.items()}
        frame = pd.DataFrame(data, index=index)
        frame.attrs.update(model=self.model, version=self.version)
        return frame


class _Frame:
    """What is kept of an input DataFrame to shape the answer like it (its index)."""

    def __init__(self, index: Any) -> None:
        self.index = index


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "index")


def _frame_column(values: np.ndarray) -> np.ndarray:
    """A DataFrame column -> what the wire carries: cells holding arrays/lists are stacked into one array."""
    if values.dtype == object and len(values) and isinstance(values[0], np.ndarray | list | tuple):
        return np.stack([np.asarray(v) for v in values])
    stamped: np.ndarray = _timestamps(values)
    return stamped


def _timestamps(values: Any) -> Any:
    """datetime64 -> ISO 8601 strings (a missing time, NaT, is null): what the JSON routes read."""
    if not isinstance(values, np.ndarray) or values.dtype.kind != "M":
        return values
    out = np.datetime_as_string(values).astype(object)
    out[np.isnat(values)] = None
    return out


def _default(obj: Any) -> Any:
    """What orjson does not write natively: object or non-contiguous arrays, numpy scalars, timestamps."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if hasattr(obj, "isoformat"):  # pandas.Timestamp
        return obj.isoformat()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    if type(obj).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    raise TypeError(f"cannot send a {type(obj).__name__} value")


def as_columns(data: Any) -> tuple[Any, _Frame | None]:
    """A DataFrame -> (a column per input, its index); anything else is returned as is."""
    if _is_frame(data):
        return {str(c): _frame_column(data[c].to_numpy()) for c in data.columns}, _Frame(data.index)
    return data, None


def encode_inputs(data: Any) -> bytes:
    """``predict``'s input (rows, columns or a numpy array; a DataFrame made columns) -> a JSON body."""
    if isinstance(data, Mapping):
        body: dict[str, Any] = {"inputs": {name: _timestamps(v) for name, v in data.items()}}
    elif isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise InvalidArgument("predict needs a batch: a 0-d array is one value, not rows")
        body = {"instances": data}
    elif isinstance(data, list | tuple):
        body = {"instances": list(data)}
    else:
        raise InvalidArgument(
            "predict takes rows (a list), columns (a dict), a numpy array or a pandas "
            f"DataFrame, got {type(data).__name__}"
        )
    try:
        return orjson.dumps(body, default=_default, option=_OPTS)
    except TypeError as exc:
        raise InvalidArgument(f"cannot encode the input as JSON: {exc}") from None


def _column(values: list[Any]) -> np.ndarray:
    arr = np.asarray(values) if values and not isinstance(values[0], dict) else np.array(values, dtype=object)
    return arr.astype(object) if arr.dtype.kind == "U" else arr  # strings are object arrays, as in contracts


def decode_outputs(answer: Any) -> Prediction:
    """A predict answer (``outputs`` columns or ``predictions`` rows) -> a :class:`Prediction`."""
    if not isinstance(answer, dict):
        raise InvalidArgument(f"the server's answer is not a predict result: {str(answer)[:80]}")
    pred = Prediction()
    if isinstance(answer.get("outputs"), dict):
        for name, values in answer["outputs"].items():
            pred[name] = _column(values)
    elif isinstance(answer.get("predictions"), list):
        rows = answer["predictions"]
        names = list(rows[0]) if rows and isinstance(rows[0], dict) else []
        for name in names:
            pred[name] = _column([row.get(name) for row in rows])
    else:
        raise InvalidArgument(f"the server's answer has neither outputs nor predictions: {str(answer)[:80]}")
    pred.model = answer.get("model")
    pred.version = answer.get("version")
    pred.request_id = answer.get("request_id")
    pred.variant = answer.get("variant")
    return pred
