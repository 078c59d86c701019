"""Codecs: JSON rows/columns <-> columns, V2 tensors (JSON and raw) <-> columns."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import pytest

from modelrunner.contract import (
    DType,
    Field,
    column_from_raw,
    column_to_raw,
    column_to_tensor,
    columns_from_json,
    columns_to_rows,
    decode_json_request,
    dtype_from_v2,
    encode_json_response,
    rows_to_columns,
    tensor_to_column,
    to_jsonable,
    v2_datatype,
    validate_batch,
)
from modelrunner.errors import ContractError, ValidationError


def f(name: str, dtype: str = "float32", shape: tuple[int, ...] = (), **kw: Any) -> Field:
    return Field(name=name, dtype=DType(dtype), shape=shape, **kw)


FIELDS = (
    f("x", shape=(2,)),
    f("k", "int64"),
    f("s", "string"),
    f("b", "bytes", optional=True),
    f("t", optional=True, default=0.5),
)


def test_rows_to_columns_and_back() -> None:
    rows = [
        {"x": [1, 2], "k": 3, "s": "a", "b": base64.b64encode(b"\x00\x01").decode()},
        {"x": [3.5, 4], "k": -1, "s": "é", "t": 2.0},
    ]
    cols = validate_batch(FIELDS, rows_to_columns(rows, FIELDS))
    assert cols["x"].dtype == np.float32 and cols["x"].tolist() == [[1, 2], [3.5, 4]]
    assert cols["b"].tolist() == [b"\x00\x01", b""] and cols["t"].tolist() == [0.5, 2.0]
    back = columns_to_rows(cols)
    assert back[0] == {"x": [1.0, 2.0], "k": 3, "s": "a", "b": "AAE=", "t": 0.5}
    json.dumps(back)  # JSON-able python values


def test_bare_rows_for_a_single_input() -> None:
    one = (f("pixels", shape=(3,)),)
    assert rows_to_columns([[1, 2, 3], [4, 5, 6]], one)["pixels"].shape == (2, 3)
    assert rows_to_columns([1.5, 2], (f("v"),))["v"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"x": [1, 2], "s": "a"}], "row 0: missing input 'k' (int64)"),
        ([{"x": [1, 2], "k": 1, "s": "a", "zz": 1}], "row 0: unknown input 'zz'"),
        ([{"x": [1, 2], "k": 1, "s": "a"}, 5], "row 1 must be an object of input values, got int"),
        (
            [{"x": [1, 2], "k": 1, "s": "a", "b": "not base64!"}],
            "input 'b': bytes values must be base64 strings",
        ),
        ([{"x": [1, 2], "k": 1.5, "s": "a"}], "input 'k': expected dtype int64, got float64"),
        ({"x": [1]}, "'instances' must be a list of rows, got dict"),
    ],
)
def test_rows_errors(rows: Any, message: str) -> None:
    with pytest.raises(ValidationError, match="^" + message.replace("(", "\\(").replace(")", "\\)")):
        rows_to_columns(rows, FIELDS)


def test_empty_instances_are_a_zero_row_batch() -> None:
    cols = rows_to_columns([], FIELDS)
    assert cols["x"].shape == (0, 2) and batch_size_of(cols) == 0


def batch_size_of(cols: dict[str, np.ndarray]) -> int:
    from modelrunner.contract import batch_size

    return batch_size(cols)


def test_json_request_styles_and_responses() -> None:
    cols, style = decode_json_request({"inputs": {"x": [[1, 2]], "k": [1], "s": ["z"], "other": [1]}}, FIELDS)
    assert style == "inputs" and cols["other"] == [1]  # unknown names are left for the validator
    with pytest.raises(ValidationError, match="unknown input 'other'"):
        validate_batch(FIELDS, cols)
    _, style = decode_json_request({"instances": [{"x": [1, 2], "k": 1, "s": "z"}]}, FIELDS)
    assert style == "instances"
    with pytest.raises(ValidationError, match="must be"):
        decode_json_request({"data": []}, FIELDS)
    with pytest.raises(ValidationError, match="'inputs' must be an object"):
        columns_from_json([1], FIELDS)  # type: ignore[arg-type]
    out = {"y": np.array([1, 2]), "z": np.array([b"\xff", b""], dtype=object)}
    rows = [{"y": 1, "z": "/w=="}, {"y": 2, "z": ""}]
    assert encode_json_response(out, "instances") == {"predictions": rows}
    assert encode_json_response(out, "inputs") == {"outputs": {"y": [1, 2], "z": ["/w==", ""]}}
    assert to_jsonable({"h": np.array([0.5], np.float16)}) == {"h": [0.5]}


@pytest.mark.parametrize(
    ("dtype", "v2"),
    [
        ("bool", "BOOL"),
        ("int8", "INT8"),
        ("int16", "INT16"),
        ("int32", "INT32"),
        ("int64", "INT64"),
        ("uint8", "UINT8"),
        ("uint16", "UINT16"),
        ("uint32", "UINT32"),
        ("uint64", "UINT64"),
        ("float16", "FP16"),
        ("float32", "FP32"),
        ("float64", "FP64"),
        ("bytes", "BYTES"),
    ],
)
def test_v2_datatypes_round_trip(dtype: str, v2: str) -> None:
    assert v2_datatype(DType(dtype)) == v2 == v2_datatype(dtype)
    assert dtype_from_v2(v2) is DType(dtype)
    if dtype != "bytes":
        assert v2_datatype(np.dtype(dtype)) == v2


def test_v2_datatype_odd_cases() -> None:
    assert v2_datatype(DType.STRING) == "BYTES" and v2_datatype(np.dtype("U3")) == "BYTES"
    assert v2_datatype(np.dtype(object)) == "BYTES"
    with pytest.raises(ValidationError, match="unknown V2 datatype 'FP8'"):
        dtype_from_v2("FP8")
    with pytest.raises(ContractError):
        v2_datatype(np.dtype("complex64"))


def test_tensor_to_column_flat_or_nested_and_coerced() -> None:
    field = f("x", shape=(2,))
    flat = tensor_to_column("x", [2, 2], "FP64", [1, 2, 3, 4], field)
    nested = tensor_to_column("x", [2, 2], "INT64", [[1, 2], [3, 4]], field)
    assert flat.dtype == nested.dtype == np.float32 and flat.tolist() == nested.tolist() == [[1, 2], [3, 4]]
    s = tensor_to_column("s", [2], "BYTES", ["a", "b"], f("s", "string"))
    assert s.tolist() == ["a", "b"]
    b = tensor_to_column("b", [1], "BYTES", ["hi"], f("b", "bytes"))
    assert b.tolist() == [b"hi"]
    scalar = tensor_to_column("v", [2, 1], "INT32", [1, 2], f("v", "int64"))  # Triton's [n, 1] scalars
    assert scalar.shape == (2,) and scalar.dtype == np.int64


@pytest.mark.parametrize(
    ("shape", "datatype", "data", "field", "message"),
    [
        ([3], "FP32", [1, 2], f("x"), "tensor 'x': shape [3] does not match its 2 values"),
        ([2], "INT32", [1.5, 2], f("x", "int32"), "tensor 'x': data does not hold INT32 values"),
        ([1], "INT8", [300], f("x", "int32"), "tensor 'x': data out of range for INT8"),
        ([1], "FP32", [1.0], f("x", "int32"), "input 'x': expected dtype int32, got float32"),
        ([1], "BYTES", ["a"], f("x"), "tensor 'x': datatype BYTES does not fit input 'x' (float32, V2 FP32)"),
        ([1], "FP32", ["a"], f("x"), "tensor 'x': data does not hold FP32 values"),
        (["a"], "FP32", [1], f("x"), "tensor 'x': shape must be a list of integers"),
        ([1], "INT4", [1], f("x"), "unknown V2 datatype 'INT4'"),
    ],
)
def test_tensor_errors(shape: Any, datatype: str, data: Any, field: Field, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        tensor_to_column("x", shape, datatype, data, field)
    assert str(info.value).startswith(message)


def test_column_to_tensor() -> None:
    t = column_to_tensor("p", np.array([[1, 2], [3, 4]], np.float32))
    assert t == {"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}
    t = column_to_tensor("s", np.array(["a", b"b"], dtype=object))
    assert t["datatype"] == "BYTES" and t["data"] == ["a", "b"]


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "uint16", "int32", "int64", "uint64", "float16", "float32", "float64"]
)
def test_raw_round_trip_is_little_endian(dtype: str) -> None:
    arr = (np.arange(6) % 2 == 0) if dtype == "bool" else np.arange(6).astype(dtype)
    arr = arr.reshape(2, 3)
    raw = column_to_raw(arr)
    assert raw == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    back = column_from_raw(raw, [2, 3], v2_datatype(arr.dtype))
    assert back.dtype == arr.dtype and back.tolist() == arr.tolist() and back.flags.writeable
    big = arr.astype(arr.dtype.newbyteorder(">"))
    assert column_to_raw(big) == raw


def test_raw_bytes_use_length_prefixes() -> None:
    arr = np.array([b"ab", b"", "é"], dtype=object)
    raw = column_to_raw(arr)
    assert raw == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 2) + "é".encode()
    assert column_from_raw(raw, [3], "BYTES").tolist() == [b"ab", b"", "é".encode()]
    with pytest.raises(ValidationError, match="truncated"):
        column_from_raw(raw[:-1] + b"\x00\x00", [3], "BYTES")
    with pytest.raises(ValidationError, match="longer than the raw data"):
        column_from_raw(raw[:-1], [3], "BYTES")
    with pytest.raises(ValidationError, match="shape \\[2\\] does not match its 3 values"):
        column_from_raw(raw, [2], "BYTES")
    with pytest.raises(ValidationError, match="not a whole number of FP32 values"):
        column_from_raw(b"\x00" * 7, [2], "FP32")


MIXED = (f("at", "timestamp"), f("city", "category", categories=("oslo", "rome")), f("x", "float64"))


def test_timestamps_and_categories_in_json_rows_and_columns() -> None:
    rows = [
        {"at": "2024-05-01T12:30:00Z", "city": "oslo", "x": 1.0},
        {"at": "2024-05-01T12:30:00.5-01:00", "city": "rome", "x": 2.0},
    ]
    cols = rows_to_columns(rows, MIXED)
    assert cols["at"].dtype == np.dtype("datetime64[us]") and cols["city"].tolist() == ["oslo", "rome"]
    back = columns_to_rows(cols)
    assert [r["at"] for r in back] == ["2024-05-01T12:30:00Z", "2024-05-01T13:30:00.500000Z"]
    assert rows_to_columns(back, MIXED)["at"].tolist() == cols["at"].tolist()
    assert to_jsonable({"at": np.array(["NaT"], "datetime64[us]")}) == {"at": [None]}
    with pytest.raises(ValidationError, match="'may' is not a timestamp"):
        columns_from_json({"at": ["may"], "city": ["oslo"], "x": [1.0]}, MIXED)
    with pytest.raises(ValidationError, match="'lima' is not one of its categories"):
        rows_to_columns([{**rows[0], "city": "lima"}], MIXED)


def test_timestamps_in_v2_as_iso_bytes_or_int64_micros() -> None:
    at = MIXED[0]
    stamps = np.array(["2024-05-01T12:30:00", "1969-12-31T23:59:59"], dtype="datetime64[us]")
    tensor = column_to_tensor("at", stamps)
    assert tensor["datatype"] == "BYTES"
    assert tensor["data"] == ["2024-05-01T12:30:00Z", "1969-12-31T23:59:59Z"]
    assert tensor["parameters"] == {"content_type": "datetime"}
    assert tensor_to_column("at", [2], "BYTES", tensor["data"], at).tolist() == stamps.tolist()
    micros = stamps.astype(np.int64).tolist()
    assert tensor_to_column("at", [2], "INT64", micros, at).tolist() == stamps.tolist()
    raw = column_to_raw(stamps)
    assert (
        tensor_to_column("at", [2], "BYTES", list(column_from_raw(raw, [2], "BYTES")), at).tolist()
        == stamps.tolist()
    )
    with pytest.raises(ValidationError, match="datatype FP32 does not fit input 'at'"):
        tensor_to_column("at", [1], "FP32", [1.0], at)
    assert v2_datatype(DType.CATEGORY) == "BYTES" and v2_datatype(np.dtype("datetime64[ns]")) == "BYTES"


def test_wanted_outputs_are_checked_against_the_contract() -> None:
    from modelrunner.contract.codecs import select_outputs, wanted_outputs

    outs = (Field(name="label", dtype=DType.INT64), Field(name="proba", dtype=DType.FLOAT64, shape=(2,)))
    assert wanted_outputs({"instances": []}, outs) is None
    assert wanted_outputs({"instances": [], "outputs": ["proba", "label", "proba"]}, outs) == (
        "proba",
        "label",
    )
    for bad, field in ((["nope"], "nope"), ([], "outputs"), ("label", "outputs"), ([1], "outputs")):
        with pytest.raises(ValidationError) as err:
            wanted_outputs({"inputs": {}, "outputs": bad}, outs)
        assert err.value.field == field
    columns = {"label": np.array([1]), "proba": np.array([[0.2, 0.8]])}
    assert list(select_outputs(columns, ("proba",))) == ["proba"]
    assert select_outputs(columns, None) is columns
