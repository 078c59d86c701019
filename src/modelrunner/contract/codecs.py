"""Codecs between a columnar batch and the JSON and Open Inference Protocol (V2) encodings.

Native JSON (docs/contracts.md): a request is ``{"instances": [row, ...]}`` (a row is an object of input
values, or a bare value when the contract has exactly one input) or ``{"inputs": {name: [value per row]}}``;
the matching responses are ``{"predictions": [row, ...]}`` and ``{"outputs": {name: [value per row]}}``.
``bytes`` values travel as base64 strings. V2 tensors carry flat (or nested) row-major ``data`` with a
``shape`` whose first dimension is the batch; V2 BYTES elements are UTF-8 strings in JSON and 4-byte
little-endian length-prefixed in raw (binary) form, as Triton does.

The decoders build arrays; :func:`modelrunner.contract.validate.validate_batch` then checks and coerces them.
"""

from __future__ import annotations

import base64
import binascii
import math
import operator
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelrunner.contract.tabular import aliases, records_rows, renamed, split_rows
from modelrunner.contract.types import DType, Field
from modelrunner.contract.validate import (
    Columns,
    _default_row,
    batch_size,
    check_rows,
    coerce_column,
    iso_strings,
)
from modelrunner.errors import ContractError, ValidationError

__all__ = [
    "column_from_raw",
    "column_to_raw",
    "column_to_tensor",
    "columns_from_json",
    "columns_to_rows",
    "decode_json_request",
    "dtype_from_v2",
    "encode_json_response",
    "rows_to_columns",
    "select_outputs",
    "wanted_outputs",
    "tensor_shape",
    "tensor_to_column",
    "to_jsonable",
    "v2_datatype",
    "v2_fits",
]

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


# --- native JSON -------------------------------------------------------------------------------------------


def _from_base64(field: Field, values: Any) -> Any:
    if isinstance(values, list):
        return [_from_base64(field, v) for v in values]
    if not isinstance(values, str):
        return values  # left for the validator to reject
    try:
        return base64.b64decode(values, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            f"input {field.name!r}: bytes values must be base64 strings, got {values!r:.40}", field=field.name
        ) from None


def _column(field: Field, values: list[Any]) -> np.ndarray:
    if field.dtype is DType.BYTES:
        values = _from_base64(field, values)
    return coerce_column(field, values)


def rows_to_columns(rows: Sequence[Any], fields: Sequence[Field], *, allow_extra: bool = False) -> Columns:
    """JSON ``instances`` -> columns. Optional fields missing from a row get their default."""
    if not isinstance(rows, list | tuple):
        raise ValidationError(f"'instances' must be a list of rows, got {type(rows).__name__}")
    if not rows:
        return {f.name: _empty(f) for f in fields}
    if len(fields) == 1 and not isinstance(rows[0], dict):
        return {fields[0].name: _column(fields[0], list(rows))}
    names_of = aliases(fields)
    if names_of:  # a contract derived from a DataFrame: rows may name fields by their column labels
        rows = [renamed(row, names_of) if isinstance(row, dict) else row for row in rows]
    names = frozenset(f.name for f in fields)
    for i, row in enumerate(rows):  # the happy path is one type check and one C-level subset test per row
        if type(row) is not dict and not isinstance(row, dict):
            raise ValidationError(f"row {i} must be an object of input values, got {type(row).__name__}")
        if not allow_extra and not names.issuperset(row):
            extra = next(k for k in row if k not in names)
            known = ", ".join(sorted(names))
            raise ValidationError(f"row {i}: unknown input {extra!r} (expected: {known})", field=extra)
    out: Columns = {}
    for f in fields:
        name = f.name
        values = [row.get(name) for row in rows]
        missing = [i for i, v in enumerate(values) if v is None] if None in values else None
        if missing:
            if not f.optional:
                i = missing[0]
                why = (
                    f"input {f.name!r} is null; expected {f.describe()}"
                    if f.name in rows[i]
                    else f"missing input {f.name!r} ({f.describe()})"
                )
                raise ValidationError(f"row {i}: {why}", field=f.name)
            default = _default_value(f)  # absent or null: an optional field's default
            values = [default if v is None else v for v in values]
        out[f.name] = _column(f, values)
    return out


def _default_value(field: Field) -> Any:
    return _default_row(field).tolist()


def _empty(field: Field) -> np.ndarray:
    return np.zeros((0, *(max(d, 0) for d in field.shape)), dtype=field.dtype.numpy())


def columns_from_json(inputs: Mapping[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    """JSON ``inputs`` (columns) -> columns; unknown names are kept for the validator to judge."""
    if not isinstance(inputs, Mapping):
        raise ValidationError(f"'inputs' must be an object of columns, got {type(inputs).__name__}")
    by_name = {f.name: f for f in fields}
    names_of = aliases(fields)
    if names_of:
        inputs = renamed(dict(inputs), names_of)
    out: dict[str, Any] = {}
    for name, values in inputs.items():
        field = by_name.get(name)
        if field is None:
            out[name] = values
        elif isinstance(values, list) and not values:
            out[name] = _empty(field)  # zero rows: np.asarray([]) would have the wrong number of dimensions
        else:
            out[name] = _column(field, values)
    return out


def decode_json_request(
    body: Any, fields: Sequence[Field], *, max_rows: int | None = None
) -> tuple[dict[str, Any], str]:
    """A native JSON request body -> (columns, style) where style is ``instances`` or ``inputs``.

    MLflow's ``dataframe_split`` and ``dataframe_records`` bodies are rows too (answered as ``instances``).

    More than ``max_rows`` rows is refused (a 413) before any value is converted."""
    if isinstance(body, dict):
        if "instances" in body:
            rows = body["instances"]
            if isinstance(rows, list):
                check_rows(len(rows), max_rows)
            return rows_to_columns(rows, fields), "instances"
        if "inputs" in body:
            inputs = body["inputs"]
            if isinstance(inputs, list):  # MLflow's tensor form {"inputs": [row, ...]}: rows
                check_rows(len(inputs), max_rows)
                return rows_to_columns(inputs, fields), "instances"
            if isinstance(inputs, dict):
                check_rows(max((len(v) for v in inputs.values() if isinstance(v, list)), default=0), max_rows)
            return columns_from_json(inputs, fields), "inputs"
        if "dataframe_split" in body:  # MLflow's scoring-server bodies (contract/tabular.py)
            return rows_to_columns(split_rows(body["dataframe_split"], max_rows), fields), "instances"
        if "dataframe_records" in body:
            rows = records_rows(body["dataframe_records"])
            check_rows(len(rows), max_rows)
            return rows_to_columns(rows, fields), "instances"
    raise ValidationError(
        'the request body must be {"instances": [rows]}, {"inputs": {name: [values]}}, '
        '{"dataframe_split": {"columns": [...], "data": [[...]]}} or '
        '{"dataframe_records": [rows]}'
    )


def wanted_outputs(body: Any, fields: Sequence[Field]) -> tuple[str, ...] | None:
    """The outputs a native JSON request asks for (``"outputs": ["label"]``), checked against the
    contract's ``fields``; None when it does not ask (every output). A name that is not an output is a
    ValidationError (422) naming it."""
    names = body.get("outputs") if isinstance(body, dict) else None
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValidationError(
            f"'outputs' must be a non-empty list of output names, got {names!r:.60}", field="outputs"
        )
    known = {f.name for f in fields}
    for name in names:
        if name not in known:
            raise ValidationError(
                f"unknown output {name!r} in 'outputs' (expected: {', '.join(sorted(known))})", field=name
            )
    return tuple(dict.fromkeys(names))


def select_outputs(
    columns: Mapping[str, np.ndarray], names: Sequence[str] | None
) -> Mapping[str, np.ndarray]:
    """``columns`` restricted to ``names`` in that order (all of them for None)."""
    if names is None:
        return columns
    return {name: columns[name] for name in names if name in columns}


def encode_json_response(columns: Mapping[str, np.ndarray], style: str) -> dict[str, Any]:
    """Columns -> ``{"predictions": rows}`` (style ``instances``) or ``{"outputs": columns}``."""
    if style == "instances":
        return {"predictions": columns_to_rows(columns)}
    return {"outputs": to_jsonable(columns)}


def _jsonable_object(values: Any) -> Any:
    if isinstance(values, list):
        return [_jsonable_object(v) for v in values]
    if isinstance(values, bytes | bytearray):
        return base64.b64encode(values).decode("ascii")
    return values


def to_jsonable(columns: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    """Columns -> JSON-able lists (bytes as base64 strings)."""
    out = {}
    for name, col in columns.items():
        arr = np.asarray(col)
        if arr.dtype.kind == "M":  # timestamps: ISO-8601 UTC strings
            arr = iso_strings(arr)
        values = arr.tolist()
        out[name] = _jsonable_object(values) if arr.dtype.kind in "OS" else values
    return out


def columns_to_rows(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Columns -> a list of JSON-able row objects."""
    n = batch_size(columns)
    cols = to_jsonable(columns)
    names = list(cols)
    return (
        [dict(zip(names, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
        if names
        else [{} for _ in range(n)]
    )


# --- Open Inference Protocol (V2) --------------------------------------------------------------------------


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
    dtype = dtype_from_v2(datatype).numpy()
    try:
        arr = np.asarray(data)
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
