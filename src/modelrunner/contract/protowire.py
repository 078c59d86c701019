"""The per-contract protobuf messages (``contract.proto``) read and written a whole column at a time.

The upb runtime hands a repeated field out value by value: decoding 100 rows of 64 doubles built 6,400 Python
floats and encoding the answer added a message per row (~0.8 ms of 1 ms per request). Here the bytes are
viewed as numpy arrays instead:

- :func:`decode_uniform` reads a ``Request`` whose rows all have the same layout — every field fixed-width
  (a ``double`` scalar, or packed ``double`` values), the same fields and lengths in every row, which is what
  any encoder writes for a batch of same-shape float rows — straight into ``(rows, *shape)`` columns. It
  returns None for anything else (integers, strings, rows that differ), which the upb parser then reads.
- :func:`encode_rows` writes a ``Response`` of numeric outputs (varints and doubles) byte for byte as upb
  does (fields by number, packed, proto3 zero scalars left out), as a ragged row-major byte matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelrunner.contract.types import Field

__all__ = ["count_rows", "decode_uniform", "encode_rows", "row_count"]

_FIXED64, _LEN = 1, 2
_SHIFTS = np.arange(0, 64, 7, dtype=np.uint64)  # the 10 groups of 7 bits of a varint
_VARINT_TYPES = frozenset({"bool", "int32", "int64", "uint32", "uint64"})
_FIELDS: dict[int, tuple[Field, ...]] = {}


def _varint_at(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, pos


def row_count(data: bytes) -> tuple[int, int] | None:
    """(rows, bytes per row) when ``data`` is rows of one length under field 1, else None (not uniform)."""
    if len(data) < 2 or data[0] != 0x0A:
        return None
    length, head = _varint_at(data, 1)
    stride = head + length
    if length <= 0 or len(data) % stride:
        return None
    return len(data) // stride, stride


def count_rows(data: bytes, stop: int) -> int:
    """How many ``rows`` (field 1) a ``Request``'s bytes hold, read from the wire format without building a
    message, and stopping once past ``stop``: 16.7M empty rows took 16 minutes and 3.6 GB to parse, their
    count to ``stop`` a few milliseconds. Malformed bytes are left for the parser to report."""
    rows = pos = 0
    end = len(data)
    while pos < end:
        tag = data[pos]
        if tag < 0x80:  # one-byte tags (fields 1-15), without a call
            pos += 1
        else:
            tag, pos = _scan_varint(data, pos)
        kind = tag & 7
        if kind == 2:
            length = data[pos] if pos < end else 0x80
            if length < 0x80:  # the common one-byte length, without a call
                pos += 1 + length
            else:
                length, pos = _scan_varint(data, pos)
                pos += length
        elif kind == 0:
            pos = _scan_varint(data, pos)[1]
        elif kind in (1, 5):
            pos += 8 if kind == 1 else 4
        else:
            break  # groups or a broken tag: the parser's error
        if tag >> 3 == 1:
            rows += 1
            if rows > stop:
                break
    return rows


def _scan_varint(data: bytes, pos: int) -> tuple[int, int]:
    """:func:`_varint_at` for a scan: a truncated or broken varint reads as 0 and ends it (past the end)."""
    value, pos = _varint_at(data, pos)
    return (value, pos) if value >= 0 else (0, len(data) + 1)


def _layout(row: bytes, fields: Mapping[int, Field]) -> dict[str, tuple[int, int]] | None:
    """name -> (offset, byte count) of each field's doubles in one row; None unless every field is fixed-width
    double (a scalar, or one packed run of values) present at most once, with no unknown fields."""
    out: dict[str, tuple[int, int]] = {}
    pos = 0
    while pos < len(row):
        tag, pos = _varint_at(row, pos)
        f = fields.get(tag >> 3) if tag > 0 else None
        if f is None or f.name in out:
            return None
        if tag & 7 == _FIXED64 and not f.shape:
            out[f.name], pos = (pos, 8), pos + 8
        elif tag & 7 == _LEN and f.shape:
            size, pos = _varint_at(row, pos)
            if size <= 0 or size % 8:
                return None
            out[f.name], pos = (pos, size), pos + size
        else:
            return None
    return out if pos == len(row) else None


def decode_uniform(
    data: bytes, fields: Sequence[Field], rows: int, stride: int
) -> dict[str, np.ndarray] | None:
    """The input columns of a ``Request`` of ``rows`` rows of ``stride`` bytes (see :func:`row_count`), for
    ``double`` fields only: a scalar as ``(rows,)``, a repeated field flat, ``(rows, count)``. None when the
    rows are not all laid out as the first one, or a field is not a double (the upb parser reads those)."""
    by_number = {f.number: f for f in fields if f.dtype.proto_type == "double"}
    if len(by_number) != len(fields):
        return None
    head = stride - _varint_at(data, 1)[0]
    layout = _layout(data[head:stride], by_number)
    if layout is None:
        return None
    if any(f.name not in layout and -1 in f.shape and not f.optional for f in fields):
        return None  # a variable-length field with no values: the upb path makes it (rows, 0)
    matrix = np.frombuffer(data, dtype=np.uint8).reshape(rows, stride)
    structure = np.ones(stride, dtype=bool)  # tags and lengths: the same bytes in every row
    for offset, size in layout.values():
        structure[head + offset : head + offset + size] = False
    if rows > 1 and not (matrix[1:, structure] == matrix[0, structure]).all():
        return None
    out = {}
    scalars = {f.name for f in fields if not f.shape}
    for name, (offset, size) in layout.items():
        start = head + offset
        values = np.ascontiguousarray(matrix[:, start : start + size]).view("<f8")
        out[name] = values.reshape(rows) if name in scalars else values
    return out


FAST_MIN_ROWS = 16
"""Fewer rows are encoded by upb: a few microseconds a row, against numpy's fixed cost (a few dozen calls)."""

_Part = tuple[np.ndarray, np.ndarray]  # (bytes (rows, width), which of them are written (rows, width))


def _varints(values: np.ndarray) -> _Part:
    """``values`` (an integer or bool array) as varints: ``(..., width)`` bytes each and the mask of the bytes
    used (negative numbers take 10, as protobuf's int32/int64 do)."""
    if values.size and values.dtype.kind in "biu" and values.min() >= 0 and values.max() < 0x80:
        small = values.astype(np.uint8)[..., None]  # one byte each: the common case (labels, lengths)
        return small, np.ones(small.shape, bool)
    v = values.astype(np.int64, copy=False).view(np.uint64) if values.dtype.kind != "u" else values
    groups = v.astype(np.uint64, copy=False)[..., None] >> _SHIFTS
    used = np.maximum((groups != 0).sum(axis=-1, keepdims=True), 1)
    index = np.arange(len(_SHIFTS))
    data = (groups & np.uint64(0x7F)) | np.where(index < used - 1, np.uint64(0x80), np.uint64(0))
    return data.astype(np.uint8), index < used


def _tag(number: int, wire: int, rows: int) -> _Part:
    value = number << 3 | wire
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    data = np.broadcast_to(np.frombuffer(bytes(out), np.uint8), (rows, len(out)))
    return data, np.ones(data.shape, bool)


def _part(f: Field, col: np.ndarray, presence: bool) -> list[_Part]:
    """One field of every row as byte parts (tag, [length], values), empty when no row writes it."""
    rows = len(col)
    flat = col.reshape(rows, -1)
    if f.dtype.proto_type == "double":
        values = np.ascontiguousarray(flat, dtype="<f8")
        payload = values.view(np.uint8).reshape(rows, -1)
        data, used = payload, np.ones(payload.shape, bool)
        if not f.shape:  # proto3 without presence: a zero scalar (all bits 0) is not written
            present = None if presence else values.view(np.uint64)[:, 0] != 0
            return _present([_tag(f.number, _FIXED64, rows), (data, used)], present)
    else:
        data, used = _varints(flat)  # (rows, k, width)
        if not f.shape:
            present = None if presence else flat[:, 0] != 0
            return _present([_tag(f.number, 0, rows), (data[:, 0], used[:, 0])], present)
        data, used = data.reshape(rows, -1), used.reshape(rows, -1)
    if not flat.shape[1]:
        return []  # an empty repeated field is not written
    return [_tag(f.number, _LEN, rows), _varints(used.sum(axis=1)), (data, used)]


def _present(parts: list[_Part], present: np.ndarray | None) -> list[_Part]:
    if present is None or present.all():
        return parts
    return [(data, used & present[:, None]) for data, used in parts]


def encode_rows(fields: Sequence[Field], columns: Mapping[str, Any], presence: bool = False) -> bytes | None:
    """A ``Response`` or ``Request`` (field 1: one message per row) of validated numeric ``columns``
    (``presence``: scalars are ``optional``, written even when zero, as in ``InputRow``); None for fewer than
    :data:`FAST_MIN_ROWS` rows, or when a field is not a number (strings, bytes) or needs a shape field:
    ``contract.proto`` encodes those with upb."""
    rows = next((len(c) for c in columns.values()), 0)
    if rows < FAST_MIN_ROWS:
        return None
    parts: list[_Part] = []
    for f in sorted(fields, key=lambda f: f.number):
        col = columns.get(f.name)
        if col is None:
            continue
        if f.dtype.proto_type not in _VARINT_TYPES and f.dtype.proto_type != "double":
            return None
        if sum(d == -1 for d in f.shape) > 1:
            return None
        if col.dtype.kind == "M":  # a timestamp travels as int64 microseconds since the epoch
            col = col.astype("datetime64[us]").astype(np.int64)
        parts += _part(f, np.asarray(col), presence)
    data = np.concatenate([p[0] for p in parts], axis=1) if parts else np.zeros((rows, 0), np.uint8)
    used = np.concatenate([p[1] for p in parts], axis=1) if parts else np.zeros((rows, 0), bool)
    size, size_used = _varints(used.sum(axis=1))
    head, head_used = _tag(1, _LEN, rows)
    matrix = np.concatenate([head, size, data], axis=1)
    mask = np.concatenate([head_used, size_used, used], axis=1)
    return bytes(matrix[mask]) if not mask.all() else matrix.tobytes()
