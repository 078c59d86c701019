"""Batch validation: presence, unknown fields, shapes, batch size, dtype coercion, defaults, speed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelrunner.contract import Contract, DType, Field, Validator, batch_size, validate_batch, validator
from modelrunner.errors import ContractError, ValidationError


def f(name: str, dtype: str = "float32", shape: tuple[int, ...] = (), **kw: Any) -> Field:
    return Field(name=name, dtype=DType(dtype), shape=shape, **kw)


DIGITS = Contract.build([f("pixels", shape=(64,))], [f("label", "int64")])


def err(fields: tuple[Field, ...], columns: dict[str, Any], **kw: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_batch(fields, columns, **kw)
    return info.value


def test_happy_path_returns_the_same_array_without_copy() -> None:
    x = np.zeros((3, 64), dtype=np.float32)
    out = validate_batch(DIGITS.inputs, {"pixels": x})
    assert out["pixels"] is x


def test_missing_required_input_names_the_field() -> None:
    e = err(DIGITS.inputs, {})
    assert str(e) == "missing input 'pixels' (float32[64])" and e.field == "pixels"


def test_unknown_field_is_rejected_unless_allow_extra() -> None:
    cols = {"pixels": np.zeros((1, 64)), "nope": [1]}
    e = err(DIGITS.inputs, cols)
    assert e.field == "nope" and "unknown input 'nope' (expected: pixels)" in str(e)
    assert set(validate_batch(DIGITS.inputs, cols, allow_extra=True)) == {"pixels"}


def test_shape_mismatch_names_expected_and_actual() -> None:
    e = err(DIGITS.inputs, {"pixels": np.zeros((2, 63))})
    assert str(e) == "input 'pixels': expected per-row shape (64,), got (63,) (batch shape (2, 63))"
    assert e.details["expected"] == "(64,)"
    e = err(DIGITS.inputs, {"pixels": np.zeros(64)})  # one row without the batch dimension
    assert "expected per-row shape (64,), got () (batch shape (64,))" in str(e)
    assert "got a scalar" in str(err(DIGITS.inputs, {"pixels": 1.0}))


def test_variable_dimension_matches_any_size() -> None:
    fields = (f("seq", "int64", (-1, 2)),)
    for n in (0, 1, 7):
        assert validate_batch(fields, {"seq": np.zeros((3, n, 2), dtype=np.int64)})["seq"].shape == (3, n, 2)
    assert "expected per-row shape (?, 2), got (4, 3)" in str(err(fields, {"seq": np.zeros((1, 4, 3))}))


def test_batch_sizes_must_agree() -> None:
    fields = (f("a"), f("b"))
    e = err(fields, {"a": np.zeros(3), "b": np.zeros(2)})
    assert str(e) == "input 'b' has 2 rows but 'a' has 3" and e.field == "b"
    assert batch_size({"a": np.zeros(3), "b": [1, 2, 3]}) == 3
    assert batch_size({}) == 0
    with pytest.raises(ValidationError, match="'b' has 2 rows but 'a' has 3"):
        batch_size({"a": np.zeros(3), "b": np.zeros(2)})
    with pytest.raises(ValidationError, match="scalar"):
        batch_size({"a": 3.0})


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("int64", "float32"),
        ("int8", "float64"),
        ("bool", "float32"),
        ("bool", "int64"),
        ("float64", "float32"),
        ("float32", "float16"),
        ("int64", "int8"),
        ("uint64", "int64"),
        ("int64", "uint8"),
        ("int16", "int16"),
    ],
)
def test_safe_coercions(src: str, dst: str) -> None:
    values = np.array([0, 1, 1], dtype=src)
    out = validate_batch((f("a", dst),), {"a": values})["a"]
    assert out.dtype == np.dtype(dst) and out.tolist() == [0, 1, 1]


def test_float_to_int_is_rejected_with_a_clear_message() -> None:
    e = err((f("a", "int32"),), {"a": [1.0, 2.0]})
    assert str(e) == "input 'a': expected dtype int32, got float64 (floats are not converted to integers)"
    assert e.details == {"field": "a", "expected": "int32", "actual": "float64"}


@pytest.mark.parametrize(
    ("dtype", "values", "message"),
    [
        ("int8", [1, 300], "expected dtype int8, got int64 with values outside [-128, 127]"),
        ("uint16", [-1], "expected dtype uint16, got int64 with values outside [0, 65535]"),
        ("float16", [1e6], "expected dtype float16, got float64 with values out of the float16 range"),
        ("bool", [0, 1], "expected dtype bool, got int64"),
        ("float32", ["1.5"], "expected dtype float32, got string"),
        ("float32", [1.0, None], "expected dtype float32, got object (null or mixed values)"),
        ("string", np.array([1, 2]), "expected dtype string, got int64"),
        ("string", ["a", 2], "expected dtype string, got int value 2"),
        ("bytes", [b"a", None], "expected dtype bytes, got NoneType value None"),
    ],
)
def test_unsafe_or_wrong_values_are_rejected(dtype: str, values: list[Any], message: str) -> None:
    e = err((f("a", dtype),), {"a": values})
    assert str(e) == f"input 'a': {message}" and e.field == "a"


def test_ragged_lists_are_rejected() -> None:
    e = err((f("a", shape=(-1,)),), {"a": [[1.0, 2.0], [3.0]]})
    assert "input 'a': expected float32[?] per row, got rows of different lengths" in str(e)


def test_json_lists_are_converted() -> None:
    out = validate_batch(DIGITS.inputs, {"pixels": [[0.5] * 64, [1] * 64]})
    assert out["pixels"].dtype == np.float32 and out["pixels"].shape == (2, 64)


def test_strings_and_bytes_become_object_arrays() -> None:
    fields = (f("s", "string"), f("b", "bytes", (2,)))
    out = validate_batch(fields, {"s": np.array(["x", "yz"]), "b": [["a", b"b"], [b"c", bytearray(b"d")]]})
    assert out["s"].dtype == object and out["s"].tolist() == ["x", "yz"]
    assert out["b"].dtype == object and out["b"].tolist() == [[b"a", b"b"], [b"c", b"d"]]
    out = validate_batch(fields[:1], {"s": [b"caf\xc3\xa9"]})
    assert out["s"].tolist() == ["café"]
    assert "bytes that are not UTF-8" in str(err(fields[:1], {"s": [b"\xff"]}))
    same = np.array(["a"], dtype=object)
    assert validate_batch(fields[:1], {"s": same})["s"] is same


def test_optional_fields_get_their_default() -> None:
    fields = (
        f("x"),
        f("t", optional=True, default=0.5),
        f("tag", "string", optional=True),
        f("w", shape=(3,), optional=True, default=[1, 2, 3]),
        f("v", "int8", (-1,), optional=True),
        f("m", "int32", (2,), optional=True, default=7),
    )
    out = validate_batch(fields, {"x": np.zeros(2)})
    assert out["t"].tolist() == [0.5, 0.5] and out["t"].dtype == np.float32
    assert out["tag"].tolist() == ["", ""]
    assert out["w"].tolist() == [[1, 2, 3]] * 2 and out["w"].flags.writeable
    assert out["v"].shape == (2, 0)
    assert out["m"].tolist() == [[7, 7]] * 2
    given = validate_batch(fields, {"x": np.zeros(1), "t": [2.0]})
    assert given["t"].tolist() == [2.0]


def test_bad_default_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="default of shape \\(2,\\) does not fit per-row shape \\(3,\\)"):
        Validator((f("w", shape=(3,), optional=True, default=[1, 2]),))
    with pytest.raises(ContractError, match="is not a int8"):
        Validator((f("w", "int8", optional=True, default="abc"),))
    with pytest.raises(ContractError, match="is not a string"):
        Validator((f("w", "string", optional=True, default=3),))


def test_text_defaults_are_converted() -> None:
    out = validate_batch(
        (f("x"), f("b", "bytes", (2,), optional=True, default=["a", b"b"])), {"x": np.zeros(1)}
    )
    assert out["b"].tolist() == [[b"a", b"b"]]


def test_kind_names_the_side_in_messages() -> None:
    e = err(DIGITS.outputs, {"label": [1.5]}, kind="output")
    assert str(e).startswith("output 'label': expected dtype int64, got float64")


def test_validator_is_cached_per_fields_tuple() -> None:
    assert validator(DIGITS.inputs) is validator(DIGITS.inputs)
    assert validator(DIGITS.inputs) is not validator(DIGITS.inputs, allow_extra=True)
    assert validator(list(DIGITS.inputs)) is not validator(list(DIGITS.inputs))  # lists are not cached


def test_not_a_mapping_is_rejected() -> None:
    assert "a batch must map input names to arrays, got list" in str(err(DIGITS.inputs, [1]))  # type: ignore[arg-type]


TS = (f("at", "timestamp"),)


def test_timestamps_from_iso_strings_datetimes_and_epoch_micros() -> None:
    import datetime as dt

    want = np.array(["2024-05-01T12:30:00", "2024-05-01T10:30:00.250000"], dtype="datetime64[us]")
    for given in (
        ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.25+02:00"],
        ["2024-05-01 12:30:00", "2024-05-01T10:30:00.250"],
        [dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), dt.datetime(2024, 5, 1, 10, 30, 0, 250000)],
        want.astype("datetime64[ns]"),
        want.astype(np.int64),
    ):
        out = validate_batch(TS, {"at": given})["at"]
        assert out.dtype == np.dtype("datetime64[us]") and out.tolist() == want.tolist(), given


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (["yesterday"], "input 'at': 'yesterday' is not a timestamp"),
        ([1.5], "input 'at': 1.5 is not a timestamp"),
        ([True], "input 'at': True is not a timestamp"),
        (np.array([1.5]), "expected dtype timestamp, got float64"),
        ([2**63 - 1], "is not a timestamp"),
        (np.array([2**63 - 1]), "out of the timestamp range"),
    ],
)
def test_bad_timestamps_name_the_field_and_the_value(value: Any, why: str) -> None:
    e = err(TS, {"at": value})
    assert why in str(e) and e.field == "at"


def test_categories_are_strings_out_of_the_declared_set() -> None:
    city = (f("city", "category", categories=("oslo", "rome")),)
    assert validate_batch(city, {"city": ["rome", b"oslo"]})["city"].tolist() == ["rome", "oslo"]
    e = err(city, {"city": ["oslo", "lima"]})
    assert "input 'city': 'lima' is not one of its categories (oslo, rome)" in str(e) and e.field == "city"
    assert validate_batch((f("c", "category"),), {"c": ["anything"]})["c"].tolist() == ["anything"]
    opt = (f("city", "category", categories=("oslo", "rome"), optional=True), f("n", "int32"))
    assert validate_batch(opt, {"n": [1]})["city"].tolist() == ["oslo"]
    stamp = (f("at", "timestamp", optional=True, default="2024-01-01T00:00:00Z"), f("n", "int32"))
    assert str(validate_batch(stamp, {"n": [1]})["at"][0]) == "2024-01-01T00:00:00.000000"
