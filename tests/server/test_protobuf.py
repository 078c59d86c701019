"""Protobuf-native endpoints: the served .proto compiled here with protoc, its stub called over gRPC and its
bytes posted over HTTP; answers equal the JSON path's. Bad bytes give clear errors and serving goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from sklearn.datasets import load_digits

from support.grpc_helpers import GrpcStack, compile_proto, grpc_stack

PROTOBUF = "application/x-protobuf"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcStack]:
    with grpc_stack(tmp_path_factory.mktemp("protobuf")) as s:
        yield s


@pytest.fixture(scope="module")
def digits_proto(stack: GrpcStack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    r = stack.http.get("/v1/endpoints/digits/contract.proto")
    assert r.status_code == 200, r.text
    return compile_proto(r.text, "digits", tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="module")
def channel(stack: GrpcStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc) as ch:
        yield ch


def _rows(n: int) -> np.ndarray:
    return load_digits().data[:n]


def _request(pb2: Any, x: np.ndarray) -> Any:
    return pb2.Request(rows=[pb2.InputRow(input=row.tolist()) for row in x])


def _instances(x: np.ndarray) -> dict[str, Any]:
    return {"instances": [{"input": row.tolist()} for row in x]}


def _json_answer(stack: GrpcStack, x: np.ndarray) -> list[dict[str, Any]]:
    r = stack.http.post("/v1/endpoints/digits/predict", json=_instances(x))
    assert r.status_code == 200, r.text
    return r.json()["predictions"]  # type: ignore[no-any-return]


def _as_rows(response: Any) -> list[dict[str, Any]]:
    out = []
    for row in response.rows:
        out.append(
            {
                f.name: (list(getattr(row, f.name)) if f.is_repeated else getattr(row, f.name))
                for f in row.DESCRIPTOR.fields
            }
        )
    return out


def _close(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for key, value in g.items():
            assert np.allclose(value, w[key]), key


def test_served_proto_is_proto3_with_a_service(stack: GrpcStack) -> None:
    r = stack.http.get("/v1/endpoints/digits/contract.proto")
    assert 'syntax = "proto3";' in r.text and "package modelrunner.digits;" in r.text
    assert "rpc Predict(Request) returns (Response);" in r.text
    assert r.headers["x-modelrunner-contract-version"] == "1"
    assert stack.http.get("/v1/endpoints/digits/contract.proto").text == r.text  # stable


def test_stub_over_grpc_equals_json(
    stack: GrpcStack, digits_proto: tuple[Any, Any], channel: grpc.Channel
) -> None:
    pb2, pb2_grpc = digits_proto
    stub = pb2_grpc.ModelStub(channel)
    for n in (1, 100):
        x = _rows(n)
        response, call = stub.Predict.with_call(_request(pb2, x))
        _close(_as_rows(response), _json_answer(stack, x))
        headers = dict(call.trailing_metadata())
        assert headers["x-modelrunner-ref"] == "digits@1" and headers["x-modelrunner-version"] == "1"


def test_stub_bytes_over_http_equal_json(stack: GrpcStack, digits_proto: tuple[Any, Any]) -> None:
    pb2, _ = digits_proto
    x = _rows(3)
    r = stack.http.post(
        "/v1/endpoints/digits/predict",
        content=_request(pb2, x).SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == PROTOBUF and r.headers["x-modelrunner-version"] == "1"
    _close(_as_rows(pb2.Response.FromString(r.content)), _json_answer(stack, x))


def test_many_rows_over_http_and_grpc_equal_json(
    stack: GrpcStack, digits_proto: tuple[Any, Any], channel: grpc.Channel
) -> None:
    """40 rows: read and written with numpy (contract.protowire), not row by row."""
    pb2, _ = digits_proto
    x = _rows(40)
    body = _request(pb2, x).SerializeToString()
    r = stack.http.post("/v1/endpoints/digits/predict", content=body, headers={"content-type": PROTOBUF})
    assert r.status_code == 200, r.text
    want = _json_answer(stack, x)
    _close(_as_rows(pb2.Response.FromString(r.content)), want)
    answer = channel.unary_unary("/modelrunner.digits.Model/Predict")(body)
    _close(_as_rows(pb2.Response.FromString(answer)), want)


def test_protobuf_in_json_out_and_json_in_protobuf_out(
    stack: GrpcStack, digits_proto: tuple[Any, Any]
) -> None:
    pb2, _ = digits_proto
    x = _rows(2)
    r = stack.http.post(
        "/v1/endpoints/digits/predict",
        content=_request(pb2, x).SerializeToString(),
        headers={"content-type": PROTOBUF, "accept": "application/json"},
    )
    assert r.status_code == 200 and r.json()["version"] == 1
    _close(r.json()["predictions"], _json_answer(stack, x))
    r = stack.http.post("/v1/endpoints/digits/predict", json=_instances(x), headers={"accept": PROTOBUF})
    assert r.status_code == 200 and r.headers["content-type"] == PROTOBUF
    _close(_as_rows(pb2.Response.FromString(r.content)), _json_answer(stack, x))


def _bad_bodies(pb2: Any) -> list[tuple[bytes, str]]:
    from modelrunner.server.proto import grpc_predict_v2_pb2 as v2

    other = v2.ModelInferRequest(model_name="digits", id="x" * 40).SerializeToString()
    short = pb2.Request(rows=[pb2.InputRow(input=[0.0] * 63)]).SerializeToString()
    ragged = pb2.Request(rows=[pb2.InputRow(input=[0.0] * 64), pb2.InputRow(input=[0.0] * 32)])
    return [
        (b"\xff\xff\xff\xff", "not a valid protobuf Request"),
        (other, "not a valid protobuf Request"),  # field 1 is a string there, not an InputRow
        (short, "'input'"),
        (pb2.Response(rows=[pb2.OutputRow()] * 2).SerializeToString(), "'input'"),  # another message
        (ragged.SerializeToString(), "'input'"),
    ]


def test_bad_bytes_are_clear_errors_over_http_and_grpc(
    stack: GrpcStack, digits_proto: tuple[Any, Any], channel: grpc.Channel
) -> None:
    pb2, _ = digits_proto
    predict = channel.unary_unary("/modelrunner.digits.Model/Predict")
    for body, words in _bad_bodies(pb2):
        r = stack.http.post("/v1/endpoints/digits/predict", content=body, headers={"content-type": PROTOBUF})
        assert r.status_code in (400, 422), (body, r.text)
        assert words in r.json()["error"]["message"], r.text
        with pytest.raises(grpc.RpcError) as info:
            predict(body)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in info.value.details()
    response = pb2.Response.FromString(predict(_request(pb2, _rows(1)).SerializeToString()))
    assert len(response.rows) == 1  # still serving


def test_unknown_services_and_endpoints(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/modelrunner.nope.Model/Predict")(b"")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "modelrunner.digits.Model" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/modelrunner.digits.Model/Explain")(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/some.Other/Predict")(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_proto_by_version(stack: GrpcStack, tmp_path: Path) -> None:
    current = stack.http.get("/v1/endpoints/digits/contract.proto").text
    assert stack.http.get("/v1/endpoints/digits/contract.proto?version=1").text == current
    assert stack.http.get("/v1/endpoints/digits/contract.proto?model_version=2").text == current  # compatible
    iris = stack.http.get("/v1/endpoints/digits/contract.proto?model_version=3")
    assert iris.status_code == 200 and "contract version 2" in iris.text  # an incompatible push bumped it
    assert stack.http.get("/v1/endpoints/digits/contract.proto?version=2").text == iris.text
    r = stack.http.get("/v1/endpoints/digits/contract.proto?version=9")
    assert r.status_code == 404 and "contract versions: 1, 2" in r.json()["error"]["message"]
    compile_proto(iris.text, "digits_v2_check", tmp_path, load=False)  # protoc accepts it
