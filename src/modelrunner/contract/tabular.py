"""The bodies MLflow's scoring server reads, turned into native rows: ``dataframe_records``,
``dataframe_split`` and ``text/csv`` with a header row (docs/api.md, "MLflow-style bodies and CSV").

Each becomes a list of row objects that :func:`modelrunner.contract.codecs.rows_to_columns` decodes as it
decodes ``instances``, so nulls, optional defaults and unknown names behave the same in every form. CSV
cells are text: each is read as its field's type (a number, an integer, ``true``/``false``, text), a JSON
array for a field with a shape, and an empty cell is a missing value. Errors name the row and the column.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from modelrunner.contract.types import DType, Field
from modelrunner.contract.validate import check_rows
from modelrunner.errors import ContractError, ValidationError

__all__ = [
    "aliases",
    "columns_frame",
    "csv_rows",
    "frame_inputs",
    "is_frame",
    "records_rows",
    "renamed",
    "split_rows",
]


def records_rows(records: Any) -> list[Any]:
    """``dataframe_records`` (pandas ``orient="records"``): already a list of row objects."""
    if not isinstance(records, list):
        raise ValidationError(
            f"'dataframe_records' must be a list of row objects, got {type(records).__name__}"
        )
    for i, row in enumerate(records):
        if not isinstance(row, dict):
            raise ValidationError(
                f"dataframe_records row {i} must be an object of column values, got {type(row).__name__}"
            )
    return records


def split_rows(split: Any, max_rows: int | None = None) -> list[dict[str, Any]]:
    """``dataframe_split`` (pandas ``orient="split"``: ``columns``, ``data``; ``index`` ignored) -> rows."""
    if not isinstance(split, dict):
        raise ValidationError(
            f"'dataframe_split' must be an object with 'columns' and 'data', got {type(split).__name__}"
        )
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ValidationError("'dataframe_split.columns' must be a list of column names")
    _check_unique(columns, "dataframe_split.columns")
    if not isinstance(data, list):
        raise ValidationError("'dataframe_split.data' must be a list of rows (a list of values each)")
    check_rows(len(data), max_rows)
    width = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise ValidationError(
                f"dataframe_split row {i} has {got} for {width} columns ({', '.join(columns)})"
            )
    return [dict(zip(columns, row, strict=True)) for row in data]


def _check_unique(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(f"{where}: column {name!r} appears twice", field=name)
        seen.add(name)


# --- CSV -------------------------------------------------------------------------------------------------

_TRUE, _FALSE = frozenset(("true", "1", "yes")), frozenset(("false", "0", "no"))


def _boolean(cell: str) -> bool:
    low = cell.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError


def _json_array(cell: str) -> Any:
    value = orjson.loads(cell)
    if not isinstance(value, list):
        raise ValueError
    return value


def _reader(field: Field) -> tuple[Callable[[str], Any], str]:
    """How to read a CSV cell of ``field`` and what the cell must be (for the error)."""
    if field.shape:
        return _json_array, f"a JSON array ({field.describe()})"
    if field.dtype is DType.BOOL:
        return _boolean, "true or false"
    if field.dtype.kind == "i" or field.dtype.kind == "u":
        return int, f"an integer ({field.dtype.value})"
    if field.dtype.kind == "f":
        return float, f"a number ({field.dtype.value})"
    if field.dtype is DType.TIMESTAMP:
        return _timestamp, "an ISO-8601 timestamp (or microseconds since 1970)"
    return str, "text"


def _timestamp(cell: str) -> Any:
    from modelrunner.contract.validate import to_timestamp

    text = cell.strip()
    return to_timestamp(int(text) if text.lstrip("-").isdigit() else text)


def csv_rows(
    raw: bytes, fields: Sequence[Field], max_rows: int | None = None, names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A CSV body with a header row naming the inputs -> row objects of typed values.

    ``names`` maps an accepted column label to its field name (default: the fields' aliases). Refused
    (422): no header, an unknown or repeated column, a row of the wrong length, a cell not of its type."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the CSV body is not UTF-8 (byte {exc.start})") from None
    lines = _lines(text, max_rows)
    if not lines:
        raise ValidationError("the CSV body is empty; expected a header row naming the inputs")
    header, body = lines[0], lines[1:]
    by_name = {f.name: f for f in fields}
    names = names if names is not None else aliases(fields)
    columns = [names.get(h.strip(), h.strip()) for h in header]
    _check_unique(columns, "CSV header")
    for label, name in zip(header, columns, strict=True):
        if name not in by_name:
            raise ValidationError(
                f"CSV header: unknown column {label.strip()!r} (expected: {', '.join(sorted(by_name))})",
                field=label.strip(),
            )
    readers = [(name, *_reader(by_name[name])) for name in columns]
    return [_csv_row(i, line, readers, len(header)) for i, line in enumerate(body)]


def _lines(text: str, max_rows: int | None) -> list[list[str]]:
    """The non-blank lines, header included; past ``max_rows`` rows a 413 before reading the rest (a
    32 MiB body of one-character lines is millions of lists)."""
    lines: list[list[str]] = []
    try:
        for line in csv.reader(io.StringIO(text, newline="")):
            if not line:
                continue  # a blank line (a trailing newline) is no row
            lines.append(line)
            if max_rows is not None and len(lines) > max_rows + 1:
                check_rows(max_rows + 1, max_rows, exact=False)
    except csv.Error as exc:
        raise ValidationError(f"malformed CSV: {exc}") from None
    return lines


def _csv_row(
    i: int, line: list[str], readers: list[tuple[str, Callable[[str], Any], str]], width: int
) -> dict[str, Any]:
    if len(line) != width:
        raise ValidationError(f"CSV row {i} (line {i + 2}) has {len(line)} values for {width} columns")
    row: dict[str, Any] = {}
    for cell, (name, read, what) in zip(line, readers, strict=True):
        if not cell.strip():
            continue  # an empty cell is a missing value: an optional field's default, else an error
        try:
            row[name] = read(cell)
        except (ValueError, orjson.JSONDecodeError):
            raise ValidationError(
                f"CSV row {i} (line {i + 2}), column {name!r}: {cell!r:.40} is not {what}", field=name
            ) from None
    return row


# --- pandas DataFrames (Predictor.predict) ----------------------------------------------------------------


def is_frame(data: Any) -> bool:
    """A pandas DataFrame (pandas is not imported to tell)."""
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "index")


def frame_inputs(frame: Any, fields: Sequence[Field]) -> dict[str, Any]:
    """A DataFrame -> columns named as ``fields``: a column labelled with a field's name, or with the label
    it was saved from (``"income ($k)"`` for ``income_k``, contract/derive.py ``sanitize_name``). Cells
    holding arrays become per-row vectors; text columns (pandas' ``str`` dtype too, and Categoricals)
    object arrays; tz-aware times UTC."""
    from modelrunner.contract.derive import sanitize_name, series_values

    names = {f.name for f in fields}
    names_of = aliases(fields)
    out: dict[str, Any] = {}
    for label in frame.columns:
        key = names_of.get(str(label), str(label))
        if key not in names:
            with contextlib.suppress(ContractError):  # a label that makes no field name: an unknown column
                key = sanitize_name(label) if sanitize_name(label) in names else key
        out[key] = _frame_column(key, series_values(frame[label]))
    return out


def _frame_column(name: str, arr: Any) -> Any:
    import numpy as np

    if arr.dtype.kind == "O" and len(arr) and isinstance(arr[0], list | tuple | np.ndarray):
        try:
            return np.stack([np.asarray(v) for v in arr])
        except ValueError:
            raise ValidationError(
                f"column {name!r}: rows hold arrays of different shapes", field=name
            ) from None
    if arr.dtype.kind != "O" and str(arr.dtype).startswith("str"):
        return arr.astype(object)
    return arr


def columns_frame(columns: Any, index: Any = None) -> Any:
    """Output columns -> a DataFrame (on ``index``); a multi-value output is one array per cell."""
    import pandas as pd

    data = {name: (list(col) if col.ndim > 1 else col) for name, col in columns.items()}
    return pd.DataFrame(data, index=index)


# --- aliases: the column labels fields were derived from ---------------------------------------------------

_ALIASES: dict[int, tuple[Any, dict[str, str]]] = {}


def aliases(fields: Sequence[Field]) -> dict[str, str]:
    """``{alias: field name}`` of ``fields`` (empty for most contracts), cached per fields tuple as
    ``validate.validator`` is: one dict lookup per request."""
    hit = _ALIASES.get(id(fields))
    if hit is not None and hit[0] is fields:
        return hit[1]
    found = {f.alias: f.name for f in fields if f.alias}
    if isinstance(fields, tuple):
        if len(_ALIASES) >= 512:
            _ALIASES.clear()
        _ALIASES[id(fields)] = (fields, found)
    return found


def renamed(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``row`` with aliases replaced by field names; a field given by both is refused (422)."""
    if not any(key in names for key in row):
        return row
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = names.get(key, key)
        if name in out or (name != key and name in row):
            raise ValidationError(f"input {name!r} is given twice (as {key!r} and {name!r})", field=name)
        out[name] = value
    return out
