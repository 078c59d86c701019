"""Validate a columnar batch against contract fields and coerce it safely (the hot path of every request).

Rules (docs/contracts.md): every required field present; unknown fields rejected unless ``allow_extra`` (then
dropped); each column of shape ``(n, *field.shape)`` (``-1`` matches any size); one batch size ``n`` for
all columns; optional fields missing from the batch filled with their default. Dtypes: bool -> int/float,
int -> float, int -> narrower int (values checked against the range) and float -> narrower float
(overflow rejected) are converted; float -> int, number -> bool and number <-> string are rejected. String
fields accept str (and UTF-8 bytes); bytes fields accept bytes (and str, encoded as UTF-8). Category fields
are string fields whose values must be among the declared ``categories`` (when declared). Timestamp fields
(datetime64[us], UTC) accept datetime64 of any unit, ISO-8601 strings (an offset is converted to UTC; no
offset means UTC), ``datetime`` objects and integers (microseconds since the epoch, as proto and V2 INT64
carry them); floats, bools and other text are refused with the field and the value named.

A :class:`Validator` precomputes one checker per field; :func:`validator` caches them per fields tuple, so
the happy path is a few attribute reads and comparisons per field, with no exceptions raised.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelrunner.contract.types import DType, Field, format_shape
from modelrunner.errors import ContractError, ResourceExhausted, ValidationError

Columns = dict[str, np.ndarray]

__all__ = [
    "Columns",
    "Validator",
    "batch_size",
    "check_rows",
    "coerce_column",
    "iso_strings",
    "to_timestamp",
    "validate_batch",
    "validator",
]


def _dtype_text(dtype: np.dtype[Any]) -> str:
    return {"U": "string", "S": "bytes", "O": "object (null or mixed values)"}.get(dtype.kind, dtype.name)


class _FieldCheck:
    """Checks and coerces one column against one field."""

    __slots__ = (
        "field",
        "name",
        "what",
        "dtype",
        "dkind",
        "ndim",
        "fixed",
        "optional",
        "default_row",
        "cats",
    )

    def __init__(self, field: Field, kind: str) -> None:
        self.field = field
        self.name = field.name
        self.what = f"{kind} {field.name!r}"
        self.dtype = field.dtype.numpy()
        self.dkind = field.dtype.kind
        self.ndim = 1 + len(field.shape)
        self.fixed = tuple((i + 1, d) for i, d in enumerate(field.shape) if d != -1)
        self.optional = field.optional
        self.default_row = _default_row(field) if field.optional else None
        self.cats = frozenset(field.categories) if field.categories else None

    def __call__(self, value: Any) -> np.ndarray:
        arr = value if type(value) is np.ndarray else self._asarray(value)
        shape = arr.shape
        if len(shape) != self.ndim or any(shape[i] != d for i, d in self.fixed):
            raise self._shape_error(shape)
        if self.dkind in "SB":
            return self._text(arr) if self.cats is None else self._categories(self._text(arr))
        if self.dkind == "M":
            return arr if arr.dtype == self.dtype else self._timestamps(arr)
        if arr.dtype != self.dtype:
            arr = self._coerce(arr)
        return arr

    def default_column(self, n: int) -> np.ndarray:
        row = self.default_row
        assert row is not None
        return np.broadcast_to(row, (n, *row.shape)).copy()

    def _asarray(self, value: Any) -> np.ndarray:
        try:
            if self.dkind in "SBM":  # text, or timestamps given as a mix of strings and integers
                return np.array(value, dtype=object)
            return np.asarray(value)
        except (ValueError, TypeError):
            raise ValidationError(
                f"{self.what}: expected {self.field.describe()} per row, got rows of different lengths "
                "or mixed values",
                field=self.name,
                expected=self.field.describe(),
            ) from None

    def _shape_error(self, shape: tuple[int, ...]) -> ValidationError:
        expected = format_shape(self.field.shape)
        if not shape:
            msg = f"{self.what}: expected a batch (one value per row) of shape {expected}, got a scalar"
        else:
            msg = (
                f"{self.what}: expected per-row shape {expected}, got {format_shape(shape[1:])} "
                f"(batch shape {shape})"
            )
        return ValidationError(msg, field=self.name, expected=expected, actual=str(shape))

    def _dtype_error(self, arr: np.ndarray, why: str = "") -> ValidationError:
        msg = f"{self.what}: expected dtype {self.field.dtype.value}, got {_dtype_text(arr.dtype)}{why}"
        return ValidationError(msg, field=self.name, expected=self.field.dtype.value, actual=arr.dtype.name)

    def _coerce(self, arr: np.ndarray) -> np.ndarray:
        src, tgt = arr.dtype.kind, self.dkind
        if src == "b" and tgt in "iuf" or src in "iu" and tgt == "f":
            return arr.astype(self.dtype)
        if src in "iu" and tgt in "iu":
            return self._narrow_int(arr)
        if src == "f" and tgt == "f":
            try:
                with np.errstate(over="raise"):
                    return arr.astype(self.dtype)
            except FloatingPointError:
                raise self._dtype_error(arr, f" with values out of the {self.dtype.name} range") from None
        if src == "f" and tgt in "iu":
            raise self._dtype_error(arr, " (floats are not converted to integers)")
        raise self._dtype_error(arr)

    def _narrow_int(self, arr: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.dtype)
        if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
            raise self._dtype_error(arr, f" with values outside [{info.min}, {info.max}]")
        return arr.astype(self.dtype)

    def _categories(self, arr: np.ndarray) -> np.ndarray:
        cats = self.cats
        assert cats is not None
        for x in arr.flat:
            if x not in cats:
                raise ValidationError(
                    f"{self.what}: {x!r:.40} is not one of its categories ({', '.join(sorted(cats))})",
                    field=self.name,
                    expected=sorted(cats),
                    actual=x,
                )
        return arr

    def _timestamps(self, arr: np.ndarray) -> np.ndarray:
        kind = arr.dtype.kind
        if kind == "M" or kind in "iu":
            if kind in "iu" and arr.size and (int(arr.min()) < _MIN_US or int(arr.max()) > _MAX_US):
                raise self._dtype_error(arr, " with values out of the timestamp range (microseconds)")
            return arr.astype(self.dtype)
        if kind not in "OUS":
            raise self._dtype_error(arr, " (a timestamp is an ISO-8601 string or microseconds since 1970)")
        out = np.empty(arr.shape, dtype=self.dtype)
        flat = out.reshape(-1)
        for i, x in enumerate(arr.flat):
            flat[i] = self._timestamp_item(x)
        return out

    def _timestamp_item(self, x: Any) -> np.datetime64:
        if isinstance(x, np.str_ | np.bytes_):
            x = x.item()
        try:
            return to_timestamp(x)
        except (ValueError, TypeError, OverflowError):
            raise ValidationError(
                f"{self.what}: {x!r:.40} is not a timestamp (an ISO-8601 string such as "
                "'2024-05-01T12:30:00Z', or microseconds since 1970)",
                field=self.name,
                expected=self.field.dtype.value,
                actual=type(x).__name__,
            ) from None

    def _text(self, arr: np.ndarray) -> np.ndarray:
        want = str if self.dkind == "S" else bytes
        kind = arr.dtype.kind
        if kind == "O":
            if all(type(x) is want for x in arr.flat):
                return arr
        elif kind not in "US":
            raise self._dtype_error(arr)
        out = np.empty(arr.shape, dtype=object)
        flat = out.reshape(-1)
        for i, x in enumerate(arr.flat):
            flat[i] = self._text_item(x, want, arr)
        return out

    def _text_item(self, x: Any, want: type, arr: np.ndarray) -> Any:
        if isinstance(x, want):
            return want(x)
        try:
            if want is str and isinstance(x, bytes | bytearray | memoryview):
                return bytes(x).decode("utf-8")
            if want is bytes and isinstance(x, str):
                return x.encode("utf-8")
            if want is bytes and isinstance(x, bytearray | memoryview):
                return bytes(x)
        except UnicodeDecodeError:
            raise self._dtype_error(arr, " (bytes that are not UTF-8)") from None
        raise ValidationError(
            f"{self.what}: expected dtype {self.field.dtype.value}, got {type(x).__name__} value {x!r:.40}",
            field=self.name,
            expected=self.field.dtype.value,
            actual=type(x).__name__,
        )


_MIN_US, _MAX_US = -(2**62), 2**62


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
        if not _MIN_US <= int(x) <= _MAX_US:
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


def _default_row(field: Field) -> np.ndarray:
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


class Validator:
    """Validates batches against fixed fields; build once per contract (see :func:`validator`)."""

    __slots__ = ("_checks", "_names", "_allow_extra", "_kind")

    def __init__(self, fields: Sequence[Field], *, allow_extra: bool = False, kind: str = "input") -> None:
        self._checks = tuple(_FieldCheck(f, kind) for f in fields)
        self._names = frozenset(f.name for f in fields)
        self._allow_extra = allow_extra
        self._kind = kind

    def __call__(self, columns: Mapping[str, Any]) -> Columns:
        if not isinstance(columns, Mapping):
            raise ValidationError(
                f"a batch must map {self._kind} names to arrays, got {type(columns).__name__}"
            )
        if not self._allow_extra:
            for name in columns:
                if name not in self._names:
                    raise self._unknown(name)
        out: Columns = {}
        n, first = -1, ""
        missing = []
        for check in self._checks:
            value = columns.get(check.name)
            if value is None:
                if not check.optional:
                    raise ValidationError(
                        f"missing {check.what} ({check.field.describe()})", field=check.name
                    )
                missing.append(check)
                continue
            arr = check(value)
            if n < 0:
                n, first = arr.shape[0], check.name
            elif arr.shape[0] != n:
                raise ValidationError(
                    f"{check.what} has {arr.shape[0]} rows but {first!r} has {n}", field=check.name
                )
            out[check.name] = arr
        for check in missing:
            out[check.name] = check.default_column(max(n, 0))
        return out

    def check(self, name: str, value: Any) -> np.ndarray:
        """Validate and coerce one column."""
        for c in self._checks:
            if c.name == name:
                return c(value)
        raise self._unknown(name)

    def _unknown(self, name: str) -> ValidationError:
        known = ", ".join(sorted(self._names)) or "none"
        return ValidationError(f"unknown {self._kind} {name!r} (expected: {known})", field=name)


_CACHE: dict[tuple[int, bool, str], tuple[Any, Validator]] = {}


def validator(fields: Sequence[Field], *, allow_extra: bool = False, kind: str = "input") -> Validator:
    """A cached :class:`Validator` for a tuple of fields (e.g. ``contract.inputs``)."""
    key = (id(fields), allow_extra, kind)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is fields:
        return hit[1]
    v = Validator(fields, allow_extra=allow_extra, kind=kind)
    if isinstance(fields, tuple):
        if len(_CACHE) >= 512:
            _CACHE.clear()
        _CACHE[key] = (fields, v)
    return v


def validate_batch(
    fields: Sequence[Field], columns: Mapping[str, Any], *, allow_extra: bool = False, kind: str = "input"
) -> Columns:
    """Check ``columns`` against ``fields`` and return them coerced to the fields' dtypes.

    Raises :class:`~modelrunner.errors.ValidationError` naming the field, the expected and the actual
    dtype or shape.
    """
    return validator(fields, allow_extra=allow_extra, kind=kind)(columns)


_CHECKS: dict[tuple[int, str], tuple[Field, _FieldCheck]] = {}


def coerce_column(field: Field, value: Any, *, kind: str = "input") -> np.ndarray:
    """Validate and coerce one column against one field (checkers cached per field object)."""
    key = (id(field), kind)
    hit = _CHECKS.get(key)
    if hit is None or hit[0] is not field:
        if len(_CHECKS) >= 1024:
            _CHECKS.clear()
        hit = _CHECKS[key] = (field, _FieldCheck(field, kind))
    return hit[1](value)


def batch_size(columns: Mapping[str, Any]) -> int:
    """The number of rows of a batch (0 for no columns); raises if the columns disagree."""
    n, first = -1, ""
    for name, col in columns.items():
        shape = getattr(col, "shape", None)
        try:
            m = shape[0] if shape is not None else len(col)
        except (TypeError, IndexError):
            raise ValidationError(
                f"column {name!r} is a scalar, not a batch (one value per row)", field=name
            ) from None
        if n < 0:
            n, first = m, name
        elif m != n:
            raise ValidationError(f"column {name!r} has {m} rows but {first!r} has {n}", field=name)
    return max(n, 0)


def check_rows(rows: int, limit: int | None, *, exact: bool = True) -> None:
    """Refuse a request of more than ``limit`` rows (``max_request_rows``) with a 413 naming the limit.

    ``exact=False`` when counting stopped past the limit (the count is then a lower bound)."""
    if limit is not None and rows > limit:
        count = f"{rows} rows" if exact else f"more than {limit} rows"
        raise ResourceExhausted(
            f"the request has {count}; at most {limit} rows are accepted per request (max_request_rows)",
            rows=rows if exact else None,
            limit=limit,
        )
