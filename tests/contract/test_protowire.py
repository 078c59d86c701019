"""contract.protowire (numpy over the wire bytes) agrees with upb, byte for byte and value for value."""

from __future__ import annotations

import numpy as np
import pytest

from modelrunner.contract import Contract, DType, Field
from modelrunner.contract.proto import _columns, _decode, _encode, message_classes, request_to_columns
from modelrunner.contract.protowire import FAST_MIN_ROWS, encode_rows
from modelrunner.contract.validate import validate_batch
from modelrunner.errors import ModelrunnerError

NUMERIC = ["bool", "int8", "int32", "int64", "uint16", "uint64", "float16", "float32", "float64", "timestamp"]
SHAPES: list[tuple[int, ...]] = [(), (2,), (-1,), (2, 3), (-1, 2)]


def column(rng: np.random.Generator, dtype: str, rows: int, shape: tuple[int, ...]) -> np.ndarray:
    full = (rows, *(3 if d == -1 else d for d in shape))
    if dtype == "bool":
        return rng.integers(0, 2, full).astype(bool)
    if dtype.startswith("float"):
        out = rng.normal(size=full).astype(dtype)
    elif dtype == "timestamp":
        return rng.integers(-(10**15), 10**15, full).astype("datetime64[us]")
    else:
        info = np.iinfo(dtype)
        kind = np.uint64 if dtype == "uint64" else np.int64
        out = rng.integers(info.min, info.max, full, dtype=kind, endpoint=True).astype(dtype)
    out[rng.random(full) < 0.3] = 0  # proto3 leaves zero scalars out of a Response
    return out


@pytest.mark.parametrize("seed", range(40))
def test_encoding_is_upbs_byte_for_byte(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 4))
    fields = [
        Field(name=f"f{i}", dtype=DType(rng.choice(NUMERIC)), shape=SHAPES[int(rng.integers(len(SHAPES)))])
        for i in range(count)
    ]
    contract = Contract.build(fields, fields)
    rows = int(rng.choice([FAST_MIN_ROWS, 40, 100]))
    cols = {f.name: column(rng, f.dtype.value, rows, f.shape) for f in fields}
    for side, presence in ((0, True), (1, False)):
        flds = (contract.inputs, contract.outputs)[side]
        valid = validate_batch(flds, cols, allow_extra=True, kind=("input", "output")[side])
        fast = encode_rows(flds, valid, presence=presence)
        if any(sum(d == -1 for d in f.shape) > 1 for f in flds):
            assert fast is None  # a shape field: left to upb
        else:
            assert fast == _encode(message_classes(contract, "t.w")[side], flds, valid)


def upb_columns(data: bytes, contract: Contract) -> object:
    try:
        msg = _decode(message_classes(contract, "t.w")[0], data, "Request")
        return validate_batch(contract.inputs, _columns(msg, contract.inputs, True, "input"))
    except ModelrunnerError as exc:
        return (type(exc).__name__, exc.message)


def fast_columns(data: bytes, contract: Contract) -> object:
    try:
        return request_to_columns(data, contract, "t.w")
    except ModelrunnerError as exc:
        return (type(exc).__name__, exc.message)


@pytest.mark.parametrize("seed", range(200))
def test_decoding_float_rows_agrees_with_upb(seed: int) -> None:
    """Same-layout rows (numpy), rows that differ, missing fields, cut or flipped bytes: same columns or the
    same error as the upb parser."""
    rng = np.random.default_rng(seed)
    fields = [
        Field(
            name=f"f{i}",
            dtype=DType(rng.choice(["float32", "float64"])),
            shape=SHAPES[int(rng.integers(len(SHAPES)))],
            optional=bool(rng.random() < 0.3),
        )
        for i in range(int(rng.integers(1, 4)))
    ]
    contract = Contract.build(fields)
    msg = message_classes(contract, "t.w")[0]()
    for _ in range(int(rng.choice([1, 2, 10]))):
        row = msg.rows.add()
        for f in fields:
            if rng.random() < 0.05:
                continue  # a missing field
            if not f.shape:
                setattr(row, f.name, float(rng.normal()))
                continue
            k = int(np.prod([2 if d == -1 else d for d in f.shape]))
            getattr(row, f.name).extend(
                rng.normal(size=int(rng.choice([k, k, 3])) if rng.random() < 0.1 else k)
            )
    data = msg.SerializeToString()
    cut = rng.random()
    if cut < 0.15 and data:
        data = data[: int(rng.integers(len(data)))]
    elif cut < 0.3 and data:
        i = int(rng.integers(len(data)))
        data = data[:i] + bytes([int(rng.integers(256))]) + data[i + 1 :]
    want, got = upb_columns(data, contract), fast_columns(data, contract)
    if isinstance(want, dict) and isinstance(got, dict):
        assert want.keys() == got.keys()
        for name, col in want.items():
            assert col.dtype == got[name].dtype and col.shape == got[name].shape
            np.testing.assert_array_equal(col, got[name])
    else:
        assert want == got
