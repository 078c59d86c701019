"""V2 gRPC messages <-> columns for every datatype (typed contents and raw), without a server."""

from __future__ import annotations

import numpy as np
import pytest

from modelrunner.contract import Contract, DType, Field
from modelrunner.contract.codecs import column_from_raw, column_to_raw
from modelrunner.errors import InvalidArgument, ValidationError
from modelrunner.runner.endpoint import Prediction
from modelrunner.server.grpc import codec as grpc_codec
from modelrunner.server.proto import grpc_predict_v2_pb2 as pb

CASES = [  # dtype, V2 datatype, contents field, two rows of values
    (DType.BOOL, "BOOL", "bool_contents", [True, False]),
    (DType.INT8, "INT8", "int_contents", [-3, 7]),
    (DType.INT32, "INT32", "int_contents", [-70000, 5]),
    (DType.INT64, "INT64", "int64_contents", [-(2**40), 3]),
    (DType.UINT8, "UINT8", "uint_contents", [0, 255]),
    (DType.UINT64, "UINT64", "uint64_contents", [2**63, 1]),
    (DType.FLOAT32, "FP32", "fp32_contents", [0.5, -2.25]),
    (DType.FLOAT64, "FP64", "fp64_contents", [0.1, 1e300]),
    (DType.STRING, "BYTES", "bytes_contents", ["héllo", "x"]),
    (DType.BYTES, "BYTES", "bytes_contents", [b"\x00\xff", b""]),
]


def _contract(dtype: DType) -> Contract:
    return Contract.build([Field(name="v", dtype=dtype)], [Field(name="v", dtype=dtype)])


def _wire(values: list) -> list:
    return [v.encode() if isinstance(v, str) else v for v in values]


@pytest.mark.parametrize(("dtype", "datatype", "field", "values"), CASES)
def test_typed_contents_both_ways(dtype: DType, datatype: str, field: str, values: list) -> None:
    msg = pb.ModelInferRequest(model_name="m")
    getattr(msg.inputs.add(name="v", datatype=datatype, shape=[2]).contents, field).extend(_wire(values))
    request = grpc_codec.infer_request(msg)
    column = request.decoder(_contract(dtype))["v"]
    assert column.tolist() == values
    response = grpc_codec.infer_response("m", request, Prediction({"v": column}, "m", 1, "m@1"))
    out = response.outputs[0]
    assert (out.datatype, list(out.shape)) == (datatype, [2]) and not response.raw_output_contents
    got = list(getattr(out.contents, field))
    assert got == (pytest.approx(values) if dtype.kind == "f" else _wire(values))


@pytest.mark.parametrize(("dtype", "datatype", "field", "values"), CASES)
def test_raw_contents_both_ways(dtype: DType, datatype: str, field: str, values: list) -> None:
    array = np.array(values, dtype=object if dtype.kind in "SB" else dtype.numpy())
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="v", datatype=datatype, shape=[2])
    msg.raw_input_contents.append(column_to_raw(array))
    request = grpc_codec.infer_request(msg)
    column = request.decoder(_contract(dtype))["v"]
    response = grpc_codec.infer_response("m", request, Prediction({"v": column}, "m", 1, "m@1"))
    raw = column_from_raw(response.raw_output_contents[0], [2], response.outputs[0].datatype)
    got = [v.decode() if dtype is DType.STRING else v for v in raw.tolist()]
    assert got == (pytest.approx(values) if dtype.kind == "f" else values)


def test_fp16_is_raw_only() -> None:
    half = np.array([0.5, 1.5], dtype=np.float16)
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="v", datatype="FP16", shape=[2])
    msg.raw_input_contents.append(half.tobytes())
    request = grpc_codec.infer_request(msg)
    request.binary_outputs = False  # even when typed outputs are asked for, FP16 has no typed field
    response = grpc_codec.infer_response("m", request, Prediction({"v": half}, "m", 1, "m@1"))
    assert response.raw_output_contents[0] == half.tobytes()


def test_parameters_and_requested_outputs() -> None:
    msg = pb.ModelInferRequest(model_name="m", id="7")
    msg.parameters["flag"].bool_param = True
    msg.parameters["n"].int64_param = 3
    msg.inputs.add(name="v", datatype="FP64", shape=[1]).contents.fp64_contents.append(1.0)
    msg.outputs.add(name="b")
    request = grpc_codec.infer_request(msg)
    assert request.parameters == {"flag": True, "n": 3} and request.id == "7"
    pred = Prediction({"a": np.array([1.0]), "b": np.array([2.0])}, "m", 4, "m@4")
    response = grpc_codec.infer_response("m", request, pred)
    assert [o.name for o in response.outputs] == ["b"] and response.model_version == "4"
    assert response.parameters["ref"].string_param == "m@4"
    msg.outputs.add(name="zzz")
    with pytest.raises(InvalidArgument, match="zzz"):
        grpc_codec.infer_response("m", grpc_codec.infer_request(msg), pred)


def test_bad_envelopes() -> None:
    with pytest.raises(InvalidArgument, match="inputs"):
        grpc_codec.infer_request(pb.ModelInferRequest(model_name="m"))
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="v", datatype="FP64", shape=[1]).contents.fp64_contents.append(1.0)
    msg.raw_input_contents.append(b"\0" * 8)
    with pytest.raises(InvalidArgument, match="sets contents"):
        grpc_codec.infer_request(msg)
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="v", datatype="FP64", shape=[-1])
    with pytest.raises(ValidationError, match="negative"):
        grpc_codec.infer_request(msg)
