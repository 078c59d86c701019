"""Property tests of the codecs (contract/codecs.py): native JSON rows and columns, V2 JSON and raw tensors.

Any input gives columns that validate, or one of our errors; never another exception, never an allocation
by a claimed shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelrunner.contract import Contract, column_from_raw, decode_json_request, tensor_to_column
from modelrunner.contract.validate import validate_batch
from support.fuzz_helpers import CONTRACTS, FUZZ, INTS, JSON, only_our_errors

DATATYPES = st.sampled_from(
    [
        "BOOL",
        "INT8",
        "UINT8",
        "INT32",
        "INT64",
        "UINT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
        "fp32",
        "STRING",
        "",
    ]
)
SHAPES = st.lists(st.one_of(st.integers(-2, 6), st.sampled_from([2**31, 2**32, 2**40, 2**62])), max_size=4)


def _decoded(body: Any, contract: Contract, max_rows: int | None) -> None:
    columns, style = decode_json_request(body, contract.inputs, max_rows=max_rows)
    assert style in ("instances", "inputs")
    validate_batch(contract.inputs, columns)


@FUZZ
@given(body=JSON, contract=st.sampled_from(CONTRACTS), max_rows=st.sampled_from([None, 1, 3]))
def test_native_json_any_body(body: Any, contract: Contract, max_rows: int | None) -> None:
    only_our_errors(lambda: _decoded(body, contract, max_rows))


@FUZZ
@given(rows=st.lists(JSON, max_size=5), contract=st.sampled_from(CONTRACTS))
def test_native_json_rows_and_columns(rows: list[Any], contract: Contract) -> None:
    only_our_errors(lambda: _decoded({"instances": rows}, contract, None))
    columns = {f.name: rows for f in contract.inputs}
    only_our_errors(lambda: _decoded({"inputs": columns}, contract, None))


@FUZZ
@given(shape=SHAPES, datatype=DATATYPES, data=JSON, contract=st.sampled_from(CONTRACTS))
def test_v2_json_tensor(shape: list[int], datatype: str, data: Any, contract: Contract) -> None:
    field = contract.inputs[0]
    out = only_our_errors(lambda: tensor_to_column("t", shape, datatype, data, field))
    if out is not None:
        assert out.shape[0] == shape[0] and out.size == math.prod(shape)


@FUZZ
@given(shape=SHAPES, datatype=DATATYPES, raw=st.binary(max_size=64))
def test_v2_raw_tensor(shape: list[int], datatype: str, raw: bytes) -> None:
    out = only_our_errors(lambda: column_from_raw(raw, shape, datatype, "t"))
    if out is not None:
        assert isinstance(out, np.ndarray) and list(out.shape) == shape


@FUZZ
@given(
    lengths=st.lists(st.one_of(st.integers(0, 8), INTS.filter(lambda n: n >= 0)), max_size=6),
    tail=st.binary(max_size=8),
    shape=SHAPES,
)
def test_v2_bytes_length_prefixes(lengths: list[int], tail: bytes, shape: list[int]) -> None:
    """BYTES elements: 4-byte little-endian length prefixes that may lie about what follows."""
    raw = b"".join((n % 2**32).to_bytes(4, "little") + b"a" * min(n, 8) for n in lengths) + tail
    out = only_our_errors(lambda: column_from_raw(raw, shape, "BYTES", "t"))
    if out is not None:
        assert all(isinstance(x, bytes) for x in out.reshape(-1))


def test_a_claimed_shape_allocates_nothing() -> None:
    """A shape of [1, 2**40] with no values is refused by arithmetic, not by trying to allocate 8 TB."""
    for shape in ([1, 2**40], [2**32, 2**32], [2**62, 4]):
        assert only_our_errors(lambda s=shape: column_from_raw(b"", s, "FP64", "t")) is None
        assert only_our_errors(lambda s=shape: column_from_raw(b"", s, "BYTES", "t")) is None
        assert (
            only_our_errors(lambda s=shape: tensor_to_column("t", s, "FP64", [], CONTRACTS[0].inputs[0]))
            is None
        )


def test_found_by_fuzzing() -> None:
    """Cases the properties above found, kept as plain regressions (each was a 500 or a warning)."""
    field = CONTRACTS[0].inputs[0]  # float32[2]
    # numpy cannot make even an empty array of this shape ("array is too big"): a ValueError, a 500
    assert only_our_errors(lambda: column_from_raw(b"", [0, 2**31, 2**31], "INT32", "t")) is None
    # 1e300 does not fit FP32: it was cast to inf with a RuntimeWarning
    assert only_our_errors(lambda: tensor_to_column("t", [1, 2], "FP32", [1e300, 1.0], field)) is None
