"""JSON Schema (draft 2020-12) of a contract's native JSON bodies, and Open Inference Protocol metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelrunner.contract.codecs import v2_datatype
from modelrunner.contract.types import Contract, DType, Field

__all__ = ["DRAFT", "json_schema", "request_schema", "response_schema", "v2_metadata", "value_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _scalar_schema(dtype: DType) -> dict[str, Any]:
    if dtype is DType.BOOL:
        return {"type": "boolean"}
    if dtype in (DType.STRING, DType.CATEGORY):
        return {"type": "string"}
    if dtype is DType.TIMESTAMP:
        return {"type": ["string", "integer"], "format": "date-time"}
    if dtype is DType.BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if dtype.kind == "f":
        return {"type": "number"}
    info = np.iinfo(dtype.numpy())
    return {"type": "integer", "minimum": int(info.min), "maximum": int(info.max)}


def value_schema(field: Field) -> dict[str, Any]:
    """The schema of one row's value of ``field``: a scalar, or nested arrays of the per-row shape."""
    schema = _scalar_schema(field.dtype)
    if field.categories:
        schema = {**schema, "enum": list(field.categories)}
    for d in reversed(field.shape):
        schema = {"type": "array", "items": schema}
        if d != -1:
            schema.update(minItems=d, maxItems=d)
    if field.description:
        schema = {**schema, "description": field.description}
    return schema


def _required(fields: Sequence[Field], request: bool) -> list[str]:
    """Request bodies may leave optional inputs out; responses always carry every output."""
    return [f.name for f in fields if not (request and f.optional)]


def _row_schema(fields: Sequence[Field], request: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: value_schema(f) for f in fields},
        "required": _required(fields, request),
        "additionalProperties": False,
    }


def _columns_schema(fields: Sequence[Field], request: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: {"type": "array", "items": value_schema(f)} for f in fields},
        "required": _required(fields, request),
        "additionalProperties": False,
    }


def request_schema(contract: Contract) -> dict[str, Any]:
    """Schema of ``{"instances": [row, ...]}`` or ``{"inputs": {name: [value per row]}}``."""
    row: dict[str, Any] = _row_schema(contract.inputs, True)
    if len(contract.inputs) == 1:
        row = {"anyOf": [row, value_schema(contract.inputs[0])]}
    outputs = {
        "type": "array",
        "items": {"enum": [f.name for f in contract.outputs]},
        "minItems": 1,
        "description": "answer only these outputs (default: every output)",
    }
    return {
        "$schema": DRAFT,
        "title": "Request",
        "oneOf": [
            {
                "type": "object",
                "properties": {"instances": {"type": "array", "items": row}, "outputs": outputs},
                "required": ["instances"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"inputs": _columns_schema(contract.inputs, True), "outputs": outputs},
                "required": ["inputs"],
                "additionalProperties": False,
            },
        ],
    }


def response_schema(contract: Contract) -> dict[str, Any]:
    """Schema of ``{"predictions": [row, ...]}`` or ``{"outputs": {name: [value per row]}}`` (every output:
    a request naming ``outputs`` is answered with those only)."""
    return {
        "$schema": DRAFT,
        "title": "Response",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "predictions": {"type": "array", "items": _row_schema(contract.outputs, False)}
                },
                "required": ["predictions"],
            },
            {
                "type": "object",
                "properties": {"outputs": _columns_schema(contract.outputs, False)},
                "required": ["outputs"],
            },
        ],
    }


def json_schema(contract: Contract) -> dict[str, Any]:
    """``{"request": <schema>, "response": <schema>}`` for the native JSON protocol."""
    return {"request": request_schema(contract), "response": response_schema(contract)}


def _tensor(field: Field) -> dict[str, Any]:
    return {"name": field.name, "datatype": v2_datatype(field.dtype), "shape": [-1, *field.shape]}


def v2_metadata(
    contract: Contract, name: str, versions: Sequence[str] = (), platform: str = "modelrunner"
) -> dict[str, Any]:
    """Open Inference Protocol model metadata; shapes lead with -1, the batch dimension."""
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": [_tensor(f) for f in contract.inputs],
        "outputs": [_tensor(f) for f in contract.outputs],
    }
