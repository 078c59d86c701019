"""Protobuf for a contract: the ``.proto`` text and the same messages built at run time (no protoc).

Encoding (docs/contracts.md, "Protobuf encoding")::

    message InputRow  { <one field per input, by its stable number> }
    message OutputRow { <one field per output> }
    message Request   { repeated InputRow rows = 1; }
    message Response  { repeated OutputRow rows = 1; }
    service Model     { rpc Predict(Request) returns (Response); }

The batch size is the number of rows. A field of per-row shape ``()`` is a scalar (``optional`` in
``InputRow``, so a missing input is told apart from a zero); any other shape is ``repeated``, holding the
row's values flat in row-major order. A shape with one variable dimension is inferred from the value count; a
field with two or more gets a companion ``repeated uint32 <name>_shape = 2**20 + number`` holding the row's
shape. Wire types: bool -> bool, int8/16/32 -> int32, int64 -> int64, uint8/16/32 -> uint32, uint64 ->
uint64, float16/32/64 -> double (so widening a float keeps the wire format), string -> string, bytes ->
bytes. Removed fields' numbers are ``reserved``.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from modelrunner.contract.protowire import count_rows, decode_uniform, encode_rows, row_count
from modelrunner.contract.types import MAX_FIELD_NUMBER, Contract, DType, Field, format_shape
from modelrunner.contract.validate import Columns, check_rows, validate_batch
from modelrunner.contract.values import default_row
from modelrunner.errors import ContractError, ValidationError

__all__ = [
    "SERVICE",
    "SHAPE_NUMBER_BASE",
    "columns_to_request_bytes",
    "columns_to_response_bytes",
    "count_rows",
    "endpoint_package",
    "message_classes",
    "proto_package",
    "render_proto",
    "request_to_columns",
    "response_bytes_to_columns",
]

SERVICE = "Model"
"""The service of every endpoint's ``.proto``, with one ``rpc Predict(Request) returns (Response)``."""

SHAPE_NUMBER_BASE = MAX_FIELD_NUMBER + 1
"""Companion ``<name>_shape`` fields are numbered ``SHAPE_NUMBER_BASE + field.number``."""

_FDP = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "bool": _FDP.TYPE_BOOL,
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "uint32": _FDP.TYPE_UINT32,
    "uint64": _FDP.TYPE_UINT64,
    "double": _FDP.TYPE_DOUBLE,
    "string": _FDP.TYPE_STRING,
    "bytes": _FDP.TYPE_BYTES,
}
_WIRE_NUMPY = {
    "bool": np.dtype(bool),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "double": np.dtype(np.float64),
    "string": np.dtype(object),
    "bytes": np.dtype(object),
}


class _Slot(NamedTuple):
    """One protobuf field of a row message."""

    name: str
    number: int
    type: str
    label: str  # "optional" | "repeated" | ""
    comment: str


def proto_package(name: str) -> str:
    """A valid proto package from any name: ``digits-ocr`` -> ``digits_ocr``, ``2x`` -> ``m_2x``."""
    parts = [re.sub(r"\W", "_", p, flags=re.ASCII) for p in name.split(".") if p]
    parts = [p if p[0].isalpha() else f"m_{p}" for p in parts]
    if not parts:
        raise ContractError(f"cannot make a protobuf package name from {name!r}")
    return ".".join(parts)


@functools.lru_cache(maxsize=1024)  # asked at every protobuf request: a regex substitution each time
def endpoint_package(endpoint: str) -> str:
    """The proto package of an endpoint's messages and service: ``digits`` -> ``modelrunner.digits``.

    gRPC method names include it (``/modelrunner.digits.Model/Predict``), so a stub works only when compiled
    from a ``.proto`` with this package: the server and ``modelrunner contract --format proto`` both use it.
    """
    return proto_package(f"modelrunner.{endpoint.replace('.', '_')}")


def _shape_slot(f: Field) -> bool:
    return sum(d == -1 for d in f.shape) > 1


def _slots(fields: Iterable[Field], presence: bool) -> list[_Slot]:
    fields = tuple(fields)
    names = {f.name for f in fields}
    slots = []
    for f in fields:
        comment = f"{f.name}: {f.dtype.value}, per-row shape {format_shape(f.shape)}"
        if f.shape:
            comment += ", flat row-major values"
        if f.dtype is DType.TIMESTAMP:
            comment += ", microseconds since 1970-01-01T00:00:00Z"
        if f.categories:
            comment += f", one of {', '.join(f.categories)}"
        if f.optional:
            comment += f", optional (default {f.default!r})"
        lines = [comment, *(f.description.splitlines() if f.description else [])]
        label = "repeated" if f.shape else ("optional" if presence else "")
        slots.append(_Slot(f.name, f.number, f.dtype.proto_type, label, "\n".join(lines)))
        if _shape_slot(f):
            name = f"{f.name}_shape"
            if name in names:
                raise ContractError(f"field {name!r} clashes with the shape field of {f.name!r}")
            slots.append(
                _Slot(
                    name,
                    SHAPE_NUMBER_BASE + f.number,
                    "uint32",
                    "repeated",
                    f"per-row shape of {f.name} (it has several variable dimensions)",
                )
            )
    for s in slots:
        if not s.number:
            raise ContractError(f"field {s.name!r} has no number; build the contract with Contract.build")
    return slots


def _messages(contract: Contract) -> list[tuple[str, list[_Slot], tuple[int, ...]]]:
    return [
        ("InputRow", _slots(contract.inputs, True), contract.reserved_inputs),
        ("OutputRow", _slots(contract.outputs, False), contract.reserved_outputs),
    ]


def render_proto(contract: Contract, package: str, service: str = SERVICE) -> str:
    """The proto3 text of ``contract``'s messages and a ``service`` with ``rpc Predict``."""
    package = proto_package(package)
    service = proto_package(service).replace(".", "_")
    out = [
        f"// Generated by modelrunner from contract version {contract.version}; do not edit.",
        "// Wire format: one InputRow / OutputRow per batch row (see modelrunner docs/contracts.md).",
        'syntax = "proto3";',
        "",
        f"package {package};",
        "",
    ]
    for name, slots, reserved in _messages(contract):
        out.append(f"message {name} {{")
        for s in slots:
            out += [f"  // {line}".rstrip() for line in s.comment.splitlines()]
            out.append(f"  {s.label + ' ' if s.label else ''}{s.type} {s.name} = {s.number};")
        if reserved:
            out.append(f"  reserved {', '.join(str(n) for n in sorted(reserved))};")
        out += ["}", ""]
    out += [
        "// One request: a batch of input rows.",
        "message Request {",
        "  repeated InputRow rows = 1;",
        "}",
        "",
        "// One response: one output row per input row.",
        "message Response {",
        "  repeated OutputRow rows = 1;",
        "}",
        "",
        f"service {service} {{",
        "  rpc Predict(Request) returns (Response);",
        "}",
        "",
    ]
    return "\n".join(out)


def file_descriptor(contract: Contract, package: str) -> descriptor_pb2.FileDescriptorProto:
    """The ``FileDescriptorProto`` the rendered ``.proto`` compiles to (messages only)."""
    package = proto_package(package)
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}.proto", package=package, syntax="proto3"
    )
    for name, slots, reserved in _messages(contract):
        msg = fdp.message_type.add(name=name)
        for s in slots:
            fld = msg.field.add(
                name=s.name,
                number=s.number,
                type=_TYPES[s.type],
                label=_FDP.LABEL_REPEATED if s.label == "repeated" else _FDP.LABEL_OPTIONAL,
            )
            if s.label == "optional":
                fld.proto3_optional = True
                fld.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=f"_{s.name}")
        for n in sorted(reserved):
            msg.reserved_range.add(start=n, end=n + 1)
    for name, row in (("Request", "InputRow"), ("Response", "OutputRow")):
        fdp.message_type.add(name=name).field.add(
            name="rows",
            number=1,
            type=_FDP.TYPE_MESSAGE,
            type_name=f".{package}.{row}",
            label=_FDP.LABEL_REPEATED,
        )
    return fdp


_BY_ID: dict[tuple[int, str], tuple[Contract, tuple[type[Message], type[Message]]]] = {}
_BY_JSON: dict[tuple[str, str], tuple[type[Message], type[Message]]] = {}


def message_classes(contract: Contract, package: str) -> tuple[type[Message], type[Message]]:
    """``(Request, Response)`` message classes for ``contract``, from a private descriptor pool (cached)."""
    hit = _BY_ID.get((id(contract), package))
    if hit is not None and hit[0] is contract:
        return hit[1]
    key = (package, contract.model_dump_json())
    classes = _BY_JSON.get(key)
    if classes is None:
        pool = descriptor_pool.DescriptorPool()
        fdp = file_descriptor(contract, package)
        pool.Add(fdp)
        request, response = (
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fdp.package}.{m}"))
            for m in ("Request", "Response")
        )
        classes = (request, response)
        if len(_BY_JSON) >= 256:
            _BY_JSON.clear()
            _BY_ID.clear()
        _BY_JSON[key] = classes
    if len(_BY_ID) >= 256:
        _BY_ID.clear()
    _BY_ID[(id(contract), package)] = (contract, classes)
    return classes


def _encode(cls: type[Message], fields: tuple[Field, ...], columns: Columns) -> bytes:
    msg = cls()
    n = next((len(c) for c in columns.values()), 0)
    per_field: dict[str, list[Any]] = {}
    for f in fields:
        col = columns.get(f.name)
        if col is None:
            continue
        if col.dtype.kind == "M":  # a timestamp travels as int64 microseconds since the epoch
            col = col.astype("datetime64[us]").astype(np.int64)
        per_field[f.name] = col.reshape(n, -1).tolist() if f.shape and n else col.tolist()
        if _shape_slot(f):
            per_field[f"{f.name}_shape"] = [list(col.shape[1:])] * n
    rows = msg.rows  # a dynamic message class: fields are attributes
    for i in range(n):
        rows.add(**{name: values[i] for name, values in per_field.items()})
    data: bytes = msg.SerializeToString()
    return data


def _decode(cls: type[Message], data: bytes, what: str) -> Any:
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        raise ValidationError(f"the body is not a valid protobuf {what}: {exc}") from None


def _scalar_column(f: Field, rows: Any, presence: bool, what: str) -> np.ndarray | None:
    values = [getattr(r, f.name) for r in rows]
    if presence:
        present = [r.HasField(f.name) for r in rows]
        if not all(present):
            if not any(present):
                return None
            if not f.optional:
                raise ValidationError(
                    f"{what} {f.name!r} is missing in row {present.index(False)}", field=f.name
                )
            default = default_row(f).item()
            values = [v if p else default for v, p in zip(values, present, strict=True)]
    return np.array(values, dtype=_WIRE_NUMPY[f.dtype.proto_type])


def _row_shape(f: Field, k: int, rows: Any, what: str) -> tuple[int, ...]:
    fixed = math.prod(d for d in f.shape if d != -1)
    nvar = sum(d == -1 for d in f.shape)
    if nvar == 0 and k == fixed:
        return f.shape
    if nvar == 1 and k % fixed == 0:
        return tuple(k // fixed if d == -1 else d for d in f.shape)
    if nvar > 1 and rows:
        shapes = {tuple(getattr(r, f"{f.name}_shape")) for r in rows}
        shape = shapes.pop()
        if (
            not shapes
            and len(shape) == len(f.shape)
            and math.prod(shape) == k
            and all(d in (-1, s) for s, d in zip(shape, f.shape, strict=True))
        ):
            return shape
    raise ValidationError(
        f"{what} {f.name!r}: {k} values per row do not fit per-row shape {format_shape(f.shape)}",
        field=f.name,
        expected=format_shape(f.shape),
    )


def _repeated_column(f: Field, rows: Any, what: str) -> np.ndarray | None:
    values = [getattr(r, f.name) for r in rows]
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise ValidationError(
            f"{what} {f.name!r}: rows hold {min(lengths)} to {max(lengths)} values; "
            "all rows of a batch must have the same shape",
            field=f.name,
        )
    k = lengths.pop() if lengths else 0
    if k == 0 and (f.optional or -1 not in f.shape):
        return None  # absent: the validator fills an optional field's default
    shape = _row_shape(f, k, rows, what)
    dtype = _WIRE_NUMPY[f.dtype.proto_type]
    flat = np.fromiter(itertools.chain.from_iterable(values), dtype=dtype, count=len(values) * k)
    return flat.reshape((len(values), *shape))


def _columns(msg: Any, fields: tuple[Field, ...], presence: bool, what: str) -> dict[str, np.ndarray]:
    rows = msg.rows
    if not rows:
        return {
            f.name: np.zeros((0, *(max(d, 0) for d in f.shape)), dtype=wire_dtype(f.dtype)) for f in fields
        }
    out = {}
    for f in fields:
        col = _repeated_column(f, rows, what) if f.shape else _scalar_column(f, rows, presence, what)
        if col is not None:
            out[f.name] = col
    return out


def columns_to_request_bytes(columns: Mapping[str, Any], contract: Contract, package: str) -> bytes:
    """Serialize an input batch as a ``Request`` (for clients and tests)."""
    cols = validate_batch(contract.inputs, columns)
    fast = encode_rows(contract.inputs, cols, presence=True)
    if fast is not None:
        return fast
    return _encode(message_classes(contract, package)[0], contract.inputs, cols)


def request_to_columns(
    data: bytes, contract: Contract, package: str, *, max_rows: int | None = None
) -> Columns:
    """Parse ``Request`` bytes into a validated input batch; raises ValidationError on bad bytes or data,
    ResourceExhausted for more than ``max_rows`` rows (counted on the wire, before parsing)."""
    fast = _uniform_columns(data, contract.inputs, max_rows)
    if fast is not None:
        return validate_batch(contract.inputs, fast)
    if max_rows is not None and len(data) > 2 * max_rows:  # a row takes 2 bytes at least: smaller is fine
        rows = count_rows(data, max_rows)
        check_rows(rows, max_rows, exact=rows <= max_rows)
    msg = _decode(message_classes(contract, package)[0], data, "Request")
    return validate_batch(contract.inputs, _columns(msg, contract.inputs, True, "input"))


def _uniform_columns(data: bytes, fields: tuple[Field, ...], max_rows: int | None) -> Columns | None:
    """The columns of a ``Request`` of same-layout float rows, read with numpy (``contract.protowire``);
    None for any other request (the upb parser reads it)."""
    uniform = row_count(data)
    if uniform is None or any(_shape_slot(f) for f in fields):
        return None
    rows, stride = uniform
    check_rows(rows, max_rows)
    flat = decode_uniform(data, fields, rows, stride)
    if flat is None:
        return None
    out = {}
    for f in fields:
        col = flat.get(f.name)
        if col is not None:
            out[f.name] = col.reshape((rows, *_row_shape(f, col.shape[1], (), "input"))) if f.shape else col
    return out


def columns_to_response_bytes(columns: Mapping[str, Any], contract: Contract, package: str) -> bytes:
    """Serialize an output batch as a ``Response`` (extra columns are left out)."""
    cols = validate_batch(contract.outputs, columns, allow_extra=True, kind="output")
    fast = encode_rows(contract.outputs, cols)
    return (
        fast if fast is not None else _encode(message_classes(contract, package)[1], contract.outputs, cols)
    )


def response_bytes_to_columns(data: bytes, contract: Contract, package: str) -> Columns:
    """Parse ``Response`` bytes into an output batch (for clients and tests)."""
    msg = _decode(message_classes(contract, package)[1], data, "Response")
    return validate_batch(contract.outputs, _columns(msg, contract.outputs, False, "output"), kind="output")


def wire_dtype(dtype: DType) -> np.dtype[Any]:
    """The numpy dtype a column of ``dtype`` has right after protobuf decoding."""
    return _WIRE_NUMPY[dtype.proto_type]
