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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelrunner.contract.types import Field, format_shape
from modelrunner.contract.values import MAX_US as _MAX_US
from modelrunner.contract.values import MIN_US as _MIN_US
from modelrunner.contract.values import default_row, iso_strings, to_timestamp
from modelrunner.errors import ResourceExhausted, ValidationError

Columns = dict[str, np.ndarray]


class ValidColumns(dict[str, np.ndarray]):
    """A batch already checked against ``fields`` (exactly those fields, coerced, one batch size), as the
    JSON decoder makes it (``codecs.rows_to_columns``): the runner does not check it again against the same
    fields tuple (:func:`valid_for`). A copy (``dict(...)``) is an ordinary dict, checked as any other."""

    __slots__ = ("fields",)

    def __init__(self, columns: Mapping[str, np.ndarray], fields: Sequence[Field]) -> None:
        super().__init__(columns)
        self.fields = fields


def valid_for(columns: Mapping[str, Any], fields: Sequence[Field]) -> bool:
    """True when ``columns`` is a :class:`ValidColumns` checked against this very ``fields`` object."""
    return type(columns) is ValidColumns and columns.fields is fields


__all__ = [
    "Columns",
    "ValidColumns",
    "Validator",
    "batch_size",
    "check_rows",
    "coerce_column",
    "iso_strings",
    "to_timestamp",
    "valid_for",
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
        self.default_row = default_row(field) if field.optional else None
        self.cats = frozenset(field.categories) if field.categories else None

    def __call__(self, value: Any) -> np.ndarray:
        arr = value if type(value) is np.ndarray else self._asarray(value)
        shape = arr.shape
        if len(shape) != self.ndim:
            raise self._shape_error(shape)
        for i, d in self.fixed:  # a loop, not any() over a generator: this runs per column per request
            if shape[i] != d:
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


class Validator:
    """Validates batches against fixed fields; build once per contract (see :func:`validator`)."""

    __slots__ = ("_checks", "_names", "_allow_extra", "_kind")

    def __init__(self, fields: Sequence[Field], *, allow_extra: bool = False, kind: str = "input") -> None:
        self._checks = tuple(_FieldCheck(f, kind) for f in fields)
        self._names = frozenset(f.name for f in fields)
        self._allow_extra = allow_extra
        self._kind = kind

    def __call__(self, columns: Mapping[str, Any]) -> Columns:
        if type(columns) is not dict and not isinstance(columns, Mapping):  # dict: no ABC check
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
