"""Values a contract field takes that are not in the request: timestamps read from any of their wire forms,
ISO strings of them, and the default row of an optional field (re-exported by :mod:`.validate`)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from modelrunner.contract.types import DType, Field, format_shape
from modelrunner.errors import ContractError

MIN_US, MAX_US = -(2**62), 2**62
"""Timestamps as integers (µs since the epoch) are refused outside this range (numpy's datetime64[us])."""


def to_timestamp(x: Any) -> np.datetime64:
    """One value -> ``datetime64[us]`` in UTC: an ISO-8601 string (``Z``, an offset or none = UTC; a space
    may separate date and time), a ``datetime``/``date`` (aware ones converted to UTC), a ``datetime64``,
    or an integer of microseconds since 1970. Raises ValueError/TypeError otherwise."""
    if isinstance(x, bytes | bytearray):
        x = bytes(x).decode("utf-8")
    if isinstance(x, str):
        x = _dt.datetime.fromisoformat(x.strip())
    if isinstance(x, np.datetime64):
        return x.astype("datetime64[us]")  # type: ignore[no-any-return]
    if isinstance(x, bool):
        raise TypeError(x)
    if isinstance(x, int | np.integer):
        if not MIN_US <= int(x) <= MAX_US:
            raise OverflowError(x)
        return np.datetime64(int(x), "us")
    if isinstance(x, _dt.datetime):
        if x.tzinfo is not None:
            x = x.astimezone(_dt.UTC).replace(tzinfo=None)
        return np.datetime64(x.replace(tzinfo=None), "us")
    if isinstance(x, _dt.date):
        return np.datetime64(x, "us")
    raise TypeError(x)


def iso_strings(arr: np.ndarray) -> np.ndarray:
    """A datetime64 array -> an object array of ISO-8601 UTC strings (``2024-05-01T12:30:00Z``; with
    microseconds, ``...:00.500000Z``, only when there is a fraction); NaT -> None."""
    arr = arr.astype("datetime64[us]")
    out: np.ndarray = np.datetime_as_string(arr, unit="us", timezone="UTC").astype(object)
    whole = arr.astype("datetime64[s]") == arr
    if whole.any():
        out[whole] = np.datetime_as_string(arr[whole], unit="s", timezone="UTC")
    out[np.isnat(arr)] = None
    return out


def default_row(field: Field) -> np.ndarray:
    """The value of one row of an optional field: its default broadcast to the per-row shape."""
    dtype = field.dtype.numpy()
    value = field.default
    if value is None:
        value = {DType.STRING: "", DType.BYTES: b"", DType.CATEGORY: ""}.get(field.dtype, 0)
        if field.categories and field.default is None:
            value = field.categories[0]
    if field.dtype is DType.TIMESTAMP:
        return _timestamp_default(field, value)
    try:
        arr = np.array(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ContractError(f"field {field.name!r}: default {value!r} is not a {field.dtype.value}") from exc
    if field.dtype.kind in "SB":
        arr = _text_default(field, arr)
    if arr.ndim == 0:
        shape = tuple(0 if d == -1 else d for d in field.shape)
        return np.full(shape, arr.item(), dtype=dtype)
    dims = zip(arr.shape, field.shape, strict=False)
    if arr.ndim != len(field.shape) or any(d not in (-1, a) for a, d in dims):
        raise ContractError(
            f"field {field.name!r}: default of shape {arr.shape} does not fit per-row shape "
            f"{format_shape(field.shape)}"
        )
    return arr


def _timestamp_default(field: Field, value: Any) -> np.ndarray:
    """A timestamp field's default row (``0`` is 1970-01-01T00:00Z); a scalar default only."""
    try:
        stamp = to_timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ContractError(f"field {field.name!r}: default {value!r} is not a timestamp") from exc
    shape = tuple(0 if d == -1 else d for d in field.shape)
    return np.full(shape, stamp, dtype=field.dtype.numpy())


def _text_default(field: Field, arr: np.ndarray) -> np.ndarray:
    want = bytes if field.dtype is DType.BYTES else str
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, x in enumerate(arr.flat):
        if isinstance(x, str) and want is bytes:
            x = x.encode("utf-8")
        elif isinstance(x, bytes) and want is str:
            x = x.decode("utf-8", "replace")
        if not isinstance(x, want):
            raise ContractError(
                f"field {field.name!r}: default {field.default!r} is not a {field.dtype.value}"
            )
        flat[i] = x
    return out
