"""Protobuf clients across swaps: a stub compiled from the old .proto keeps working after a compatible swap
(new optional input with a default, new output); a forced breaking swap bumps the contract version and the
old .proto stays downloadable by version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from support.grpc_helpers import GrpcStack, compile_proto, grpc_stack, push_scalers

PROTOBUF = "application/x-protobuf"
X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcStack]:
    with grpc_stack(tmp_path_factory.mktemp("swaps"), push_scalers, {"scaler": "scaler@production"}) as s:
        yield s


def _swap(stack: GrpcStack, target: str, force: bool = False) -> None:
    r = stack.admin.put(
        "/admin/endpoints/scaler", json={"target": target, "force": force, "wait": True, "timeout_s": 20}
    )
    assert r.status_code == 200 and r.json()["outcome"] == "switched", r.text


def _proto(stack: GrpcStack, query: str = "") -> tuple[str, str]:
    r = stack.http.get(f"/v1/endpoints/scaler/contract.proto{query}")
    assert r.status_code == 200, r.text
    return r.text, r.headers["x-modelrunner-contract-version"]


def test_old_stub_across_compatible_then_forced_swaps(stack: GrpcStack, tmp_path: Path) -> None:
    v1_text, version = _proto(stack)
    assert version == "1" and "double scale" not in v1_text
    pb2, pb2_grpc = compile_proto(v1_text, "scaler_v1", tmp_path)
    request = pb2.Request(rows=[pb2.InputRow(x=row) for row in X])
    with grpc.insecure_channel(stack.grpc) as channel:
        stub = pb2_grpc.ModelStub(channel)
        assert [r.total for r in stub.Predict(request).rows] == [6.0, 15.0]

        _swap(stack, "scaler@2")  # compatible: the old stub does not send scale, nor know 'double'
        response, call = stub.Predict.with_call(request)
        assert [r.total for r in response.rows] == [6.0, 15.0]  # scale defaulted to 1.0
        assert dict(call.trailing_metadata())["x-modelrunner-ref"] == "scaler@2"
        r = stack.http.post(
            "/v1/endpoints/scaler/predict",
            content=request.SerializeToString(),
            headers={"content-type": PROTOBUF},
        )
        assert r.status_code == 200
        assert [row.total for row in pb2.Response.FromString(r.content).rows] == [6.0, 15.0]
        v2_text, version = _proto(stack)
        assert version == "1" and "optional double scale" in v2_text and "double double" in v2_text
        assert _proto(stack, "?version=1")[0] == v2_text  # the newest .proto of contract version 1

        _swap(stack, "scaler@3", force=True)  # breaking: x is 4 wide now
        v3_text, version = _proto(stack)
        assert version == "2" and "contract version 2" in v3_text
        assert _proto(stack, "?version=1")[0] == v2_text  # the old one stays downloadable
        assert _proto(stack, "?model_version=1")[0] == v1_text
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request)  # an old client now gets a clear error, not garbage
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'x'" in info.value.details()
