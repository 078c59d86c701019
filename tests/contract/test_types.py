"""Contract types: dtypes, field checks, numbering, serialization, and the package's public surface."""

from __future__ import annotations

import numpy as np
import pytest

import modelrunner.contract as contract_pkg
from modelrunner.contract import Contract, DType, Field, format_shape
from modelrunner.errors import ContractError


def test_dtype_numpy_and_back() -> None:
    for d in DType:
        if d not in (DType.STRING, DType.BYTES, DType.CATEGORY):
            assert DType.from_numpy(d.numpy()) is d
    assert DType.from_numpy("datetime64[ns]") is DType.TIMESTAMP
    assert DType.from_numpy("U5") is DType.STRING and DType.from_numpy(object) is DType.STRING
    assert DType.from_numpy("S5") is DType.BYTES
    with pytest.raises(ContractError, match="unsupported dtype 'complex128'"):
        DType.from_numpy(np.complex128)
    assert str(DType.FLOAT32) == "float32"


def test_dtype_wire_types() -> None:
    assert {d.value: d.proto_type for d in DType} == {
        "bool": "bool",
        "int8": "int32",
        "int16": "int32",
        "int32": "int32",
        "int64": "int64",
        "uint8": "uint32",
        "uint16": "uint32",
        "uint32": "uint32",
        "uint64": "uint64",
        "float16": "double",
        "float32": "double",
        "float64": "double",
        "string": "string",
        "bytes": "bytes",
        "timestamp": "int64",
        "category": "string",
    }


def test_accepts_never_crosses_wire_families() -> None:
    family = {
        "b": "varint",
        "i": "varint",
        "u": "varint",
        "f": "double",
        "S": "string",
        "B": "bytes",
        "M": "timestamp",
    }
    for a in DType:
        assert a.accepts(a)
        for b in DType:
            if a.accepts(b):
                assert family[a.kind] == family[b.kind], (a, b)


def test_timestamp_and_category_dtypes() -> None:
    assert DType.TIMESTAMP.numpy() == np.dtype("datetime64[us]")
    assert DType.CATEGORY.numpy() == np.dtype(object)
    assert DType.STRING.accepts(DType.CATEGORY) and not DType.CATEGORY.accepts(DType.STRING)
    assert not DType.INT64.accepts(DType.TIMESTAMP) and not DType.TIMESTAMP.accepts(DType.INT64)
    f = Field(name="city", dtype=DType.CATEGORY, categories=("oslo", "rome"))
    assert Field.model_validate(f.model_dump(mode="json")) == f
    assert "categories" not in Field(name="c", dtype=DType.CATEGORY).model_dump(mode="json")
    with pytest.raises(ContractError, match="only on category fields"):
        Field(name="c", dtype=DType.STRING, categories=("a",))
    with pytest.raises(ValueError, match="repeat a value"):
        Field(name="c", dtype=DType.CATEGORY, categories=("a", "a"))


def test_field_checks() -> None:
    with pytest.raises(ValueError, match="must be an identifier"):
        Field(name="a-b", dtype=DType.INT8)
    with pytest.raises(ValueError, match="positive sizes or -1"):
        Field(name="a", dtype=DType.INT8, shape=(0,))
    assert Field(name="a", dtype=DType.FLOAT32, shape=(-1, 3)).describe() == "float32[?x3]"


def test_build_numbers_fields_around_reserved_ones() -> None:
    c = Contract.build(
        [
            Field(name="a", dtype=DType.INT8),
            Field(name="b", dtype=DType.INT8, number=1),
            Field(name="c", dtype=DType.INT8),
        ],
        reserved_inputs=(2,),
    )
    assert [f.number for f in c.inputs] == [3, 1, 4]


@pytest.mark.parametrize(
    ("numbers", "reserved", "message"),
    [
        ((1, 1), (), "share number 1"),
        ((1, 2), (2,), "uses reserved number 2"),
        ((19000, 1), (), "invalid number 19000"),
        ((1 << 20, 1), (), "invalid number 1048576"),
    ],
)
def test_bad_numbers_are_contract_errors(
    numbers: tuple[int, int], reserved: tuple[int, ...], message: str
) -> None:
    fields = tuple(Field(name=n, dtype=DType.INT8, number=k) for n, k in zip("ab", numbers, strict=True))
    with pytest.raises(ContractError, match=message):
        Contract(inputs=fields, reserved_inputs=reserved)


def test_duplicate_names_and_dict_round_trip() -> None:
    with pytest.raises(ContractError, match="duplicate input field name"):
        Contract.build([Field(name="a", dtype=DType.INT8), Field(name="a", dtype=DType.INT8)])
    c = Contract.build(
        [Field(name="a", dtype=DType.INT8, optional=True, default=3)],
        [Field(name="y", dtype=DType.STRING, shape=(2,))],
        reserved_outputs=(5,),
        version=2,
    )
    assert Contract.from_dict(c.to_dict()) == c
    with pytest.raises(ContractError, match="invalid contract"):
        Contract.from_dict({"inputs": [{"name": "a", "dtype": "complex"}]})


def test_format_shape() -> None:
    assert [format_shape(s) for s in [(), (3,), (-1, 2)]] == ["()", "(3,)", "(?, 2)"]


def test_public_surface() -> None:
    assert sorted(contract_pkg.__all__) == sorted(set(contract_pkg.__all__))
    for name in contract_pkg.__all__:
        assert getattr(contract_pkg, name) is not None
    for name in [
        "Contract",
        "DType",
        "Field",
        "validate_batch",
        "batch_size",
        "check_compatible",
        "renumber",
        "bump_version",
        "render_proto",
        "message_classes",
        "json_schema",
        "v2_metadata",
        "rows_to_columns",
        "columns_to_rows",
        "tensor_to_column",
        "column_to_tensor",
    ]:
        assert name in contract_pkg.__all__
