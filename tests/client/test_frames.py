"""Client-side encoding of pandas/numpy inputs and decoding of answers (no server needed)."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

import modelrunner as mr
from modelrunner.client.frames import as_columns, decode_outputs, encode_inputs


def test_dataframe_cells_times_and_missing_values_encode() -> None:
    frame = pd.DataFrame(
        {
            "x": [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
            "when": pd.to_datetime(["2024-01-01 10:00", None]),
            "tz": pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC"),
            "kind": pd.Categorical(["a", "b"]),
        }
    )
    columns, shape = as_columns(frame)
    assert shape is not None and list(shape.index) == [0, 1]
    body = orjson.loads(encode_inputs(columns))["inputs"]
    assert body["x"] == [[1.0, 2.0], [3.0, 4.0]]
    assert body["when"] == ["2024-01-01T10:00:00.000000", None]
    assert body["tz"][0].startswith("2024-01-01T00:00:00")
    assert body["kind"] == ["a", "b"]


def test_rows_and_arrays_encode_as_instances() -> None:
    rows = orjson.loads(encode_inputs(np.arange(4.0).reshape(2, 2)))
    assert rows == {"instances": [[0.0, 1.0], [2.0, 3.0]]}
    assert orjson.loads(encode_inputs([{"a": 1}])) == {"instances": [{"a": 1}]}
    with pytest.raises(mr.InvalidArgument, match="0-d"):
        encode_inputs(np.array(1.0))


def test_answers_decode_to_numpy_columns() -> None:
    pred = decode_outputs(
        {"model": "m", "version": 2, "predictions": [{"label": 1, "text": "a"}, {"label": 0, "text": "b"}]}
    )
    assert pred["label"].dtype == np.int64 and pred["text"].dtype == object
    assert (pred.model, pred.version) == ("m", 2)
    frame = decode_outputs({"outputs": {"proba": [[0.1, 0.9], [0.5, 0.5]]}}).to_frame(index=["p", "q"])
    assert list(frame.index) == ["p", "q"] and frame.loc["q", "proba"].tolist() == [0.5, 0.5]
    with pytest.raises(mr.InvalidArgument, match="neither"):
        decode_outputs({"oops": 1})
