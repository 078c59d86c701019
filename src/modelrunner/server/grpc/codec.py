"""V2 gRPC messages <-> the protocol-neutral request/response shapes; the only module that knows them.

A ``ModelInferRequest`` becomes the same :class:`v2_codec.InferRequest` the V2 REST adapter builds (typed
``contents`` become tensor data, ``raw_input_contents`` become raw tensors), so both protocols decode and
validate tensors with one code path (``contract.codecs``). Outputs mirror the request: raw
``raw_output_contents`` when the inputs came raw (what tritonclient sends and expects), typed ``contents``
otherwise (FP16 outputs, which have no typed field, force raw).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrunner.contract.codecs import column_to_raw, tensor_shape, v2_datatype
from modelrunner.contract.validate import iso_strings
from modelrunner.errors import InvalidArgument, ValidationError
from modelrunner.runner.endpoint import Prediction
from modelrunner.server.proto import grpc_predict_v2_pb2 as pb
from modelrunner.server.v2 import codec as v2_codec

CONTENTS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""V2 datatype -> the ``InferTensorContents`` field holding its typed values."""


def parameters(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """A ``map<string, InferParameter>`` as plain values."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        which = param.WhichOneof("parameter_choice")
        out[key] = getattr(param, which) if which else None
    return out


def _set_parameters(target: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        param = target[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int):
            param.int64_param = value
        elif isinstance(value, float):
            param.double_param = value
        else:
            param.string_param = str(value)


def _typed_data(tensor: pb.ModelInferRequest.InferInputTensor) -> Any:
    """The values of one typed input tensor (checked against its datatype)."""
    datatype = tensor.datatype.upper()
    field = CONTENTS.get(datatype)
    if field is None:
        if datatype in ("FP16", "BF16"):
            raise ValidationError(
                f"input {tensor.name!r}: {datatype} tensors must be sent in "
                "raw_input_contents (there is no typed field for them)",
                field=tensor.name,
            )
        raise ValidationError(
            f"input {tensor.name!r}: unknown V2 datatype {tensor.datatype!r}", field=tensor.name
        )
    contents = tensor.contents
    others = [f.name for f, _ in contents.ListFields() if f.name != field]
    if others:
        raise ValidationError(
            f"input {tensor.name!r}: datatype {datatype} holds its values in "
            f"contents.{field}, not contents.{others[0]}",
            field=tensor.name,
        )
    values = getattr(contents, field)
    return list(values) if datatype == "BYTES" else np.asarray(values)


def _raw_inputs(msg: pb.ModelInferRequest) -> list[bytes] | None:
    raw = list(msg.raw_input_contents)
    if not raw:
        return None
    if len(raw) != len(msg.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(raw)} entries for {len(msg.inputs)} inputs; "
            "send one entry per input, in the order of 'inputs'"
        )
    with_contents = [t.name for t in msg.inputs if t.HasField("contents")]
    if with_contents:
        raise InvalidArgument(f"input {with_contents[0]!r} sets contents while raw_input_contents is used")
    return raw


def infer_request(msg: pb.ModelInferRequest, max_rows: int | None = None) -> v2_codec.InferRequest:
    """A ``ModelInferRequest`` as a V2 request (tensors decoded later, against the serving contract); a
    tensor whose first dimension is over ``max_rows`` is refused (RESOURCE_EXHAUSTED) before its data."""
    v2_codec.check_tensor_count(len(msg.inputs))
    raw = _raw_inputs(msg)
    inputs = []
    for i, t in enumerate(msg.inputs):
        shape = list(tensor_shape(t.name, list(t.shape), max_rows))
        if raw is not None:
            inputs.append(v2_codec.Tensor(t.name, t.datatype, shape, raw=raw[i]))
        else:
            inputs.append(v2_codec.Tensor(t.name, t.datatype, shape, data=_typed_data(t)))
    params = parameters(msg.parameters)
    outputs = {o.name: True for o in msg.outputs} or None
    return v2_codec.InferRequest(
        inputs=inputs, id=msg.id or None, outputs=outputs, binary_outputs=raw is not None, parameters=params
    )


def _output_names(columns: Mapping[str, Any], req: v2_codec.InferRequest) -> list[str]:
    if req.outputs is None:
        return list(columns)
    unknown = [n for n in req.outputs if n not in columns]
    if unknown:
        raise InvalidArgument(
            f"unknown output(s) {', '.join(map(repr, unknown))} (outputs: {', '.join(columns)})"
        )
    return list(req.outputs)


def _wire(arr: np.ndarray) -> np.ndarray:
    """Timestamps travel as BYTES of ISO-8601 UTC strings (as the REST V2 route sends them)."""
    return iso_strings(arr) if arr.dtype.kind == "M" else arr


def _typed_values(datatype: str, arr: np.ndarray) -> list[Any]:
    flat = arr.reshape(-1).tolist()
    if datatype == "BYTES":
        return [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in flat]
    return flat


def infer_response(name: str, req: v2_codec.InferRequest, pred: Prediction) -> pb.ModelInferResponse:
    """A ``ModelInferResponse`` for a prediction, raw when the request was raw (or an output needs it)."""
    names = _output_names(pred.columns, req)
    arrays = [_wire(np.asarray(pred.columns[n])) for n in names]
    types = [v2_datatype(a.dtype) for a in arrays]
    raw = req.binary_outputs or any(t not in CONTENTS for t in types)
    resp = pb.ModelInferResponse(
        model_name=name, model_version=str(pred.version), id=req.id or pred.request_id
    )
    _set_parameters(
        resp.parameters,
        {"model": pred.model, "ref": pred.ref, "variant": pred.variant, "request_id": pred.request_id},
    )
    for n, arr, datatype in zip(names, arrays, types, strict=True):
        out = resp.outputs.add(name=n, datatype=datatype, shape=list(arr.shape))
        if raw:
            resp.raw_output_contents.append(column_to_raw(arr))
        else:
            getattr(out.contents, CONTENTS[datatype]).extend(_typed_values(datatype, arr))
    return resp


def model_metadata(meta: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    """``contract.schema.v2_metadata``'s dict as a ``ModelMetadataResponse``."""
    resp = pb.ModelMetadataResponse(
        name=meta["name"], versions=list(meta["versions"]), platform=meta["platform"]
    )
    for side in ("inputs", "outputs"):
        for t in meta[side]:
            getattr(resp, side).add(name=t["name"], datatype=t["datatype"], shape=list(t["shape"]))
    return resp
