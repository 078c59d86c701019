"""V2 gRPC (inference.GRPCInferenceService) over a real gRPC port, called with tritonclient's stubs.

tritonclient.grpc sends raw_input_contents; typed ``contents`` requests are built with tritonclient's own
generated messages (service_pb2), so every message here comes from code we did not write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2 as tpb
from tritonclient.grpc import service_pb2_grpc as tpb_grpc

from modelrunner.runner.endpoint import Endpoint
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, StaticRuntime, SumPredictor, toy_deployment

X = np.array([[1, 2, 3, 4], [-1, -1, -1, -2]], dtype=np.float64)


@pytest.fixture(scope="module")
def grpc_target(toy_runtime: StaticRuntime, settings: Settings) -> Iterator[str]:
    from modelrunner.server.app import create_app
    from modelrunner.server.grpc.server import attach

    app = create_app(toy_runtime, settings)
    server = attach(app)
    with ServerThread(app):
        yield f"127.0.0.1:{server.port}"


@pytest.fixture
def client(grpc_target: str) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(grpc_target)
    yield c
    c.close()


@pytest.fixture
def stub(grpc_target: str) -> Iterator[Any]:
    with grpc.insecure_channel(grpc_target) as channel:
        yield tpb_grpc.GRPCInferenceServiceStub(channel)


def _x(array: np.ndarray = X, datatype: str = "FP64", name: str = "x") -> triton.InferInput:
    inp = triton.InferInput(name, list(array.shape), datatype)
    inp.set_data_from_numpy(array)
    return inp


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert not client.is_server_ready()  # the toy runtime has an endpoint with nothing loaded
    meta = client.get_server_metadata()
    assert meta.name == "modelrunner" and meta.version
    assert client.is_model_ready("toy") and client.is_model_ready("toy", "3")
    assert not client.is_model_ready("toy", "2") and not client.is_model_ready("empty")


def test_model_metadata(client: triton.InferenceServerClient) -> None:
    meta = client.get_model_metadata("toy")
    assert meta.name == "toy" and list(meta.versions) == ["3"] and meta.platform == "modelrunner"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("x", "FP64", [-1, 4]),
        ("scale", "FP32", [-1]),
    ]
    assert [t.name for t in meta.outputs] == ["label", "total", "proba"]
    as_json = client.get_model_metadata("toy", "3", as_json=True)
    assert as_json["inputs"][0]["shape"] == ["-1", "4"]  # int64 in proto3 JSON


def test_infer_raw_like_triton(client: triton.InferenceServerClient) -> None:
    result = client.infer("toy", [_x()], request_id="r1")
    assert result.as_numpy("label").tolist() == [1, 0]
    assert result.as_numpy("total").tolist() == [10.0, -5.0]
    assert result.as_numpy("proba").tolist() == [[0.0, 1.0], [1.0, 0.0]]
    response = result.get_response()
    assert response.model_name == "toy" and response.model_version == "3" and response.id == "r1"
    assert response.parameters["ref"].string_param == "toy@3"


def test_infer_requested_outputs_and_scalar_as_n_by_1(client: triton.InferenceServerClient) -> None:
    scale = _x(np.array([[2.0], [0.5]], dtype=np.float32), "FP32", "scale")
    result = client.infer(
        "toy", [_x(), scale], outputs=[triton.InferRequestedOutput("total")], model_version="3"
    )
    assert result.as_numpy("total").tolist() == [20.0, -2.5]
    assert result.as_numpy("label") is None


def test_infer_bytes_raw(client: triton.InferenceServerClient) -> None:
    text = triton.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"abc", "héllo".encode()], dtype=object))
    assert client.infer("text", [text]).as_numpy("length").tolist() == [3, 5]  # a string input: UTF-8


def test_infer_typed_contents(stub: Any) -> None:
    request = tpb.ModelInferRequest(model_name="toy", id="typed")
    x = request.inputs.add(name="x", datatype="FP64", shape=[2, 4])
    x.contents.fp64_contents.extend(X.reshape(-1).tolist())
    response = stub.ModelInfer(request)
    assert not response.raw_output_contents  # typed in, typed out
    outputs = {o.name: o for o in response.outputs}
    assert list(outputs["label"].contents.int64_contents) == [1, 0]
    assert list(outputs["proba"].shape) == [2, 2]
    assert list(outputs["proba"].contents.fp64_contents) == [0.0, 1.0, 1.0, 0.0]
    assert response.id == "typed" and response.model_version == "3"


def test_infer_typed_bytes(stub: Any) -> None:
    request = tpb.ModelInferRequest(model_name="text")
    request.inputs.add(name="text", datatype="BYTES", shape=[2]).contents.bytes_contents.extend([b"a", b"bc"])
    response = stub.ModelInfer(request)
    assert list(response.outputs[0].contents.int64_contents) == [1, 2]


def _code_and_details(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def _typed(
    datatype: str = "FP64",
    shape: tuple[int, ...] = (2, 4),
    field: str = "fp64_contents",
    values: Any = None,
    name: str = "x",
    model: str = "toy",
) -> Any:
    request = tpb.ModelInferRequest(model_name=model)
    t = request.inputs.add(name=name, datatype=datatype, shape=list(shape))
    getattr(t.contents, field).extend(X.reshape(-1).tolist() if values is None else values)
    return request


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (_typed(name="y"), grpc.StatusCode.INVALID_ARGUMENT, "unknown input 'y'"),
        (_typed(shape=(3, 4)), grpc.StatusCode.INVALID_ARGUMENT, "'x'"),
        (_typed(shape=(8, 1)), grpc.StatusCode.INVALID_ARGUMENT, "'x'"),
        (_typed("BYTES", field="bytes_contents", values=[b"a"] * 8), grpc.StatusCode.INVALID_ARGUMENT, "'x'"),
        (_typed("FP64", field="fp32_contents"), grpc.StatusCode.INVALID_ARGUMENT, "contents.fp64_contents"),
        (_typed("FP16", field="fp32_contents"), grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents"),
        (_typed("FP99"), grpc.StatusCode.INVALID_ARGUMENT, "FP99"),
        (_typed(model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (_typed(model="empty"), grpc.StatusCode.UNAVAILABLE, "no model loaded"),
        (tpb.ModelInferRequest(model_name="toy"), grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
    ],
)
def test_infer_errors_map_to_status_codes(
    stub: Any, request_: Any, code: grpc.StatusCode, words: str
) -> None:
    got, details = _code_and_details(lambda: stub.ModelInfer(request_))
    assert got == code, details
    assert words in details
    assert stub.ModelInfer(_typed()).outputs  # still serving


def test_errors_name_the_field_in_trailing_metadata(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(_typed(shape=(3, 4)))
    trailing = dict(info.value.trailing_metadata())
    assert trailing["modelrunner-code"] == "invalid_argument" and trailing["modelrunner-field"] == "x"


def test_raw_contents_errors(stub: Any) -> None:
    request = tpb.ModelInferRequest(model_name="toy")
    request.inputs.add(name="x", datatype="FP64", shape=[2, 4])
    request.raw_input_contents.extend([X.tobytes(), b"extra"])
    code, details = _code_and_details(lambda: stub.ModelInfer(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "2 entries for 1 inputs" in details
    del request.raw_input_contents[:]
    request.raw_input_contents.append(X.tobytes()[:-3])
    code, details = _code_and_details(lambda: stub.ModelInfer(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'x'" in details


def test_version_pinning_and_unknown_output(client: triton.InferenceServerClient, stub: Any) -> None:
    with pytest.raises(triton.InferenceServerException) as info:
        client.infer("toy", [_x()], model_version="2")
    assert "StatusCode.NOT_FOUND" in str(info.value.status()) and "serves version 3" in info.value.message()
    with pytest.raises(triton.InferenceServerException) as info:
        client.infer("toy", [_x()], outputs=[triton.InferRequestedOutput("nope")])
    assert "nope" in info.value.message()
    code, _ = _code_and_details(lambda: stub.ModelMetadata(tpb.ModelMetadataRequest(name="empty")))
    assert code == grpc.StatusCode.UNAVAILABLE
    code, _ = _code_and_details(lambda: stub.ModelReady(tpb.ModelReadyRequest(name="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


class _SleepingSum(SumPredictor):
    """The toy model, one second late."""

    def predict(self, columns: Any) -> Any:
        time.sleep(1.0)
        return super().predict(columns)


def test_an_endpoint_past_its_timeout_is_deadline_exceeded(settings: Settings) -> None:
    from modelrunner.server.app import create_app
    from modelrunner.server.grpc.server import attach

    slow = Endpoint("slow")
    slow.swap(toy_deployment("slow", _SleepingSum()))
    slow.configure({"timeout_s": 0.2})
    app = create_app(StaticRuntime({"slow": slow}), settings)
    server = attach(app)
    with ServerThread(app), grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        request = tpb.ModelInferRequest(model_name="slow")
        x = request.inputs.add(name="x", datatype="FP64", shape=[2, 4])
        x.contents.fp64_contents.extend(X.reshape(-1).tolist())
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            tpb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert info.value.details() == "endpoint 'slow' did not answer within 0.2s (its timeout_s)"
        assert time.monotonic() - t0 < 1.0
