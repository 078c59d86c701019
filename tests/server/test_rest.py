"""Native REST over real HTTP: predict in both forms, contract routes, and every error status."""

from __future__ import annotations

import httpx
import pytest

ROW = {"x": [1.0, 2.0, 3.0, -1.0]}


def test_predict_instances_returns_rows_and_the_answering_version(client: httpx.Client) -> None:
    rows = [ROW, {"x": [-1, -1, -1, -1], "scale": 2}]
    r = client.post("/v1/endpoints/toy/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["endpoint"] == "toy" and body["model"] == "toy" and body["version"] == 3
    assert r.headers["x-modelrunner-model"] == "toy" and r.headers["x-modelrunner-version"] == "3"
    assert body["predictions"] == [
        {"label": 1, "total": 5.0, "proba": [0.0, 1.0]},
        {"label": 0, "total": -8.0, "proba": [1.0, 0.0]},
    ]


def test_predict_inputs_returns_columns(client: httpx.Client) -> None:
    r = client.post("/v1/endpoints/toy/predict", json={"inputs": {"x": [[1, 1, 1, 1], [0, 0, 0, -1]]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 3
    assert body["outputs"] == {"label": [1, 0], "total": [4.0, -1.0], "proba": [[0.0, 1.0], [1.0, 0.0]]}


def test_single_input_contract_accepts_bare_values(client: httpx.Client) -> None:
    r = client.post("/v1/endpoints/text/predict", json={"instances": ["abc", "hello"]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [{"length": 3}, {"length": 5}]
    assert r.json()["version"] == 1


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"instances": [{"scale": 1.0}]}, "x", "missing"),
        ({"instances": [{"x": [1, 2, 3]}]}, "x", "shape"),
        ({"instances": [{"x": ["a", "b", "c", "d"]}]}, "x", "dtype"),
        ({"instances": [{"x": [1.5, 2, 3, 4], "scale": "big"}]}, "scale", "dtype"),
        ({"inputs": {"x": [[1, 2, 3, 4]], "y": [1]}}, "y", "unknown"),
        ({"instances": [{"x": [1, 2, 3, 4], "nope": 1}]}, "nope", "unknown"),
    ],
)
def test_validation_error_is_422_naming_the_field(
    client: httpx.Client, body: dict, field: str, words: str
) -> None:
    r = client.post("/v1/endpoints/toy/predict", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_argument"
    assert err["field"] == field
    assert field in err["message"] and words in err["message"]


def test_json_sent_as_curl_does_without_content_type(client: httpx.Client) -> None:
    r = client.post(
        "/v1/endpoints/toy/predict",
        content=b'{"instances": [{"x": [1, 2, 3, 4]}]}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == 1


def test_malformed_json_is_400(client: httpx.Client) -> None:
    r = client.post(
        "/v1/endpoints/toy/predict", content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_argument"
    assert "malformed JSON" in r.json()["error"]["message"]


def test_wrong_envelope_is_refused_clearly(client: httpx.Client) -> None:
    r = client.post("/v1/endpoints/toy/predict", json={"rows": []})
    assert r.status_code in (400, 422)
    assert "instances" in r.json()["error"]["message"]


def test_unknown_endpoint_is_404(client: httpx.Client) -> None:
    r = client.post("/v1/endpoints/nope/predict", json={"instances": [ROW]})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert "nope" in r.json()["error"]["message"]


def test_endpoint_with_nothing_loaded_is_503(client: httpx.Client) -> None:
    r = client.post("/v1/endpoints/empty/predict", json={"instances": [ROW]})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "unavailable"


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    rows = [ROW] * 3000  # ~ 90 KB, the test settings allow 64 KB
    r = client.post("/v1/endpoints/toy/predict", json={"instances": rows})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "resource_exhausted"


def test_streamed_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks():  # no content-length: chunked transfer encoding
        for _ in range(100):
            yield b" " * 1024

    r = client.post("/v1/endpoints/toy/predict", content=chunks())
    assert r.status_code == 413


def test_list_endpoints(client: httpx.Client) -> None:
    r = client.get("/v1/endpoints")
    assert r.status_code == 200
    by_name = {e["name"]: e for e in r.json()["endpoints"]}
    assert by_name["toy"]["version"] == 3 and by_name["toy"]["ready"] is True
    assert by_name["empty"]["ready"] is False and by_name["empty"]["version"] is None


def test_contract_json_and_schema(client: httpx.Client) -> None:
    r = client.get("/v1/endpoints/toy/contract")
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 3
    assert [f["name"] for f in body["contract"]["inputs"]] == ["x", "scale"]
    assert set(body["json_schema"]) == {"request", "response"}


def test_contract_proto(client: httpx.Client) -> None:
    r = client.get("/v1/endpoints/toy/contract.proto")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'syntax = "proto3";' in r.text and "package modelrunner.toy;" in r.text


def test_contract_of_unloaded_endpoint_is_503(client: httpx.Client) -> None:
    assert client.get("/v1/endpoints/empty/contract").status_code == 503
    assert client.get("/v1/endpoints/nope/contract.proto").status_code == 404


@pytest.mark.parametrize(
    "query",
    ["model_version=99999999999999999999999", "version=9223372036854775808", "model_version=0", "version=-1"],
)
def test_out_of_range_contract_versions_are_422_naming_them(client: httpx.Client, query: str) -> None:
    for suffix in ("contract", "contract.proto"):
        r = client.get(f"/v1/endpoints/toy/{suffix}?{query}")
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == query.split("=")[0]
