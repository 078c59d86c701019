"""V2 inference request/response JSON <-> columns, with the binary tensor data extension.

Tensor values go through ``contract.codecs`` (``tensor_to_column``, ``column_to_tensor``, ``column_from_raw``,
``column_to_raw``); this module only reads the envelope and the binary framing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelrunner.contract import Contract, Field
from modelrunner.contract.codecs import (
    column_from_raw,
    column_to_raw,
    column_to_tensor,
    tensor_shape,
    tensor_to_column,
    v2_datatype,
    v2_fits,
)
from modelrunner.errors import InvalidArgument, ValidationError
from modelrunner.server.v2.binary import binary_size

MAX_TENSORS = 1024
"""Most input tensors one inference request may name."""


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: Any = None
    raw: bytes | None = None

    def column(self, f: Field) -> Any:
        shape = self.shape
        if not f.shape and len(shape) == 2 and shape[1] == 1:
            shape = [shape[0]]  # a per-row scalar sent as [n, 1], as Triton clients do
        if self.raw is not None:
            if not v2_fits(self.datatype, f):  # as tensor_to_column checks
                raise ValidationError(
                    f"tensor {self.name!r}: datatype {self.datatype} does not fit input "
                    f"{f.name!r} ({f.dtype.value}, V2 {v2_datatype(f.dtype)})",
                    field=f.name,
                )
            return column_from_raw(self.raw, shape, self.datatype, self.name)
        if self.data is None:
            raise ValidationError(f"input {self.name!r} has neither 'data' nor binary data", field=self.name)
        return tensor_to_column(self.name, shape, self.datatype, self.data, f)


@dataclass
class InferRequest:
    """A parsed V2 inference request."""

    inputs: list[Tensor]
    id: str | None = None
    outputs: dict[str, bool] | None = None  # requested output -> binary?
    binary_outputs: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)

    def decoder(self, contract: Contract) -> dict[str, Any]:
        """The request as columns of ``contract``'s inputs (unknown names are refused, naming them)."""
        self._check_outputs(contract)
        fields = {f.name: f for f in contract.inputs}
        columns = {}
        for t in self.inputs:
            f = fields.get(t.name)
            if f is None:
                known = ", ".join(fields)
                raise ValidationError(f"unknown input {t.name!r} (expected: {known})", field=t.name)
            columns[t.name] = t.column(f)
        return columns

    def _check_outputs(self, contract: Contract) -> None:
        if not self.outputs or not contract.outputs:
            return
        known = [f.name for f in contract.outputs]
        unknown = [n for n in self.outputs if n not in known]
        if unknown:
            raise InvalidArgument(
                f"unknown output(s) {', '.join(map(repr, unknown))} (outputs: {', '.join(known)})"
            )


def _params(obj: dict[str, Any]) -> dict[str, Any]:
    params = obj.get("parameters")
    return params if isinstance(params, dict) else {}


def check_tensor_count(count: int) -> None:
    """At most :data:`MAX_TENSORS` input tensors (a contract has a few inputs; millions of empty tensors are
    an attack on the decoder, not a request)."""
    if not count:
        raise InvalidArgument("an inference request needs 'inputs': a non-empty list of tensors")
    if count > MAX_TENSORS:
        raise InvalidArgument(
            f"an inference request has {count} input tensors; at most {MAX_TENSORS} are accepted"
        )


def parse_request(body: Any, tail: bytes = b"", max_rows: int | None = None) -> InferRequest:
    """Check the envelope of an inference request and slice binary inputs out of ``tail``; a tensor whose
    first dimension is over ``max_rows`` is refused (413) before its data is read."""
    if not isinstance(body, dict):
        raise InvalidArgument("an inference request must be a JSON object with 'inputs'")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list):
        raise InvalidArgument("an inference request needs 'inputs': a non-empty list of tensors")
    check_tensor_count(len(raw_inputs))
    offset = 0
    inputs = []
    for item in raw_inputs:
        tensor, offset = _input(item, tail, offset, max_rows)
        inputs.append(tensor)
    if offset != len(tail):
        raise InvalidArgument(f"{len(tail) - offset} bytes of binary data are not claimed by any input")
    params = _params(body)
    req_id = body.get("id")
    return InferRequest(
        inputs=inputs,
        id=None if req_id is None else str(req_id),
        outputs=_requested(body.get("outputs")),
        binary_outputs=bool(params.get("binary_data_output", False)),
        parameters=params,
    )


def _input(item: Any, tail: bytes, offset: int, max_rows: int | None) -> tuple[Tensor, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InvalidArgument("every input needs a 'name'")
    name = item["name"]
    shape = list(tensor_shape(name, item.get("shape"), max_rows))
    datatype = item.get("datatype")
    if not isinstance(datatype, str):
        raise ValidationError(f"input {name!r}: 'datatype' must be a V2 datatype such as FP32", field=name)
    size = binary_size(item)
    if size is None:
        return Tensor(name, datatype, shape, data=item.get("data")), offset
    if offset + size > len(tail):
        raise InvalidArgument(f"input {name!r}: binary_data_size {size} runs past the end of the body")
    return Tensor(name, datatype, shape, raw=tail[offset : offset + size]), offset + size


def _requested(outputs: Any) -> dict[str, bool] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise InvalidArgument("'outputs' must be a list of {name, parameters}")
    wanted: dict[str, bool] = {}
    for o in outputs:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidArgument("every requested output needs a 'name'")
        wanted[o["name"]] = bool(_params(o).get("binary_data", False))
    return wanted


def _json_tensor(name: str, column: np.ndarray) -> dict[str, Any]:
    """:func:`column_to_tensor`, with ``data`` left a flat array when orjson writes it (``wire.dumps``:
    OPT_SERIALIZE_NUMPY) as the same bytes as its ``tolist()``: float64, ints, bools (about 40% less time
    than building the Python list for 100x10 floats). Other dtypes (float32 is written shorter) as lists."""
    arr = np.asarray(column)
    if arr.dtype.kind in "biu" or arr.dtype == np.float64:
        return {
            "name": name,
            "shape": list(arr.shape),
            "datatype": v2_datatype(arr.dtype),
            "data": np.ascontiguousarray(arr).reshape(-1),
        }
    return column_to_tensor(name, arr)


def encode_outputs(
    columns: dict[str, np.ndarray], req: InferRequest
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """V2 output tensors (JSON data or binary blobs, as requested) for a prediction."""
    if req.outputs is None:
        names = {n: req.binary_outputs for n in columns}
    else:
        unknown = [n for n in req.outputs if n not in columns]
        if unknown:
            known = ", ".join(columns)
            raise InvalidArgument(f"unknown output(s) {', '.join(map(repr, unknown))} (outputs: {known})")
        names = req.outputs
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in names.items():
        if not binary:
            tensors.append(_json_tensor(name, columns[name]))
            continue
        arr = np.asarray(columns[name])
        blob = column_to_raw(arr)
        tensors.append(
            {
                "name": name,
                "datatype": v2_datatype(arr.dtype),
                "shape": list(arr.shape),
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    return tensors, blobs
