"""JSON Schema of the native bodies (checked with jsonschema against real bodies) and V2 metadata."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pytest

from modelrunner.contract import (
    Contract,
    DType,
    Field,
    decode_json_request,
    encode_json_response,
    json_schema,
    v2_metadata,
    validate_batch,
)


def f(name: str, dtype: str = "float32", shape: tuple[int, ...] = (), **kw: Any) -> Field:
    return Field(name=name, dtype=DType(dtype), shape=shape, **kw)


C = Contract.build(
    [
        f("x", shape=(2, -1), description="a matrix"),
        f("n", "uint8"),
        f("tag", "string", optional=True),
        f("raw", "bytes", optional=True),
    ],
    [f("label", "int64"), f("proba", shape=(3,)), f("ok", "bool")],
)
ONE = Contract.build([f("pixels", shape=(4,))], [f("y", "int32")])


def check(schema: dict[str, Any], body: Any) -> bool:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema).is_valid(body)


@pytest.mark.parametrize(
    "body",
    [
        {
            "instances": [
                {"x": [[1, 2.5], [3, 4]], "n": 255},
                {"x": [[1, 0], [2, 0]], "n": 0, "tag": "a", "raw": "AAE="},
            ]
        },
        {"inputs": {"x": [[[1.0], [2.0]]], "n": [3]}},
        {"instances": []},
    ],
)
def test_valid_requests_pass_the_schema_and_the_decoder(body: dict[str, Any]) -> None:
    schema = json_schema(C)["request"]
    assert check(schema, body)
    columns, _style = decode_json_request(body, C.inputs)
    validate_batch(C.inputs, columns)


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [{"x": [[1, 2]], "n": 1}]},  # x needs 2 rows of values
        {"instances": [{"x": [[1], [2]], "n": 256}]},  # uint8 range
        {"instances": [{"x": [[1], [2]], "n": 1.5}]},  # integer
        {"instances": [{"x": [[1], [2]]}]},  # n required
        {"instances": [{"x": [[1], [2]], "n": 1, "other": 1}]},  # unknown input
        {"inputs": {"n": [1]}},
        {"instances": [], "inputs": {}},
        {"rows": []},
    ],
)
def test_invalid_requests_fail_the_schema(body: dict[str, Any]) -> None:
    assert not check(json_schema(C)["request"], body)


def test_single_input_contract_accepts_bare_rows() -> None:
    schema = json_schema(ONE)["request"]
    assert check(schema, {"instances": [[1, 2, 3, 4]]})
    assert check(schema, {"instances": [{"pixels": [1, 2, 3, 4]}]})
    assert not check(schema, {"instances": [[1, 2, 3]]})


def test_responses_match_the_response_schema() -> None:
    out = {"label": np.array([1, 2]), "proba": np.zeros((2, 3), np.float32), "ok": np.array([True, False])}
    schema = json_schema(C)["response"]
    for style in ("instances", "inputs"):
        assert check(schema, encode_json_response(out, style))
    assert not check(schema, {"predictions": [{"label": 1, "proba": [0, 0, 0]}]})  # ok is missing


def test_descriptions_and_bytes_encoding_in_schema() -> None:
    row = json_schema(C)["request"]["oneOf"][0]["properties"]["instances"]["items"]
    assert row["properties"]["x"]["description"] == "a matrix"
    assert row["properties"]["raw"] == {"type": "string", "contentEncoding": "base64"}
    assert row["required"] == ["x", "n"]


def test_v2_metadata() -> None:
    meta = v2_metadata(C, "digits", ["3"])
    assert meta == {
        "name": "digits",
        "versions": ["3"],
        "platform": "modelrunner",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 2, -1]},
            {"name": "n", "datatype": "UINT8", "shape": [-1]},
            {"name": "tag", "datatype": "BYTES", "shape": [-1]},
            {"name": "raw", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "proba", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "ok", "datatype": "BOOL", "shape": [-1]},
        ],
    }
    assert v2_metadata(C, "m", platform="sklearn")["platform"] == "sklearn"
