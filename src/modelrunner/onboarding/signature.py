"""MLflow signatures and input examples -> our contract fields and example columns.

An MLflow signature is JSON text in ``MLmodel``: either column-based (``[{"type": "double", "name": "age",
"required": false}, ...]``; one field per column, ``required: false`` -> optional) or tensor-based
(``[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]``; the first dimension is the
batch, the rest the per-row shape, ``-1`` -> ``?``). Column names are made into identifiers
(``"sepal length (cm)"`` -> ``sepal_length_cm``); the original name stays in the field's description.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelrunner.contract import DType, Field
from modelrunner.contract.derive import sanitize_name
from modelrunner.errors import ContractError

Columns = dict[str, np.ndarray]

# MLflow's column types (mlflow.types.DataType) -> ours.
COLUMN_TYPES = {
    "boolean": DType.BOOL, "integer": DType.INT32, "long": DType.INT64, "float": DType.FLOAT32,
    "double": DType.FLOAT64, "string": DType.STRING, "binary": DType.BYTES,
}  # fmt: skip


def parse_spec(text: Any, side: str) -> list[dict[str, Any]]:
    """The list of column/tensor specs of one side of a signature (MLmodel keeps them as JSON text)."""
    if text is None:
        return []
    try:
        specs = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise ContractError(f"the MLflow signature's {side} are not valid JSON: {exc.msg}") from exc
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ContractError(f"the MLflow signature's {side} must be a list of column or tensor specs")
    return specs


def fields_from_signature(specs: list[dict[str, Any]]) -> tuple[Field, ...]:
    """Contract input fields for the MLflow specs (see the module docstring)."""
    fields: list[Field] = []
    for i, spec in enumerate(specs):
        if spec.get("type") == "tensor":
            fields.append(_tensor_field(spec, i, len(specs)))
        else:
            fields.append(_column_field(spec, i))
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractError(f"MLflow columns become the same field name(s) {dupes}; rename the columns")
    return tuple(fields)


def _column_field(spec: dict[str, Any], index: int) -> Field:
    kind = str(spec.get("type"))
    original = spec.get("name")
    label = repr(original) if original is not None else f"#{index}"
    if kind not in COLUMN_TYPES:
        raise ContractError(
            f"MLflow column {label} has type {kind!r}, which has no contract type "
            f"(supported: {', '.join(COLUMN_TYPES)}, tensor)"
        )
    name = sanitize_name(original) if original is not None else f"input_{index}"
    note = f"MLflow column {original!r}" if original is not None and name != original else ""
    return Field(
        name=name, dtype=COLUMN_TYPES[kind], description=note, optional=spec.get("required", True) is False
    )


def _tensor_field(spec: dict[str, Any], index: int, count: int) -> Field:
    tensor = spec.get("tensor-spec") or {}
    original = spec.get("name")
    try:
        dtype = DType.from_numpy(str(tensor.get("dtype")))
    except (ContractError, TypeError) as exc:
        what = original or index
        raise ContractError(f"MLflow tensor {what!r}: unsupported dtype {tensor.get('dtype')!r}") from exc
    shape = [int(d) for d in tensor.get("shape") or [-1]]
    per_row = tuple(d if d > 0 else -1 for d in shape[1:])
    unnamed = "input" if count == 1 else f"input_{index}"
    name = sanitize_name(original) if original is not None else unnamed
    return Field(name=name, dtype=dtype, shape=per_row, optional=spec.get("required", True) is False)


def example_columns(data: Any, fields: tuple[Field, ...], originals: dict[str, str]) -> Columns:
    """Columns (keyed by field name, cast to the field's dtype) from an MLflow ``input_example.json``.

    Forms: pandas ``split`` (``{"columns": [...], "data": [[...]]}``), ``records`` (a list of dicts), a
    tensor (a nested list), ``{"inputs": ...}``, or a dict of named tensors/columns.
    """
    by_original = {originals.get(f.name, f.name): f for f in fields}
    if isinstance(data, dict) and "inputs" in data and len(data) == 1:
        data = data["inputs"]
    raw: dict[str, Any]
    if isinstance(data, dict) and "columns" in data and "data" in data:
        rows = data["data"]
        raw = {str(c): [row[i] for row in rows] for i, c in enumerate(data["columns"])}
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        raw = {str(k): [r.get(k) for r in data] for k in data[0]}
    elif isinstance(data, list):
        if len(fields) != 1:
            raise ContractError(f"the input example is one tensor but the signature has {len(fields)} inputs")
        raw = {originals.get(fields[0].name, fields[0].name): data}
    elif isinstance(data, dict):
        raw = {str(k): v for k, v in data.items()}
    else:
        raise ContractError(f"cannot read the MLflow input example (a {type(data).__name__})")
    out: Columns = {}
    for key, values in raw.items():
        f = by_original.get(key) or by_original.get(sanitize_name(key))
        if f is None:
            raise ContractError(f"the input example has column {key!r}, which the signature does not have")
        out[f.name] = np.asarray(values, dtype=f.dtype.numpy())
    return out


def guess_fields(columns: Columns) -> tuple[Field, ...]:
    """Fields for an example when the model has no signature (the example's own dtypes and shapes)."""
    from modelrunner.contract.derive import field_for

    return tuple(field_for(name, arr) for name, arr in columns.items())


def raw_example(data: Any) -> tuple[Columns, dict[str, str]]:
    """Columns straight from an example (no signature to cast to), and field name -> original name."""
    if isinstance(data, dict) and "inputs" in data and len(data) == 1:
        data = data["inputs"]
    if isinstance(data, list) and not (data and isinstance(data[0], dict)):
        return {"input": np.asarray(data)}, {}
    if isinstance(data, dict) and "columns" in data and "data" in data:
        names = [str(c) for c in data["columns"]]
        rows = data["data"]
        cols = {n: [row[i] for row in rows] for i, n in enumerate(names)}
    elif isinstance(data, list):
        cols = {str(k): [r.get(k) for r in data] for k in data[0]}
    elif isinstance(data, dict):
        cols = {str(k): v for k, v in data.items()}
    else:
        raise ContractError(f"cannot read the MLflow input example (a {type(data).__name__})")
    out: Columns = {}
    originals: dict[str, str] = {}
    for name, values in cols.items():
        field_name = sanitize_name(name)
        arr = np.asarray(values)
        out[field_name] = arr.astype(object) if arr.dtype.kind == "U" else arr
        originals[field_name] = name
    return out, originals
