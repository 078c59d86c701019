"""The fast JSON-number path (contract/numbers.py) gives exactly what the exact path gives: the same array
(dtype, shape, bits) or the same 422 (message and field), for native rows, native columns and V2 tensors.

Each case is decoded twice: as the server does (fast path on) and with ``json_numbers``/``json_flat``
patched to return None (the exact path: ``np.asarray`` and the validator). A fast path that accepted what
the exact path refuses (a string, a null, a huge int, a ragged row) fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelrunner.contract.codecs as codecs
import modelrunner.contract.numbers as numbers
import modelrunner.contract.tensors as tensors
from modelrunner.contract import DType, Field, decode_json_request, tensor_to_column
from modelrunner.contract.numbers import json_flat, json_numbers
from modelrunner.errors import ModelrunnerError
from support.fuzz_helpers import FUZZ

F64 = Field(name="x", dtype=DType.FLOAT64, shape=(3,))
F32 = Field(name="x", dtype=DType.FLOAT32, shape=(3,))
I64 = Field(name="x", dtype=DType.INT64, shape=(3,))
I8 = Field(name="x", dtype=DType.INT8, shape=(3,))
U64 = Field(name="x", dtype=DType.UINT64, shape=(3,))
SCALAR = Field(name="x", dtype=DType.FLOAT64)
ANY_LEN = Field(name="x", dtype=DType.FLOAT64, shape=(-1,))
GRID = Field(name="x", dtype=DType.FLOAT32, shape=(2, 2))
F16 = Field(name="x", dtype=DType.FLOAT16, shape=(3,))  # never fast: int64 -> float16 has no overflow check


@pytest.fixture(autouse=True)
def fast_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path for these few values too (it leaves fewer than MIN_VALUES to the exact path)."""
    monkeypatch.setattr(numbers, "MIN_VALUES", 1)


@contextmanager
def exact_path() -> Iterator[None]:
    """The decoders with the fast path off."""
    saved = codecs.json_numbers, tensors.json_flat
    codecs.json_numbers = lambda values, field: None  # type: ignore[assignment]
    tensors.json_flat = lambda values, dtype: None  # type: ignore[assignment]
    try:
        yield
    finally:
        codecs.json_numbers, tensors.json_flat = saved


def outcome(fn: Callable[[], Any]) -> Any:
    """What ``fn`` gives: ("ok", {name: (dtype, shape, bytes)}) or ("error", class, message, field)."""
    try:
        cols = fn()
    except ModelrunnerError as exc:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "field", None))
    if isinstance(cols, np.ndarray):
        cols = {"": cols}
    return ("ok", {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in cols.items()})


def same_both_ways(fn: Callable[[], Any]) -> Any:
    fast = outcome(fn)
    with exact_path():
        exact = outcome(fn)
    assert fast == exact
    return fast


def rows_body(values: list[Any]) -> dict[str, Any]:
    return {"instances": [{"x": v} for v in values]}


def decode(body: Any, field: Field) -> Any:
    return lambda: decode_json_request(body, (field,))[0]


BAD_ROWS = [
    ([["1.5", 2.0, 3.0]], F64, "string"),
    ([[1.0, 2.0, "3"]], F32, "string"),
    ([[None, 2.0, 3.0]], F64, "object"),
    ([[1.0, 2.0, 3.0], None], F64, "row 1"),
    ([[1.0, 2.0, 3.0], [1.0, 2.0]], F64, "different lengths"),
    ([[1.0, 2.0]], F64, "per-row shape"),
    ([[1.0, 2.0, 3.0, 4.0]], F64, "per-row shape"),
    ([[[1.0], [2.0], [3.0]]], F64, "per-row shape"),
    ([[1.0, [2.0], 3.0]], F64, "different lengths"),
    ([[1.0, {"a": 1}, 3.0]], F64, "object"),
    ([[1.0, 2.0, 2**64]], F64, "object"),
    ([[1.0, 2.0, 10**400]], F64, "object"),
    ([[1, 2, -(2**63) - 1]], F64, "object"),
    ([[1.5, 2, 3]], I64, "floats are not converted"),
    ([[1, 2, 2**63]], I64, "expected dtype int64"),
    ([[1, 2, 300]], I8, "outside"),
    ([[1, 2, -1]], U64, "outside"),
    ([[1e300, 2.0, 3.0]], F32, "range"),
    ([[1.0, True, "x"]], F64, "string"),
    ([1.0, "2"], SCALAR, "string"),
    ([1.0, [2.0]], SCALAR, "different lengths"),
    ([[1.0, 2.0], [3.0, 4.0, 5.0]], ANY_LEN, "different lengths"),
    ([[[1, 2], [3]]], GRID, "different lengths"),
    ([[[1, 2], [3, 4]], [[1, 2], [3, "4"]]], GRID, "string"),
]


@pytest.mark.parametrize(("values", "field", "words"), BAD_ROWS)
def test_refused_values_are_refused_by_both_paths(values: list[Any], field: Field, words: str) -> None:
    if field not in (I8, U64):  # there the fast path reads int64 and the same range check refuses it
        assert json_numbers(values, field) is None  # the fast path never takes these
    got = same_both_ways(decode(rows_body(values), field))
    assert got[0] == "error" and got[3] == "x" and words in got[2], got
    same_both_ways(decode({"inputs": {"x": values}}, field))


GOOD_ROWS = [
    ([[1.0, 2.5, -3.25], [0.0, -0.0, 1e-300]], F64),
    ([[1, 2, 3], [4, 5, 6]], F64),  # ints into a float field
    ([[True, 1.5, False]], F64),  # bools among numbers: 1.0 / 0.0
    ([[True, False, True]], F64),  # all bools
    ([[2**53 - 1, -(2**53) + 1, 0]], F64),
    ([[16777217, 1, 2]], F32),  # rounded once, as int64 -> float32 rounds it
    ([[0.1, 1e15, -2.5]], F32),
    ([[1, 2, 3], [True, False, 7]], I64),
    ([[1, 2, -128]], I8),
    ([[0, 2**62, 7]], U64),
    ([1.0, 2, True], SCALAR),
    ([[1.0, 2.0], [3.0, 4.0]], ANY_LEN),
    ([[[1, 2.5], [3, 4]], [[5, 6], [7, 8]]], GRID),
]


@pytest.mark.parametrize(("values", "field"), GOOD_ROWS)
def test_accepted_values_are_the_same_array(values: list[Any], field: Field) -> None:
    assert json_numbers(values, field) is not None  # the fast path takes these
    got = same_both_ways(decode(rows_body(values), field))
    assert got[0] == "ok"
    assert same_both_ways(decode({"inputs": {"x": values}}, field)) == got


@pytest.mark.parametrize(
    "values",
    [[[2**53, 1.0, 2.0]], [[2.0**60, 1.0, 2.0]], [[float("nan"), 1.0, 2.0]], [[float("inf"), 1.0, 2.0]]],
)
def test_large_or_odd_floats_go_to_the_exact_path(values: list[Any]) -> None:
    assert json_numbers(values, F64) is None
    assert same_both_ways(decode(rows_body(values), F64))[0] == "ok"
    assert json_numbers([[1.0, 2.0, 3.0]], F16) is None  # float16: the exact path always (see numbers.py)


def test_an_empty_or_absent_row_value_gets_the_exact_treatment() -> None:
    for field in (F64, I64, ANY_LEN):
        same_both_ways(decode(rows_body([[], []]), field))
    body = {"instances": [{"x": [1.0, 2.0, 3.0]}, {}]}
    got = same_both_ways(decode(body, F64))
    assert got[0] == "error" and "row 1: missing input 'x'" in got[2]
    optional = Field(name="x", dtype=DType.FLOAT64, shape=(3,), optional=True, default=0.5)
    assert same_both_ways(decode(body, optional))[0] == "ok"


def test_the_fast_array_is_writable_and_of_the_field_dtype() -> None:
    cols, _ = decode_json_request(rows_body([[1, 2, 3]]), (F32,))
    assert cols["x"].dtype == np.float32 and cols["x"].flags.writeable
    cols, _ = decode_json_request(rows_body([[1, 2, 3]]), (F64,))
    assert cols["x"].dtype == np.float64 and cols["x"].flags.writeable
    cols["x"][0, 0] = 9.0


def v2(field: Field, shape: list[int], datatype: str, data: Any) -> Callable[[], Any]:
    return lambda: tensor_to_column("t", shape, datatype, data, field)


@pytest.mark.parametrize(
    ("shape", "datatype", "data", "ok"),
    [
        ([2, 3], "FP64", [1.0, 2, 3, 4, 5, True], True),
        ([2, 3], "FP32", [1.0, 2, 3, 4, 5, 6], True),
        ([2, 3], "FP64", [1.0, 2, 3, 4, 5, "6"], False),
        ([2, 3], "FP64", [1.0, 2, 3, 4, 5, None], False),
        ([2, 3], "FP64", [1.0, 2, 3, 4, 5, 2**64], False),
        ([2, 3], "FP32", [1.0, 2, 3, 4, 5, 1e300], False),
        ([2, 3], "FP64", [1.0, 2, 3, 4, 5], False),
        ([2, 3], "FP64", [[1.0, 2, 3], [4, 5, 6]], True),
        ([2, 3], "INT64", [1, 2, 3, 4, 5, 6.5], False),
        ([2, 3], "INT64", [1, 2, 3, 4, 5, 2**63], False),
        ([2, 3], "INT8", [1, 2, 3, 4, 5, 200], False),
        ([2, 3], "INT32", [1, 2, 3, 4, 5, True], True),
    ],
)
def test_v2_json_tensors_both_ways(shape: list[int], datatype: str, data: Any, ok: bool) -> None:
    field = I64 if datatype.startswith("INT") else F64
    got = same_both_ways(v2(field, shape, datatype, data))
    assert (got[0] == "ok") is ok, got


def test_few_values_are_left_to_the_exact_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numbers, "MIN_VALUES", 384)
    assert json_numbers([[1.0] * 64] * 5, Field(name="x", dtype=DType.FLOAT64, shape=(64,))) is None
    assert json_numbers([[1.0] * 64] * 6, Field(name="x", dtype=DType.FLOAT64, shape=(64,))) is not None
    assert json_numbers([[1.0] * 64] * 5, Field(name="x", dtype=DType.FLOAT64, shape=(-1,))) is None
    assert json_numbers([[1.0] * 64] * 6, Field(name="x", dtype=DType.FLOAT64, shape=(-1,))) is not None
    assert json_flat([1.0] * 383, DType.FLOAT64) is None
    assert json_flat([1.0] * 384, DType.FLOAT64) is not None


def test_v2_fast_path_takes_flat_numbers_only() -> None:
    assert json_flat([1.0, 2, True], DType.FLOAT64) is not None
    assert json_flat([[1.0], [2.0]], DType.FLOAT64) is None
    assert json_flat([1.0, "2"], DType.FLOAT64) is None
    assert json_flat([1.0, 2.0], DType.FLOAT16) is None
    assert json_flat([1, 2.5], DType.INT64) is None


ATOMS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64 - 1, 2**64, -(2**63), 16777217, 65520, 300, -1]),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "nan", "", "x"]),
    st.just([1.0]),
    st.just({"a": 1}),
)
FIELDS = st.sampled_from([F64, F32, I64, I8, U64, SCALAR, ANY_LEN])


@st.composite
def rows_for(draw: st.DrawFn) -> tuple[Field, list[Any]]:
    field = draw(FIELDS)
    n = draw(st.integers(1, 4))
    width = draw(st.integers(2, 4)) if field.shape == (-1,) else 3
    mostly_good = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000), ATOMS)
    if not field.shape:
        return field, draw(st.lists(mostly_good, min_size=n, max_size=n))
    row = st.lists(mostly_good, min_size=width - draw(st.integers(0, 1)), max_size=width)
    return field, draw(st.lists(st.one_of(row, ATOMS), min_size=n, max_size=n))


@FUZZ
@given(case=rows_for(), as_json=st.booleans())
def test_any_rows_decode_the_same_both_ways(case: tuple[Field, list[Any]], as_json: bool) -> None:
    field, values = case
    if as_json:  # through a real JSON round trip (huge floats and ints as JSON writes them)
        try:
            values = json.loads(json.dumps(values))
        except ValueError:
            return
    same_both_ways(decode(rows_body(values), field))
    same_both_ways(decode({"inputs": {"x": values}}, field))
