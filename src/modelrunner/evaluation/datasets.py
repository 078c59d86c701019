"""Evaluation data sets: ``.npz``, ``.csv``, ``.parquet`` or a Python callable, with their sha256 (lineage).

- ``.npz``: one array per contract input field plus ``target`` (strings as numpy unicode arrays: no pickles).
- ``.csv`` / ``.parquet``: columns named after the input fields plus ``target``; a vector field ``x`` of
  per-row shape ``(k,)`` may also be given as ``k`` columns ``x_0 … x_{k-1}``.
- a callable ``pkg.module:function`` (or a Python callable) returning ``(columns, target)``, a dict of
  arrays holding ``target``, or a DataFrame with a ``target`` column.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from modelrunner.bundle.provenance import sha256_file
from modelrunner.contract import Contract
from modelrunner.contract.validate import validate_batch
from modelrunner.errors import InvalidArgument, NotFound, ValidationError, require

Columns = dict[str, np.ndarray]
DataSource = str | Path | Callable[[], Any]


@dataclass(frozen=True)
class Dataset:
    """Raw columns as read, the target, and where they came from."""

    name: str
    columns: Columns
    target: np.ndarray
    sha256: str
    source: str = ""
    _cache: dict[str, Columns] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return int(len(self.target))

    def inputs_for(self, contract: Contract) -> Columns:
        """The input columns this contract asks for, validated (``ValidationError`` names the field)."""
        key = repr([f.model_dump(mode="json") for f in contract.inputs])
        if key not in self._cache:
            cols = {}
            for f in contract.inputs:
                col = _assemble(self.columns, f.name, f.shape)
                if col is None and not f.optional:
                    raise ValidationError(
                        f"data set {self.name!r} has no column for input field {f.name!r} ({f.describe()}); "
                        f"it has: {_listing(self.columns)}",
                        field=f.name,
                    )
                if col is not None:
                    cols[f.name] = col
            batch = validate_batch(contract.inputs, cols, kind=f"data set {self.name!r}: input")
            self._check_rows(batch)
            self._cache[key] = batch
        return self._cache[key]

    def _check_rows(self, batch: Columns) -> None:
        for name, col in batch.items():
            if len(col) != self.rows:
                raise ValidationError(
                    f"data set {self.name!r}: input {name!r} has {len(col)} rows but the "
                    f"target has {self.rows}",
                    field=name,
                )


def _listing(columns: Mapping[str, Any], limit: int = 12) -> str:
    names = sorted(columns)
    more = f", … ({len(names)} in all)" if len(names) > limit else ""
    return (", ".join(names[:limit]) or "no columns") + more


def _assemble(columns: Columns, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The column ``name``, or one stacked from ``name_0 … name_{k-1}`` for a fixed-shape vector field."""
    if name in columns:
        return columns[name]
    if not shape or any(d == -1 for d in shape):
        return None
    k = int(np.prod(shape))
    parts = [columns.get(f"{name}_{i}") for i in range(k)]
    if any(p is None for p in parts):
        return None
    stacked = np.stack([np.asarray(p) for p in parts if p is not None], axis=1)
    return stacked.reshape(len(stacked), *shape)


def _target(columns: Columns, target: str, name: str) -> np.ndarray:
    if target in columns:
        return np.asarray(columns[target])
    pat = re.compile(rf"^{re.escape(target)}_(\d+)$")
    idx = sorted((int(m.group(1)), k) for k in columns if (m := pat.match(k)))
    if idx and [i for i, _ in idx] == list(range(len(idx))):
        return np.stack([np.asarray(columns[k]) for _, k in idx], axis=1)
    raise ValidationError(
        f"data set {name!r} has no target column {target!r}; it has: {_listing(columns)}", field=target
    )


def sha256_columns(columns: Mapping[str, np.ndarray]) -> str:
    """A content hash of in-memory columns (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name in sorted(columns):
        arr = np.asarray(columns[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        if arr.dtype.kind == "O":
            for v in arr.reshape(-1).tolist():
                h.update(repr(v).encode("utf-8") + b"\x00")
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _read_npz(path: Path) -> Columns:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InvalidArgument(
                f"{path.name}: holds object arrays (pickles), which are not loaded; save "
                "strings as numpy unicode arrays"
            ) from exc
        raise InvalidArgument(f"{path.name}: not a readable .npz file ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise InvalidArgument(f"{path.name}: not a readable .npz file ({exc})") from exc


def frame_columns(frame: Any) -> Columns:
    """A DataFrame as columns; list-valued cells (parquet arrays) are stacked into per-row vectors."""
    out: Columns = {}
    for label in frame.columns:
        arr = frame[label].to_numpy()
        if arr.dtype.kind == "O" and len(arr) and isinstance(arr[0], list | tuple | np.ndarray):
            try:
                arr = np.stack([np.asarray(v) for v in arr])
            except ValueError as exc:
                raise ValidationError(
                    f"column {label!r}: rows hold arrays of different shapes", field=str(label)
                ) from exc
        elif arr.dtype.kind == "O" or str(arr.dtype).startswith("str"):
            arr = np.array([None if _isna(v) else v for v in arr], dtype=object)
        out[str(label)] = arr
    return out


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _read_table(path: Path) -> Columns:
    pd = require("pandas", "pandas")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            require("pyarrow", "parquet")
            frame = pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidArgument(f"{path.name}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    return frame_columns(frame)


def _from_result(result: Any, target: str, name: str) -> tuple[Columns, np.ndarray]:
    if isinstance(result, tuple) and len(result) == 2:
        cols, y = result
        cols = frame_columns(cols) if hasattr(cols, "columns") else dict(cols)
        return {k: np.asarray(v) for k, v in cols.items()}, np.asarray(y)
    if hasattr(result, "columns") and hasattr(result, "to_numpy"):
        result = frame_columns(result)
    if isinstance(result, Mapping):
        cols = {str(k): np.asarray(v) for k, v in result.items()}
        y = _target(cols, target, name)
        return {k: v for k, v in cols.items() if k != target}, y
    raise InvalidArgument(
        f"data callable {name!r} returned {type(result).__name__}; expected "
        f"(columns, target), a dict of arrays with {target!r}, or a DataFrame"
    )


def _import_callable(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr, None)
    except ImportError as exc:
        raise InvalidArgument(f"data {spec!r}: cannot import {module_name!r} ({exc})") from exc
    if not callable(fn):
        raise InvalidArgument(f"data {spec!r}: {module_name} has no callable {attr!r}")
    return cast(Callable[[], Any], fn)


def _load_callable(fn: Callable[[], Any], name: str, target: str) -> Dataset:
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - user code: one clear line
        raise InvalidArgument(f"data callable {name!r} failed: {exc.__class__.__name__}: {exc}") from exc
    cols, y = _from_result(result, target, name)
    sha = sha256_columns({**cols, "\x00target": y})
    return _finish(name, cols, y, sha, f"callable:{name}")


def _finish(name: str, cols: Columns, y: np.ndarray, sha: str, source: str) -> Dataset:
    if len(y) == 0:
        raise InvalidArgument(f"data set {name!r} has no rows")
    return Dataset(name=name, columns=cols, target=y, sha256=sha, source=source)


def load_dataset(source: DataSource, *, target: str = "target") -> Dataset:
    """Read a data set from a file or a callable; validation against a contract is ``inputs_for``."""
    if callable(source):
        name = getattr(source, "__qualname__", None) or repr(source)
        return _load_callable(source, f"{getattr(source, '__module__', '')}:{name}", target)
    text = str(source)
    path = Path(text)
    if not path.exists() and re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", text):
        return _load_callable(_import_callable(text), text, target)
    if not path.is_file():
        raise NotFound(f"data set {text!r} not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        cols = _read_npz(path)
    elif suffix in (".csv", ".parquet", ".pq"):
        cols = _read_table(path)
    else:
        raise InvalidArgument(
            f"data set {path.name!r}: unknown format {suffix or '(none)'}; use .npz, .csv, "
            ".parquet or a callable 'pkg.module:function'"
        )
    y = _target(cols, target, path.name)
    cols = {k: v for k, v in cols.items() if k != target}
    return _finish(path.name, cols, y, sha256_file(path), str(path))
