"""Open Inference Protocol (V2) tensors <-> contract columns: datatypes, shapes, JSON ``data`` and the binary
(raw) encoding. The native JSON codecs are in :mod:`modelrunner.contract.codecs`, which re-exports these."""

import math
import operator
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelrunner.contract.numbers import json_flat
from modelrunner.contract.types import DType, Field
from modelrunner.contract.validate import (
    check_rows,
    coerce_column,
    iso_strings,
)
from modelrunner.errors import ContractError, ValidationError

_V2 = {
    DType.BOOL: "BOOL",
    DType.INT8: "INT8",
    DType.INT16: "INT16",
    DType.INT32: "INT32",
    DType.INT64: "INT64",
    DType.UINT8: "UINT8",
    DType.UINT16: "UINT16",
    DType.UINT32: "UINT32",
    DType.UINT64: "UINT64",
    DType.FLOAT16: "FP16",
    DType.FLOAT32: "FP32",
    DType.FLOAT64: "FP64",
    DType.STRING: "BYTES",
    DType.BYTES: "BYTES",
    DType.TIMESTAMP: "BYTES",
    DType.CATEGORY: "BYTES",
}
_FROM_V2 = {v: k for k, v in _V2.items() if k not in (DType.STRING, DType.TIMESTAMP, DType.CATEGORY)}
_BY_VALUE = {d.value: d for d in DType}


def v2_datatype(dtype: DType | np.dtype[Any] | str) -> str:
    """The V2 datatype name of a contract dtype or numpy dtype (string and bytes -> ``BYTES``)."""
    if isinstance(dtype, str) and dtype in _BY_VALUE:
        return _V2[_BY_VALUE[dtype]]
    if not isinstance(dtype, DType):
        try:
            dtype = DType.from_numpy(dtype)
        except TypeError:
            raise ContractError(f"no V2 datatype for {dtype!r}") from None
    return _V2[dtype]


def dtype_from_v2(datatype: str) -> DType:
    """The contract dtype of a V2 datatype name (``BYTES`` -> bytes)."""
    try:
        return _FROM_V2[datatype.upper()]
    except (KeyError, AttributeError):
        raise ValidationError(
            f"unknown V2 datatype {datatype!r} (expected one of {', '.join(_FROM_V2)})"
        ) from None


MAX_TENSOR_ELEMENTS = 2**40
"""A shape whose non-zero dimensions multiply to more is refused outright (numpy cannot even make an empty
array of shape ``[0, 2**31, 2**31]``)."""


def tensor_shape(name: str, shape: Any, max_rows: int | None = None) -> tuple[int, ...]:
    """A V2 tensor's shape, checked before anything is allocated for it: integers >= 0, and a first
    (batch) dimension of at most ``max_rows``."""
    try:
        if not isinstance(shape, list | tuple) or any(isinstance(d, bool) for d in shape):
            raise TypeError
        dims = tuple(operator.index(d) for d in shape)  # Python or numpy integers, not 2.0 or "2"
    except TypeError:
        raise ValidationError(
            f"tensor {name!r}: shape must be a list of integers >= 0, got {shape!r:.60}", field=name
        ) from None
    if any(d < 0 for d in dims):
        raise ValidationError(f"tensor {name!r}: shape {list(dims)} has a negative dimension", field=name)
    if math.prod(d for d in dims if d) > MAX_TENSOR_ELEMENTS:  # even with a 0 in it numpy cannot shape it
        raise ValidationError(f"tensor {name!r}: shape {list(dims)} is too large", field=name)
    if dims:
        check_rows(dims[0], max_rows)
    return dims


def _check_size(name: str, shape: Sequence[int], size: int) -> tuple[int, ...]:
    dims = tensor_shape(name, shape)
    if math.prod(dims) != size:  # exact integers: numpy's product of [2**32, 2**32] overflows to 0
        raise ValidationError(
            f"tensor {name!r}: shape {list(dims)} does not match its {size} values",
            field=name,
            expected=list(dims),
            actual=size,
        )
    return dims


def _numeric_array(name: str, datatype: str, data: Any) -> np.ndarray:
    kind = dtype_from_v2(datatype)
    dtype = kind.numpy()
    fast = json_flat(data, kind)  # flat JSON numbers packed at C speed, or None: np.asarray decides
    try:
        arr = np.asarray(data) if fast is None else fast
    except (ValueError, TypeError):
        arr = np.asarray(None)
    ok = {"b": "b", "i": "biu", "u": "biu", "f": "biuf"}[dtype.kind]
    if arr.dtype.kind not in ok or arr.dtype.kind == "O":
        raise ValidationError(f"tensor {name!r}: data does not hold {datatype} values", field=name)
    if arr.dtype.kind in "iu" and dtype.kind in "iu" and arr.size:
        info = np.iinfo(dtype)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise ValidationError(f"tensor {name!r}: data out of range for {datatype}", field=name)
    try:
        with np.errstate(over="raise", invalid="raise"):  # 1e300 as FP32 is not inf: it is out of range
            return arr.astype(dtype, copy=False)
    except FloatingPointError:
        raise ValidationError(f"tensor {name!r}: data out of range for {datatype}", field=name) from None


def tensor_to_column(name: str, shape: Sequence[int], datatype: str, data: Any, field: Field) -> np.ndarray:
    """A V2 input tensor (``data`` flat or nested) -> the field's column, validated and coerced."""
    text = dtype_from_v2(datatype) is DType.BYTES
    if not v2_fits(datatype, field):
        raise ValidationError(
            f"tensor {name!r}: datatype {datatype} does not fit input {field.name!r} "
            f"({field.dtype.value}, V2 {v2_datatype(field.dtype)})",
            field=field.name,
            expected=v2_datatype(field.dtype),
            actual=datatype,
        )
    if text:
        arr = np.array(data if isinstance(data, list) else [data], dtype=object).reshape(-1)
    else:
        arr = _numeric_array(name, datatype.upper(), data).reshape(-1)
    dims = _check_size(name, shape, arr.size)
    if not field.shape and len(dims) == 2 and dims[1] == 1:
        dims = dims[:1]  # a per-row scalar sent as [n, 1], as Triton clients do
    return coerce_column(field, arr.reshape(dims))


def v2_fits(datatype: str, field: Field) -> bool:
    """Whether a V2 tensor of ``datatype`` may carry ``field``: BYTES for text, a numeric datatype for
    numbers (the validator converts), BYTES (ISO-8601 strings) or INT64 (epoch microseconds) for a
    timestamp."""
    upper = datatype.upper() if isinstance(datatype, str) else ""
    if field.dtype is DType.TIMESTAMP:
        return upper in ("BYTES", "INT64")
    return (upper == "BYTES") == (field.dtype.kind in "SB")


def column_to_tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    """A column -> a V2 output tensor: name, shape, datatype and flat data (BYTES as UTF-8 strings;
    timestamps as ISO-8601 UTC strings, MLServer's ``datetime`` content type)."""
    arr = np.asarray(array)
    if arr.dtype.kind == "M":
        return {
            "name": name,
            "shape": list(arr.shape),
            "datatype": "BYTES",
            "parameters": {"content_type": "datetime"},
            "data": iso_strings(arr).reshape(-1).tolist(),
        }
    datatype = v2_datatype(arr.dtype)
    data = arr.reshape(-1).tolist()
    if datatype == "BYTES":
        data = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in data]
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def column_from_raw(raw: bytes, shape: Sequence[int], datatype: str, name: str = "tensor") -> np.ndarray:
    """A V2 raw (binary) tensor -> an array of ``shape`` (BYTES: 4-byte little-endian length prefixes)."""
    dt = datatype.upper() if isinstance(datatype, str) else datatype
    if dt == "BYTES":
        want = math.prod(tensor_shape(name, shape))
        if want * 4 > len(raw):  # every element has a 4-byte length prefix: refuse before splitting
            raise ValidationError(
                f"tensor {name!r}: shape {list(shape)} needs {want} BYTES elements, more "
                f"than {len(raw)} raw bytes can hold",
                field=name,
            )
        items = _split_bytes(name, raw)
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr.reshape(_check_size(name, shape, len(items)))
    dtype = dtype_from_v2(dt).numpy().newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise ValidationError(
            f"tensor {name!r}: {len(raw)} raw bytes are not a whole number of {dt} values", field=name
        )
    arr = np.frombuffer(raw, dtype=dtype)
    return arr.reshape(_check_size(name, shape, arr.size)).astype(dtype.newbyteorder("="))


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    items, pos, end = [], 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise ValidationError(f"tensor {name!r}: truncated BYTES length prefix", field=name)
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + length > end:
            raise ValidationError(f"tensor {name!r}: BYTES element longer than the raw data", field=name)
        items.append(bytes(raw[pos : pos + length]))
        pos += length
    return items


def column_to_raw(array: np.ndarray) -> bytes:
    """An array -> V2 raw bytes (little-endian; BYTES elements length-prefixed)."""
    arr = np.asarray(array)
    if arr.dtype.kind == "M":
        arr = iso_strings(arr)
    if arr.dtype.kind in "OUS":
        parts = []
        for x in arr.reshape(-1).tolist():
            b = x.encode("utf-8") if isinstance(x, str) else bytes(x)
            parts += [struct.pack("<I", len(b)), b]
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
