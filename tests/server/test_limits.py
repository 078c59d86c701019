"""Request limits at the edge, per protocol: rows per request (``max_request_rows``, checked before the rows
are decoded), JSON arrays per row, V2 shapes refused before allocation, decode errors named (never a 500 or
gRPC UNKNOWN), unsupported media types (415)."""

from __future__ import annotations

import time
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
NATIVE = "/modelrunner.strict.Model/Predict"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
ROWS = 50


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), max_request_rows=ROWS, max_request_bytes=8 * 1024 * 1024
    )
    with served_strict(settings) as s:
        yield s


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as c:
        yield c


def _grpc_error(target: str, method: str, body: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        grpc_call(target, method, body)
    return info.value


def _too_many(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    message = r.json()["error"] if r.url.path.startswith("/v2") else r.json()["error"]["message"]
    assert f"at most {ROWS} rows" in message and "max_request_rows" in message, message


def test_rows_limit_on_native_json(http: httpx.Client) -> None:
    row = {"x": [1, 2, 3, 4]}
    assert http.post(PREDICT, json={"instances": [row] * ROWS}).status_code == 200  # the limit itself is fine
    _too_many(http.post(PREDICT, json={"instances": [row] * (ROWS + 1)}))  # plain fast path
    _too_many(http.post(PREDICT, json={"inputs": {"x": [[1, 2, 3, 4]] * (ROWS + 1)}}))
    _too_many(
        http.post(
            PREDICT,
            content=orjson.dumps({"instances": [row] * (ROWS + 1)}),
            headers={"content-type": "application/json; charset=utf-8", "accept": "*/*"},
        )
    )


def test_json_with_too_many_arrays_is_refused_before_parsing(http: httpx.Client) -> None:
    body = b'{"instances": [' + b",".join([b"[]"] * 20_000) + b"]}"
    r = http.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "arrays/objects" in r.json()["error"]["message"], r.text


def test_rows_limit_on_protobuf_http_and_grpc(served: Served, http: httpx.Client) -> None:
    body = proto_row([1, 2, 3, 4]) * (ROWS + 1)
    _too_many(http.post(PREDICT, content=body, headers={"content-type": "application/x-protobuf"}))
    error = _grpc_error(served.grpc, NATIVE, body)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and f"at most {ROWS} rows" in error.details()
    assert len(grpc_call(served.grpc, NATIVE, proto_row([1, 2, 3, 4]) * ROWS)) > 0


def test_a_million_empty_protobuf_rows_are_refused_at_once(served: Served, http: httpx.Client) -> None:
    body = b"\x0a\x00" * 1_000_000  # 2 MB: before the limit, parsing it held the worker 4-15 s
    start = time.perf_counter()
    _too_many(http.post(PREDICT, content=body, headers={"content-type": "application/x-protobuf"}))
    assert _grpc_error(served.grpc, NATIVE, body).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.perf_counter() - start < 10  # generous for a loaded machine; it takes milliseconds


def test_rows_limit_on_v2_rest_json_binary_and_grpc(served: Served, http: httpx.Client) -> None:
    n = ROWS + 1
    _too_many(
        http.post(
            INFER,
            json={"inputs": [{"name": "x", "shape": [n, 4], "datatype": "FP64", "data": [0.0] * (4 * n)}]},
        )
    )
    body, headers = v2_binary_body([n, 4], b"\0" * (32 * n))
    _too_many(http.post(INFER, content=body, headers=headers))
    request = pb.ModelInferRequest(
        model_name="strict",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[n, 4])],
        raw_input_contents=[b"\0" * (32 * n)],
    )
    error = _grpc_error(served.grpc, MODEL_INFER, request.SerializeToString())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_request_rows" in error.details()


@pytest.mark.parametrize("shape", [[1, 2**40], [2**32, 2**32], [-1, 4], [1, -4], [2, 3]])
def test_v2_shapes_refused_before_allocation(served: Served, http: httpx.Client, shape: list[int]) -> None:
    data: list[float] = []  # no values: numpy's product of [2**32, 2**32] overflowed to 0 and "matched"
    refused = (422, 413)  # 413: a first dimension over max_request_rows
    r = http.post(INFER, json={"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": data}]})
    assert r.status_code in refused and ("'x'" in r.json()["error"] or "rows" in r.json()["error"]), r.text
    body, headers = v2_binary_body(shape, b"")
    r = http.post(INFER, content=body, headers=headers)
    assert r.status_code in refused and ("'x'" in r.json()["error"] or "rows" in r.json()["error"]), r.text
    for raw in (True, False):
        tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=shape)
        if not raw:
            tensor.contents.fp64_contents.extend(data)
        request = pb.ModelInferRequest(
            model_name="strict", inputs=[tensor], raw_input_contents=[b""] if raw else []
        )
        error = _grpc_error(served.grpc, MODEL_INFER, request.SerializeToString())
        assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED), error


def test_too_many_v2_tensors(served: Served) -> None:
    request = pb.ModelInferRequest(
        model_name="strict",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[1, 4])] * 2000,
    )
    error = _grpc_error(served.grpc, MODEL_INFER, request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 1024" in error.details()


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\xff", b"\x12\x05ab"])
def test_v2_grpc_bytes_that_do_not_parse(served: Served, body: bytes) -> None:
    error = _grpc_error(served.grpc, MODEL_INFER, body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "not a valid protobuf inference.ModelInferRequest" in error.details()
    ready = _grpc_error(served.grpc, "/inference.GRPCInferenceService/ModelReady", b"\xff")
    assert ready.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_null_is_told_apart_from_missing(http: httpx.Client) -> None:
    r = http.post(PREDICT, json={"instances": [{"x": None}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == "row 0: input 'x' is null; expected float64[4]"
    assert r.json()["error"]["field"] == "x"
    r = http.post(PREDICT, json={"instances": [{}]})
    assert r.status_code == 422 and "missing input 'x'" in r.json()["error"]["message"], r.text
    r = http.post(PREDICT, json={"instances": [{"x": [1, 2, 3, 4], "age": None}]})  # optional: its default
    assert r.status_code == 200, r.text


def test_an_unread_media_type_is_415(http: httpx.Client) -> None:
    tsv = {"content-type": "text/tab-separated-values"}
    r = http.post(PREDICT, content=b"x1\tx2\tx3\tx4\n1\t2\t3\t4\n", headers=tsv)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["message"] == (
        "unsupported media type text/tab-separated-values; send application/json, text/csv (with a header "
        "row), application/x-protobuf or multipart/form-data"
    )
    r = http.post(
        PREDICT, content=b'{"instances": [{"x": [1, 2, 3, 4]}]}', headers={"content-type": "text/plain"}
    )  # JSON labelled otherwise is still read
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("depth", [100, 1000, 5000])
def test_deeply_nested_json_is_a_client_error(http: httpx.Client, depth: int) -> None:
    nested = b"[" * depth + b"1" + b"]" * depth
    for path, body in (
        (PREDICT, b'{"instances": [{"x": ' + nested + b"}]}"),
        (PREDICT, b'{"inputs": {"x": ' + nested + b"}}"),
        (INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ' + nested + b"}]}"),
    ):
        r = http.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code in (400, 413, 422), (depth, path, r.text)  # 413: too many arrays per row
