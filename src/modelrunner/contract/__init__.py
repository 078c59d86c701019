"""Typed contracts: fields, derivation, rendering (.proto, JSON Schema, V2), compatibility, validation.

See docs/contracts.md for dtypes, shapes, field numbering, the compatibility rules and the wire formats.
The protobuf names (``contract.proto``) are imported on first use: protobuf costs every process that
imports a contract ~40 ms and most never use it (a worker serving JSON, the CLI).
"""

from typing import TYPE_CHECKING, Any

from modelrunner.contract.codecs import (
    column_from_raw,
    column_to_raw,
    column_to_tensor,
    columns_from_json,
    columns_to_rows,
    decode_json_request,
    dtype_from_v2,
    encode_json_response,
    rows_to_columns,
    tensor_to_column,
    to_jsonable,
    v2_datatype,
)
from modelrunner.contract.compat import bump_version, check_compatible, renumber
from modelrunner.contract.schema import json_schema, request_schema, response_schema, v2_metadata
from modelrunner.contract.types import Contract, DType, Field, format_shape
from modelrunner.contract.validate import Validator, batch_size, coerce_column, validate_batch, validator

if TYPE_CHECKING:
    from modelrunner.contract.proto import (
        columns_to_request_bytes,
        columns_to_response_bytes,
        message_classes,
        proto_package,
        render_proto,
        request_to_columns,
        response_bytes_to_columns,
    )

_PROTO = {
    "columns_to_request_bytes",
    "columns_to_response_bytes",
    "message_classes",
    "proto_package",
    "render_proto",
    "request_to_columns",
    "response_bytes_to_columns",
}

__all__ = [
    "Contract",
    "DType",
    "Field",
    "Validator",
    "batch_size",
    "bump_version",
    "check_compatible",
    "coerce_column",
    "column_from_raw",
    "column_to_raw",
    "column_to_tensor",
    "columns_from_json",
    "columns_to_request_bytes",
    "columns_to_response_bytes",
    "columns_to_rows",
    "decode_json_request",
    "dtype_from_v2",
    "encode_json_response",
    "format_shape",
    "json_schema",
    "message_classes",
    "proto_package",
    "render_proto",
    "renumber",
    "request_schema",
    "request_to_columns",
    "response_bytes_to_columns",
    "response_schema",
    "rows_to_columns",
    "tensor_to_column",
    "to_jsonable",
    "v2_datatype",
    "v2_metadata",
    "validate_batch",
    "validator",
]


def __getattr__(name: str) -> Any:
    """The protobuf names, imported from ``contract.proto`` on first access."""
    if name in _PROTO:
        from modelrunner.contract import proto

        value = getattr(proto, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modelrunner.contract' has no attribute {name!r}")
