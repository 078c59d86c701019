"""What a flavor is, and helpers shared by flavors (columns -> model input)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.contract import DType, Field

if TYPE_CHECKING:
    from modelrunner.bundle.manifest import Manifest

Columns = dict[str, np.ndarray]
PredictFn = Callable[[Columns], Mapping[str, Any]]


@dataclass(frozen=True)
class Flavor:
    """Saves and loads one kind of model.

    ``matches(obj)`` must not import the flavor's library (it checks the object's type module).
    ``save(obj, dir)`` writes the flavor's files and returns options kept in the manifest.
    ``load(dir, manifest)`` returns a thread-safe ``predict(columns) -> columns`` function.
    ``infer_inputs(obj)`` (optional) gives input fields from the model itself (e.g. an ONNX graph).
    """

    name: str
    extra: str | None
    packages: tuple[str, ...]
    matches: Callable[[Any], bool]
    save: Callable[[Any, Path], dict[str, Any]]
    load: Callable[[Path, Manifest], PredictFn]
    infer_inputs: Callable[[Any], tuple[Field, ...]] | None = field(default=None)
    pickle: bool = False
    """Loading unpickles (runs code): the runner asks the trust policy first (bundle/trust.py)."""
    batch_safe: bool = False
    """Rows are predicted independently: the runner merges concurrent requests by default. A loaded
    predict function's own ``batch_safe`` attribute, when set, wins (a python model's declaration, an ONNX
    graph with a fixed batch size)."""


def type_module(obj: Any) -> str:
    """The top-level package that defines ``obj``'s class (``"sklearn"``, ``"xgboost"``, ...)."""
    return type(obj).__module__.split(".")[0]


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def to_matrix(columns: Columns, fields: Sequence[Field], feature_names: Sequence[str] | None = None) -> Any:
    """The 2-D model input for a batch.

    One tensor field -> that array. Several columns -> stacked side by side in contract order. When the
    model was fitted on a DataFrame (``feature_names`` given, and the number of columns matches) a pandas
    DataFrame with those column names is built instead, so column-named pipelines work. A single string
    column stays 1-D (text pipelines take a list of documents).
    """
    arrays = [columns[f.name] for f in fields if f.name in columns]
    width = sum(int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays)
    if feature_names is not None and len(feature_names) == width and has_module("pandas"):
        import pandas as pd

        if all(a.ndim == 1 for a in arrays):
            named = [f for f in fields if f.name in columns]
            arrays = [
                pd.Categorical(a, categories=f.categories) if f.categories else a  # as fitted
                for f, a in zip(named, arrays, strict=True)
            ]
            return pd.DataFrame(dict(zip(feature_names, arrays, strict=True)))
        return pd.DataFrame(_stack(arrays), columns=list(feature_names))
    if len(arrays) == 1:
        arr = arrays[0]
        if arr.ndim == 1 and fields[0].dtype not in (DType.STRING, DType.BYTES):
            return arr.reshape(-1, 1)
        return arr
    return _stack(arrays)


def matrix_fn(
    fields: Sequence[Field], feature_names: Sequence[str] | None = None
) -> Callable[[Columns], Any]:
    """:func:`to_matrix` for these ``fields``, with what depends on them only worked out once (per loaded
    version): one numeric tensor field without feature names (the common case) is that column itself,
    without looking at the others or at pandas."""
    if len(fields) != 1 or feature_names is not None or fields[0].dtype in (DType.STRING, DType.BYTES):
        return lambda columns: to_matrix(columns, fields, feature_names)
    name = fields[0].name

    def one(columns: Columns) -> Any:
        arr = columns.get(name)
        if arr is None or type(arr) is not np.ndarray:
            return to_matrix(columns, fields, feature_names)
        return arr.reshape(-1, 1) if arr.ndim == 1 else arr

    return one


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    flat = [a.reshape(len(a), -1) for a in arrays]
    return flat[0] if len(flat) == 1 else np.hstack(flat)


def label_outputs(labels: Any, proba: Any | None) -> Columns:
    """Classifier outputs: ``label`` and, when available, ``proba`` (n, classes)."""
    out: Columns = {"label": np.asarray(labels)}
    if proba is not None and not isinstance(proba, list):
        out["proba"] = np.asarray(proba)
    return out
