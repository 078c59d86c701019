"""tritonclient (http and grpc), unchanged, against a running server on real sklearn digits models: metadata,
readiness, infer (typed/raw contents, binary REST extension), errors, and the model repository extension."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from sklearn.datasets import load_digits

from support.grpc_helpers import GrpcStack, grpc_stack
from support.server_helpers import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
X = load_digits().data[:5]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcStack]:
    with grpc_stack(tmp_path_factory.mktemp("triton")) as s:
        yield s


@pytest.fixture
def http(stack: GrpcStack) -> Iterator[thttp.InferenceServerClient]:
    c = thttp.InferenceServerClient(stack.url.removeprefix("http://"))
    yield c
    c.close()


@pytest.fixture
def grpc_client(stack: GrpcStack) -> Iterator[tgrpc.InferenceServerClient]:
    c = tgrpc.InferenceServerClient(stack.grpc)
    yield c
    c.close()


def _json_columns(stack: GrpcStack, x: np.ndarray) -> dict[str, Any]:
    r = stack.http.post("/v1/endpoints/digits/predict", json={"inputs": {"input": x.tolist()}})
    assert r.status_code == 200, r.text
    return r.json()["outputs"]  # type: ignore[no-any-return]


def _same(result: Any, want: dict[str, Any]) -> None:
    for name, values in want.items():
        got = result.as_numpy(name)
        assert got is not None, name
        assert np.allclose(got.reshape(len(values), -1), np.asarray(values).reshape(len(values), -1)), name


def test_metadata_and_readiness(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    assert http.is_server_live() and http.is_server_ready() and http.is_model_ready("digits")
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    assert grpc_client.is_model_ready("digits", "1")
    meta = http.get_model_metadata("digits")
    assert meta["versions"] == ["1"] and meta["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, 64]}
    ]
    gmeta = grpc_client.get_model_metadata("digits", as_json=True)
    assert [o["name"] for o in gmeta["outputs"]] == [o["name"] for o in meta["outputs"]]
    assert "model_repository" in http.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [True, False])
def test_http_infer_binary_and_json(
    stack: GrpcStack, http: thttp.InferenceServerClient, binary: bool
) -> None:
    inp = thttp.InferInput("input", list(X.shape), "FP64")
    inp.set_data_from_numpy(X, binary_data=binary)
    want = _json_columns(stack, X)
    outputs = [thttp.InferRequestedOutput(n, binary_data=binary) for n in want]
    _same(http.infer("digits", [inp], outputs=outputs), want)


def test_grpc_infer_raw(stack: GrpcStack, grpc_client: tgrpc.InferenceServerClient) -> None:
    inp = tgrpc.InferInput("input", list(X.shape), "FP64")
    inp.set_data_from_numpy(X)
    result = grpc_client.infer("digits", [inp], request_id="d1")
    _same(result, _json_columns(stack, X))
    assert result.get_response().id == "d1" and result.get_response().model_version == "1"


def test_grpc_infer_typed_contents(stack: GrpcStack) -> None:
    """tritonclient.grpc always sends raw tensors; its generated stub sends typed ``contents``."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    request = service_pb2.ModelInferRequest(model_name="digits", model_version="1")
    request.inputs.add(name="input", datatype="FP64", shape=list(X.shape)).contents.fp64_contents.extend(
        X.reshape(-1).tolist()
    )
    with grpc.insecure_channel(stack.grpc) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    want = _json_columns(stack, X)
    outputs = {o.name: o for o in response.outputs}
    assert list(outputs["label"].contents.int64_contents) == want["label"]
    assert np.allclose(np.asarray(outputs["proba"].contents.fp64_contents).reshape(5, 10), want["proba"])


def test_grpc_infer_fp32_is_widened(stack: GrpcStack, grpc_client: tgrpc.InferenceServerClient) -> None:
    inp = tgrpc.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X.astype(np.float32))
    _same(grpc_client.infer("digits", [inp]), _json_columns(stack, X))


@pytest.mark.parametrize("shape", [(5, 63), (320,)])
def test_wrong_shape_is_a_clear_error_on_both(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient, shape: tuple[int, ...]
) -> None:
    data = np.zeros(shape)
    for module, client in ((thttp, http), (tgrpc, grpc_client)):
        inp = module.InferInput("input", list(shape), "FP64")
        inp.set_data_from_numpy(data)
        with pytest.raises(module.InferenceServerException) as info:
            client.infer("digits", [inp])
        assert "'input'" in info.value.message()
    assert grpc_client.is_model_ready("digits")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_refused_as_bad_input_on_both(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient, bad: float
) -> None:
    """Binary tensors can carry NaN and infinity (JSON cannot): the digits LR refuses them as the client's
    error naming the input and row, never a 500 / INTERNAL."""
    data = X.copy()
    data[3, 7] = bad
    for module, client, status in ((thttp, http, "422"), (tgrpc, grpc_client, "StatusCode.INVALID_ARGUMENT")):
        inp = module.InferInput("input", list(data.shape), "FP64")
        inp.set_data_from_numpy(data)
        with pytest.raises(module.InferenceServerException) as info:
            client.infer("digits", [inp])
        assert str(info.value.status()) == status, info.value
        assert "row 3: input 'input' is NaN or infinite" in info.value.message()
    assert grpc_client.is_model_ready("digits")


def test_wrong_datatype_and_unknown_model(
    http: thttp.InferenceServerClient, grpc_client: tgrpc.InferenceServerClient
) -> None:
    for module, client in ((thttp, http), (tgrpc, grpc_client)):
        inp = module.InferInput("input", [1], "BYTES")
        inp.set_data_from_numpy(np.array([b"x"], dtype=object))
        with pytest.raises(module.InferenceServerException) as info:
            client.infer("digits", [inp])
        assert "'input'" in info.value.message() and "BYTES" in info.value.message()
        inp = module.InferInput("input", list(X.shape), "FP64")
        inp.set_data_from_numpy(X)
        with pytest.raises(module.InferenceServerException) as info:
            client.infer("nope", [inp])
        assert "nope" in info.value.message()


def test_repository_extension(stack: GrpcStack, http: thttp.InferenceServerClient) -> None:
    index = {m["name"]: m for m in http.get_model_repository_index()}
    assert index["digits"]["state"] == "READY" and index["digits"]["version"] == "1"
    with pytest.raises(thttp.InferenceServerException):
        http.unload_model("digits")  # no admin token
    http.unload_model("digits", headers=AUTH)
    assert "digits" not in stack.runtime.endpoints  # unload returns once no worker serves it
    assert {m["name"]: m["state"] for m in http.get_model_repository_index()}["digits"] == "UNAVAILABLE"
    http.load_model("digits", headers=AUTH)  # back, at digits@production, once every worker serves it
    assert http.is_model_ready("digits", "1")
    assert [m["name"] for m in http.get_model_repository_index()] == ["digits"]


def test_repository_load_with_target_and_errors(stack: GrpcStack) -> None:
    r = stack.admin.post("/v2/repository/models/second/load", json={"parameters": {"target": "digits@2"}})
    assert r.status_code == 200, r.text
    ready = stack.http.post("/v2/repository/index", json={"ready": True}).json()
    assert {(m["name"], m["version"]) for m in ready} == {("digits", "1"), ("second", "2")}
    r = stack.admin.post(
        "/v2/repository/models/second/load", json={"parameters": {"target": "digits@3"}}
    )  # iris: breaks clients
    assert r.status_code == 409 and "refused" in r.json()["error"]
    index = {m["name"]: m for m in stack.http.post("/v2/repository/index").json()}
    assert index["second"]["state"] == "READY" and index["second"]["version"] == "2"  # old one serves
    assert "would break clients" in index["second"]["reason"]
    r = stack.admin.post(
        "/v2/repository/models/second/load", json={"parameters": {"target": "digits@3", "force": True}}
    )
    assert r.status_code == 200, r.text
    assert stack.admin.post("/v2/repository/models/second/unload").status_code == 200
    r = stack.admin.post("/v2/repository/models/nope/load")
    assert r.status_code == 404 and "nope" in r.json()["error"]
    assert stack.admin.post("/v2/repository/models/nope/unload").status_code == 404
    r = stack.admin.post("/v2/repository/models/digits/load", json={"parameters": {"timeout_s": "x"}})
    assert r.status_code == 400 and "timeout_s" in r.json()["error"]
