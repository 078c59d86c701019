"""Open Inference Protocol (V2) REST over real HTTP: health, metadata, readiness, infer (JSON and binary)."""

from __future__ import annotations

import struct

import httpx
import numpy as np
import orjson
import pytest

X = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3, 4, -1, -1, -1, -2]}


def _error(r: httpx.Response) -> str:
    body = r.json()
    assert isinstance(body["error"], str), body  # V2 errors are {"error": "<message>"}
    return body["error"]


def test_health_and_server_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    # the toy runtime has an endpoint with nothing loaded: not ready, which V2 says with a 4xx
    assert client.get("/v2/health/ready").status_code == 400
    meta = client.get("/v2").json()
    assert meta["name"] == "modelrunner" and "binary_tensor_data" in meta["extensions"]
    assert isinstance(meta["version"], str)


def test_model_metadata(client: httpx.Client) -> None:
    meta = client.get("/v2/models/toy").json()
    assert meta["name"] == "toy" and meta["versions"] == ["3"]
    assert meta["inputs"][0] == {"name": "x", "datatype": "FP64", "shape": [-1, 4]}
    assert [o["name"] for o in meta["outputs"]] == ["label", "total", "proba"]
    assert client.get("/v2/models/toy/versions/3").json() == meta


def test_metadata_of_other_version_is_404(client: httpx.Client) -> None:
    r = client.get("/v2/models/toy/versions/2")
    assert r.status_code == 404
    assert "serves version 3" in _error(r)
    assert client.get("/v2/models/nope").status_code == 404


def test_model_ready(client: httpx.Client) -> None:
    assert client.get("/v2/models/toy/ready").status_code == 200
    assert client.get("/v2/models/toy/versions/3/ready").status_code == 200
    assert client.get("/v2/models/toy/versions/4/ready").status_code == 400
    assert client.get("/v2/models/empty/ready").status_code == 400
    assert client.get("/v2/models/nope/ready").status_code == 404


def test_infer_json_echoes_id_and_version(client: httpx.Client) -> None:
    r = client.post("/v2/models/toy/infer", json={"id": "req-1", "inputs": [X]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "toy" and body["model_version"] == "3" and body["id"] == "req-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"] == {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]}
    assert outputs["proba"]["shape"] == [2, 2] and outputs["proba"]["data"] == [0.0, 1.0, 1.0, 0.0]
    assert outputs["total"]["data"] == [10.0, -5.0]


def test_infer_requested_outputs_only_and_scalar_as_n_by_1(client: httpx.Client) -> None:
    scale = {"name": "scale", "shape": [2, 1], "datatype": "FP32", "data": [[2.0], [0.5]]}
    r = client.post(
        "/v2/models/toy/versions/3/infer", json={"inputs": [X, scale], "outputs": [{"name": "total"}]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"name": "total", "shape": [2], "datatype": "FP64", "data": [20.0, -2.5]}]


@pytest.mark.parametrize(
    ("inputs", "status", "words"),
    [
        ([{**X, "name": "y"}], 422, "unknown input 'y'"),
        ([{**X, "datatype": "BYTES", "data": ["a"] * 8}], 422, "'x'"),
        ([{**X, "shape": [3, 4]}], 422, "'x'"),
        ([{**X, "shape": [8, 1]}], 422, "'x'"),
        ([{**X, "datatype": "FP99"}], 422, "FP99"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64"}], 422, "'x'"),
        ([], 400, "inputs"),
    ],
)
def test_infer_bad_tensors_name_the_input(
    client: httpx.Client, inputs: list, status: int, words: str
) -> None:
    r = client.post("/v2/models/toy/infer", json={"inputs": inputs})
    assert r.status_code == status, r.text
    assert words in _error(r)


def test_infer_errors(client: httpx.Client) -> None:
    r = client.post("/v2/models/toy/infer", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in _error(r)
    r = client.post("/v2/models/nope/infer", json={"inputs": [X]})
    assert r.status_code == 404 and "nope" in _error(r)
    r = client.post("/v2/models/toy/versions/9/infer", json={"inputs": [X]})
    assert r.status_code == 404 and "serves version 3" in _error(r)
    r = client.post("/v2/models/empty/infer", json={"inputs": [X]})
    assert r.status_code == 503
    r = client.post("/v2/models/toy/infer", json={"inputs": [X], "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "nope" in _error(r)


def test_infer_binary_extension_both_ways(client: httpx.Client) -> None:
    x = np.array([[1, 2, 3, 4], [-1, -1, -1, -2]], dtype="<f8")
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "label", "parameters": {"binary_data": True}}, {"name": "total"}],
        }
    )
    r = client.post(
        "/v2/models/toy/infer",
        content=head + x.tobytes(),
        headers={
            "Inference-Header-Content-Length": str(len(head)),
            "content-type": "application/octet-stream",
        },
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    meta = orjson.loads(r.content[:n])
    label, total = meta["outputs"]
    assert label["parameters"]["binary_data_size"] == 16 and "data" not in label
    assert np.frombuffer(r.content[n:], dtype="<i8").tolist() == [1, 0]
    assert total["data"] == [10.0, -5.0]


def test_binary_length_mismatch_is_400(client: httpx.Client) -> None:
    head = orjson.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}
            ]
        }
    )
    r = client.post(
        "/v2/models/toy/infer",
        content=head + b"\0" * 16,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 400 and "binary_data_size" in _error(r)


def test_bytes_tensor_binary(client: httpx.Client) -> None:
    words = [b"abc", b"hello"]
    raw = b"".join(struct.pack("<I", len(w)) + w for w in words)
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    r = client.post(
        "/v2/models/text/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [3, 5]


def test_tritonclient_works_unchanged(toy_server: str) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(toy_server.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_model_ready("toy")
        assert client.get_model_metadata("toy")["versions"] == ["3"]
        x = np.array([[1, 2, 3, 4], [-1, -1, -1, -2]], dtype=np.float64)
        inp = triton.InferInput("x", list(x.shape), "FP64")
        inp.set_data_from_numpy(x)  # binary by default
        result = client.infer("toy", [inp], request_id="t1")
        assert result.as_numpy("label").tolist() == [1, 0]
        assert result.as_numpy("proba").shape == (2, 2)
        assert result.get_response()["model_version"] == "3"
        text = triton.InferInput("text", [2], "BYTES")
        text.set_data_from_numpy(np.array([b"abc", b"hello"], dtype=object))
        out = client.infer("text", [text], outputs=[triton.InferRequestedOutput("length", binary_data=False)])
        assert out.as_numpy("length").tolist() == [3, 5]
    finally:
        client.close()
