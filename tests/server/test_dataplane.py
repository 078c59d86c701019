"""The data plane every protocol shares: a batch of zero rows answers zero rows, without calling the model.

A model that refuses an empty batch (sklearn: "Found array with 0 sample(s)") used to turn ``{"instances":
[]}`` into a 500. Each protocol is checked for real, over HTTP and gRPC on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import orjson
import pytest

from modelrunner.server.proto import grpc_predict_v2_pb2 as pb
from modelrunner.settings import Settings
from support.decode_helpers import Served, grpc_call, proto_row, served_strict, v2_binary_body

PREDICT = "/v1/endpoints/strict/predict"
INFER = "/v2/models/strict/infer"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_strict(Settings(home=tmp_path_factory.mktemp("home"))) as s:
        yield s


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


def _no_call(served: Served, before: int) -> None:
    assert served.predictor.calls == before, "the model was called with zero rows"


def test_native_json_rows_and_columns(served: Served, http: httpx.Client) -> None:
    before = served.predictor.calls
    r = http.post(PREDICT, json={"instances": []})  # the plain fast path (application/json)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [] and r.json()["version"] == 3
    r = http.post(PREDICT, json={"inputs": {"x": []}})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == {"label": [], "proba": [], "name": []}
    r = http.post(PREDICT, content=b'{"instances": []}', headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.json()["predictions"] == [], r.text  # the routed app (JSON anyway)
    _no_call(served, before)


def test_a_wrong_empty_batch_is_still_refused(http: httpx.Client) -> None:
    r = http.post(PREDICT, json={"inputs": {"x": [], "nope": []}})
    assert r.status_code == 422 and "'nope'" in r.json()["error"]["message"], r.text


def test_protobuf_over_http_and_grpc(served: Served, http: httpx.Client) -> None:
    before = served.predictor.calls
    r = http.post(PREDICT, content=b"", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 200 and r.content == b"", r.text  # an empty Response: zero rows
    assert grpc_call(served.grpc, "/modelrunner.strict.Model/Predict", b"") == b""
    _no_call(served, before)
    assert len(grpc_call(served.grpc, "/modelrunner.strict.Model/Predict", proto_row([1, 2, 3, 4]))) > 0


def test_v2_rest_json_and_binary(served: Served, http: httpx.Client) -> None:
    before = served.predictor.calls
    r = http.post(INFER, json={"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP64", "data": []}]})
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["proba"]["shape"] == [0, 2] and outputs["proba"]["data"] == []
    body, headers = v2_binary_body([0, 4], b"")
    r = http.post(INFER, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert orjson.loads(r.content)["outputs"][0]["shape"][0] == 0
    _no_call(served, before)


def test_v2_grpc_typed_and_raw(served: Served) -> None:
    before = served.predictor.calls
    typed = pb.ModelInferRequest(
        model_name="strict",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[0, 4])],
    )
    raw = pb.ModelInferRequest(
        model_name="strict",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[0, 4])],
        raw_input_contents=[b""],
    )
    for request in (typed, raw):
        with grpc.insecure_channel(served.grpc) as channel:
            call = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            response = call(request, timeout=30)
        assert [list(o.shape) for o in response.outputs] == [[0], [0, 2], [0]]
    _no_call(served, before)


def test_large_bodies_are_decoded_off_the_event_loop() -> None:
    """``offload`` (set by every adapter for bodies over OFFLOAD_BYTES) runs the decoder in a thread, so a
    32 MiB body does not hold the worker's other requests; small ones stay on the loop (the hot path)."""
    import asyncio
    import threading

    import numpy as np

    from modelrunner.runner.endpoint import Endpoint
    from modelrunner.server.dataplane import DataPlane
    from support.decode_helpers import StrictPredictor
    from support.server_helpers import StaticRuntime, toy_deployment

    endpoint = Endpoint("strict")
    endpoint.current = toy_deployment("strict", StrictPredictor())
    threads: list[int] = []

    def decode(contract: object) -> dict[str, np.ndarray]:
        threads.append(threading.get_ident())
        return {"x": np.ones((1, 4))}

    plane = DataPlane(StaticRuntime({"strict": endpoint}))

    async def both() -> int:
        await plane.infer(endpoint, decode, "rest", offload=True)
        await plane.infer(endpoint, decode, "rest")
        return threading.get_ident()

    loop_thread = asyncio.run(both())
    assert threads[0] != loop_thread and threads[1] == loop_thread


def test_every_request_is_reported_to_the_observer_given() -> None:
    """Answered and failed requests: each reported once, the in-flight count back to zero."""
    import asyncio

    import numpy as np

    from modelrunner.errors import ValidationError
    from modelrunner.monitoring.observer import RecordingObserver
    from modelrunner.runner.endpoint import Endpoint
    from modelrunner.server.dataplane import DataPlane
    from support.decode_helpers import StrictPredictor
    from support.server_helpers import StaticRuntime, toy_deployment

    endpoint = Endpoint("strict")
    endpoint.current = toy_deployment("strict", StrictPredictor())
    observer = RecordingObserver()
    plane = DataPlane(StaticRuntime({"strict": endpoint}), observer=observer)

    def broken(contract: object) -> dict[str, np.ndarray]:
        raise ZeroDivisionError("a decoder bug")

    async def requests() -> None:
        await plane.infer(endpoint, lambda c: {"x": np.ones((2, 4))}, "v2")
        with pytest.raises(ValidationError):
            await plane.infer(endpoint, lambda c: {"x": np.ones((2, 3))}, "rest")
        with pytest.raises(ZeroDivisionError):
            await plane.infer(endpoint, broken, "grpc")

    asyncio.run(requests())
    assert observer.in_flight == {"strict": 0}
    assert [(name, *rest[:3]) for name, *rest in observer.calls if name.startswith("request_a")] == [
        ("request_answered", "strict", 3, "v2")
    ]
    assert observer.named("request_failed") == [("strict", 3, "invalid_argument"), ("strict", 3, "internal")]
