"""Request ids and variants on every protocol (native REST, V2 REST, protobuf over HTTP and gRPC, V2 gRPC)
while an A/B experiment with a sticky key runs: digits@1 in production, digits@2 the candidate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as tpb
from tritonclient.grpc import service_pb2_grpc as tpb_grpc

from modelrunner.contract.proto import columns_to_request_bytes, proto_package
from modelrunner.runner.experiment import sticky_point
from support.grpc_helpers import GrpcStack, grpc_stack
from support.server_helpers import push_sklearn_models

ROW = [0.0] * 64
PROTOBUF = "application/x-protobuf"
KEYS = [f"user-{i}" for i in range(12)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GrpcStack, Any]]:
    def push(registry: Any, root: Path) -> None:
        push_sklearn_models(registry, root, versions=2)

    with grpc_stack(tmp_path_factory.mktemp("wire"), push) as stack:
        exp = stack.registry.start_experiment("digits", "digits@2", mode="ab", percent=50, sticky_key="user")
        deadline = time.monotonic() + 60
        while stack.runtime.endpoints["digits"].experiment is None:
            assert time.monotonic() < deadline, stack.runtime.endpoints["digits"].describe()
            time.sleep(0.05)
        yield stack, exp


def _expected(exp: Any, key: str) -> str:
    return "candidate" if sticky_point(exp.id, key) < 50 else "production"


def test_native_json_and_protobuf_over_http(stack: tuple[GrpcStack, Any]) -> None:
    s, exp = stack
    for key in KEYS:
        for query in ("", "?trace=0"):  # the fast path and the routed one
            r = s.http.post(
                f"/v1/endpoints/digits/predict{query}",
                json={"instances": [ROW], "user": key},
                headers={"x-request-id": f"n-{key}"},
            )
            body = r.json()
            assert (body["request_id"], body["variant"]) == (f"n-{key}", _expected(exp, key)), body
            assert body["version"] == (2 if body["variant"] == "candidate" else 1)
            assert (r.headers["x-request-id"], r.headers["x-modelrunner-variant"]) == (
                f"n-{key}",
                body["variant"],
            )
        contract = s.runtime.endpoints["digits"].contract
        data = columns_to_request_bytes({"input": np.zeros((1, 64))}, contract, proto_package("digits"))
        r = s.http.post(
            "/v1/endpoints/digits/predict",
            content=data,
            headers={"content-type": PROTOBUF, "x-user": key, "x-request-id": f"p-{key}"},
        )
        assert r.status_code == 200, r.text
        assert (r.headers["x-request-id"], r.headers["x-modelrunner-variant"]) == (
            f"p-{key}",
            _expected(exp, key),
        )


def test_v2_rest_id_and_parameters(stack: tuple[GrpcStack, Any]) -> None:
    s, exp = stack
    for key in KEYS:
        body = {
            "id": f"v2-{key}",
            "parameters": {"user": key},
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP64", "data": ROW}],
        }
        r = s.http.post("/v2/models/digits/infer", json=body)
        out = r.json()
        assert out["id"] == f"v2-{key}" == out["parameters"]["request_id"] == r.headers["x-request-id"]
        assert out["parameters"]["variant"] == _expected(exp, key) == r.headers["x-modelrunner-variant"]
        assert out["model_version"] == ("2" if out["parameters"]["variant"] == "candidate" else "1")
    del body["id"]
    out = s.http.post("/v2/models/digits/infer", json=body).json()
    assert out["id"] == out["parameters"]["request_id"] and len(out["id"]) == 32  # generated


def test_grpc_v2_and_contract_service_metadata(stack: tuple[GrpcStack, Any]) -> None:
    s, exp = stack
    contract = s.runtime.endpoints["digits"].contract
    with grpc.insecure_channel(s.grpc) as channel:
        stub = tpb_grpc.GRPCInferenceServiceStub(channel)
        native = channel.unary_unary("/modelrunner.digits.Model/Predict")
        data = columns_to_request_bytes({"input": np.zeros((1, 64))}, contract, proto_package("digits"))
        for key in KEYS:
            request = tpb.ModelInferRequest(model_name="digits", id=f"g-{key}")
            request.parameters["user"].string_param = key
            tensor = request.inputs.add(name="input", datatype="FP64", shape=[1, 64])
            tensor.contents.fp64_contents.extend(ROW)
            response, call = stub.ModelInfer.with_call(request)
            trailing = dict(call.trailing_metadata())
            assert response.id == f"g-{key}" == trailing["x-request-id"]
            assert (
                response.parameters["variant"].string_param
                == _expected(exp, key)
                == trailing["x-modelrunner-variant"]
            )
            _, call = native.with_call(data, metadata=(("x-user", key), ("x-request-id", f"c-{key}")))
            trailing = dict(call.trailing_metadata())
            assert (trailing["x-request-id"], trailing["x-modelrunner-variant"]) == (
                f"c-{key}",
                _expected(exp, key),
            )


def test_feedback_over_both_routes(stack: tuple[GrpcStack, Any]) -> None:
    s, exp = stack
    rid = s.http.post("/v1/endpoints/digits/predict", json={"instances": [ROW]}).json()["request_id"]
    r = s.http.post("/v1/endpoints/digits/feedback", json=[{"request_id": rid, "target": 3}])
    assert r.status_code == 200 and r.json() == {"joined": 1, "duplicates": 0}, r.text
    r = s.http.post("/v2/models/digits/feedback", json={"request_id": rid, "target": 4})
    assert r.status_code == 200 and r.json() == {"joined": 1, "duplicates": 1}, r.text
    r = s.http.post("/v1/endpoints/digits/feedback", content=b"{nope")
    assert r.status_code == 400, r.text
    r = s.http.post("/v1/endpoints/nope/feedback", json={"request_id": rid, "target": 4})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"], r.text
    assert [(row.request_id, row.target) for row in s.registry.labelled("digits", experiment_id=exp.id)] == [
        (rid, 4)
    ]
