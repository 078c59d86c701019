"""Derive contract fields from data (a sample, a model's output) or from type annotations.

A *sample* becomes columns the same way everywhere (``as_columns``):

- a numpy array (or a list, turned into one) -> one field, ``default_name`` (``"input"``), per-row shape
  ``sample.shape[1:]``;
- a pandas DataFrame -> one field per column (names made into identifiers: ``"sepal length (cm)"`` ->
  ``sepal_length_cm``); a Series -> one field; a datetime64 column (naive or tz-aware, made UTC) is a
  ``timestamp`` field and a Categorical a ``category`` field declaring its categories;
- a dict of arrays -> one field per key; a list of dicts (rows) -> one field per key.

Annotations (``fields_from_annotations``) accept a dataclass, NamedTuple or TypedDict whose fields are
``int``, ``float``, ``str``, ``bool``, ``bytes``, numpy scalar types, ``list[...]`` of those (a variable
dimension) and ``X | None`` (an optional field).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pydantic

from modelrunner.contract.types import DType, Field
from modelrunner.errors import ContractError

Columns = dict[str, np.ndarray]

_PY_TYPES: dict[Any, DType] = {
    bool: DType.BOOL,
    int: DType.INT64,
    float: DType.FLOAT64,
    str: DType.STRING,
    bytes: DType.BYTES,
}


def sanitize_name(name: Any) -> str:
    """Turn a column label into a field name: letters, digits and ``_``, not starting with a digit."""
    text = re.sub(r"[^0-9A-Za-z_]+", "_", str(name)).strip("_")
    if not text:
        raise ContractError(f"column {name!r} cannot be turned into a field name")
    return f"f_{text}" if text[0].isdigit() else text


def _column(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise ContractError(f"field {name!r}: a sample needs rows (got a scalar, expected an array)")
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    return arr


def _frame_columns(frame: Any) -> Columns:
    out: Columns = {}
    for label in frame.columns:
        name = sanitize_name(label)
        if name in out:
            raise ContractError(f"columns {label!r} and another both become field {name!r}; rename one")
        out[name] = _column(series_values(frame[label]), name)
    return out


def series_values(series: Any) -> np.ndarray:
    """A pandas Series -> its values as a contract column: a tz-aware datetime column converted to UTC
    and made naive (timestamps are UTC), a Categorical's values as strings."""
    dtype = series.dtype
    if getattr(dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif getattr(dtype, "name", "") == "category":
        return np.array([None if v is None or v != v else str(v) for v in series.to_numpy()], dtype=object)
    return np.asarray(series.to_numpy())


def frame_categories(frame: Any) -> dict[str, tuple[str, ...]]:
    """``{column label: its categories as strings}`` for the Categorical columns of a DataFrame."""
    return {
        str(label): tuple(str(c) for c in frame[label].dtype.categories)
        for label in frame.columns
        if getattr(frame[label].dtype, "name", "") == "category"
    }


def as_columns(sample: Any, default_name: str = "input") -> Columns:
    """Convert a sample (array, DataFrame, Series, dict of arrays, rows, list; a torch tensor is an array)
    into columns."""
    if _is_tensor(sample):
        sample = sample.detach().cpu().numpy()
    if isinstance(sample, np.ndarray | np.generic):
        return {default_name: _column(sample, default_name)}
    kind = type(sample).__name__
    if kind == "DataFrame" and hasattr(sample, "columns"):
        return _frame_columns(sample)
    if kind == "Series" and hasattr(sample, "to_numpy"):
        name = default_name if sample.name is None else sanitize_name(sample.name)
        return {name: _column(sample.to_numpy(), name)}
    if isinstance(sample, Mapping):
        return {_key(k): _column(v, _key(k)) for k, v in sample.items()}
    if isinstance(sample, Sequence) and not isinstance(sample, str | bytes):
        if sample and all(isinstance(r, Mapping) for r in sample):
            return _rows_to_columns(sample)
        return {default_name: _column(sample, default_name)}
    raise ContractError(
        f"cannot use a {kind} as a sample: give a numpy array, a pandas DataFrame or a dict of arrays"
    )


def _is_tensor(value: Any) -> bool:
    """A torch tensor (torch is not imported to tell)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise ContractError(f"column names must be strings, got {key!r}")
    return key


def _rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> Columns:
    names = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != names:
            raise ContractError(f"row {i} has keys {sorted(row)}, expected {sorted(names)}")
    return {_key(n): _column([row[n] for row in rows], n) for n in names}


def field_for(name: str, arr: np.ndarray) -> Field:
    """The field describing one column (``arr`` has shape ``(n, *shape)``)."""
    if arr.dtype.kind == "O":
        dtype = DType.BYTES if arr.size and all(isinstance(v, bytes) for v in arr.flat) else DType.STRING
    else:
        try:
            dtype = DType.from_numpy(arr.dtype)
        except ContractError as exc:
            raise ContractError(f"field {name!r}: {exc}") from exc
    try:
        return Field(name=name, dtype=dtype, shape=tuple(int(d) for d in arr.shape[1:]))
    except pydantic.ValidationError as exc:  # a bad name or a zero-sized dimension
        msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ContractError(f"field {name!r}: {msg}") from exc


def _fields(columns: Columns) -> tuple[Field, ...]:
    if not columns:
        raise ContractError("a sample needs at least one column")
    rows = {name: len(arr) for name, arr in columns.items()}
    if len(set(rows.values())) > 1:
        raise ContractError(f"columns have different numbers of rows: {rows}")
    return tuple(field_for(name, arr) for name, arr in columns.items())


def fields_from_sample(sample: Any, default_name: str = "input") -> tuple[Field, ...]:
    """Input fields described by a sample (see module docstring); a DataFrame column whose label is no
    field name keeps the label as the field's ``alias``."""
    fields = _fields(as_columns(sample, default_name))
    if type(sample).__name__ == "DataFrame" and hasattr(sample, "columns"):
        labels = [str(label) for label in sample.columns]
        cats = frame_categories(sample)
        fields = tuple(
            _frame_field(f, label, cats.get(label)) for f, label in zip(fields, labels, strict=True)
        )
    return fields


def _frame_field(f: Field, label: str, categories: tuple[str, ...] | None) -> Field:
    update: dict[str, Any] = {} if label == f.name else {"alias": label}
    if categories is not None:  # a pandas Categorical: a category field with its declared set
        update.update(dtype=DType.CATEGORY, categories=categories)
    return f.model_copy(update=update) if update else f


def fields_from_output(columns: Mapping[str, Any]) -> tuple[Field, ...]:
    """Output fields described by what a model returned on a batch."""
    if not isinstance(columns, Mapping):
        raise ContractError(f"a model must return a dict of columns, got {type(columns).__name__}")
    return _fields({_key(k): _column(v, _key(k)) for k, v in columns.items()})


def example_columns(fields: Sequence[Field], rows: int = 2) -> Columns:
    """A small batch of zeros (empty strings/bytes) that fits ``fields``: a stand-in sample."""
    out: Columns = {}
    for f in fields:
        shape = (rows, *(d if d > 0 else 1 for d in f.shape))
        if f.dtype in (DType.STRING, DType.CATEGORY):
            out[f.name] = np.full(shape, f.categories[0] if f.categories else "", dtype=object)
        elif f.dtype is DType.BYTES:
            out[f.name] = np.full(shape, b"", dtype=object)
        else:
            out[f.name] = np.zeros(shape, dtype=f.dtype.numpy())
    return out


# --- annotations -------------------------------------------------------------------------------------


def fields_from_annotations(cls: Any) -> tuple[Field, ...]:
    """Fields of a dataclass, NamedTuple or TypedDict, in declaration order."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # unresolved forward references and the like
        raise ContractError(f"cannot read the annotations of {cls!r}: {exc}") from exc
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        return tuple(_dataclass_field(f, hints[f.name]) for f in dataclasses.fields(cls))
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        defaults = getattr(cls, "_field_defaults", {})
        return tuple(_annotated(n, hints[n], n in defaults, defaults.get(n)) for n in cls._fields)
    if typing.is_typeddict(cls):
        maybe: frozenset[str] = getattr(cls, "__optional_keys__", frozenset())
        return tuple(_annotated(n, t, n in maybe, None) for n, t in hints.items())
    raise ContractError(
        f"{getattr(cls, '__name__', cls)!r} is not a dataclass, NamedTuple or TypedDict; "
        "cannot derive a signature from it"
    )


def _dataclass_field(f: dataclasses.Field[Any], hint: Any) -> Field:
    has_default = f.default is not dataclasses.MISSING
    has_factory = f.default_factory is not dataclasses.MISSING
    return _annotated(f.name, hint, has_default or has_factory, f.default if has_default else None)


def _annotated(name: str, hint: Any, has_default: bool, default: Any) -> Field:
    optional: bool = has_default
    inner = _strip_optional(hint)
    if inner is not hint:
        optional = True
    try:
        dtype, shape = _dtype_shape(inner)
    except ContractError as exc:
        raise ContractError(f"field {name!r}: {exc}") from exc
    return Field(name=name, dtype=dtype, shape=shape, optional=optional, default=default)


def _strip_optional(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _dtype_shape(hint: Any) -> tuple[DType, tuple[int, ...]]:
    if hint in _PY_TYPES:
        return _PY_TYPES[hint], ()
    if isinstance(hint, type) and issubclass(hint, np.generic):
        return DType.from_numpy(hint), ()
    origin = typing.get_origin(hint)
    if origin in (list, Sequence, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) != 1:
            raise ContractError(f"unsupported annotation {hint!r}: use list[X]")
        dtype, shape = _dtype_shape(args[0])
        return dtype, (-1, *shape)
    raise ContractError(
        f"unsupported annotation {hint!r}: use int, float, str, bool, bytes, numpy scalars or list[...]"
    )
