"""The predict hot path (server/native/fastpath.py) answers exactly what the routed ``rest.predict`` answers.

The same request is sent plainly (answered by the fast path) and with a query string (``?trace=0``, which
the fast path leaves to FastAPI's route); bodies, statuses, headers and metrics must agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httpx
import numpy as np
import pytest

from modelrunner.bundle.predictor import Columns
from modelrunner.monitoring import metrics
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server.native import fastpath, plain
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, StaticRuntime, SumPredictor, toy_deployment

ROW = {"x": [1.0, 2.0, 3.0, -1.0]}


class Exploding(SumPredictor):
    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        raise RuntimeError("model bug")


@pytest.fixture(scope="module")
def fast_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from modelrunner.server.app import create_app

    toy, boom = Endpoint("toy"), Endpoint("boom")
    toy.current = toy_deployment("toy", SumPredictor())
    boom.current = toy_deployment("boom", Exploding())
    settings = Settings(home=tmp_path_factory.mktemp("home"), max_request_bytes=4096)
    app = create_app(StaticRuntime({"toy": toy, "boom": boom}), settings)
    assert isinstance(app, fastpath.FastApp)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def _both(client: httpx.Client, path: str, **kw: object) -> tuple[httpx.Response, httpx.Response]:
    headers = {**kw.pop("headers", {}), "x-request-id": "same-id"}  # type: ignore[dict-item]
    fast = client.post(path, headers=headers, **kw)  # type: ignore[arg-type]
    routed = client.post(path + "?trace=0", headers=headers, **kw)  # type: ignore[arg-type]
    return fast, routed


def _same(fast: httpx.Response, routed: httpx.Response) -> None:
    assert (fast.status_code, fast.json()) == (routed.status_code, routed.json())
    for header in (
        "content-type",
        "x-modelrunner-model",
        "x-modelrunner-version",
        "x-request-id",
        "x-modelrunner-variant",
    ):
        assert fast.headers.get(header) == routed.headers.get(header), header


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [ROW, {"x": [-1, -1, -1, -1], "scale": 2}]},
        {"inputs": {"x": [[1, 1, 1, 1], [0, 0, 0, -1]]}},
        {"instances": [{"x": [1, 2, 3]}]},  # 422 naming x
        {"instances": [{"x": [1, 2, 3, 4], "nope": 1}]},  # 422 unknown field
        {"rows": []},  # 422 wrong envelope
        {"instances": [ROW], "outputs": ["label"]},  # only the outputs asked for
        {"inputs": {"x": [[1, 1, 1, 1]]}, "outputs": ["proba", "label"]},
        {"instances": [ROW], "outputs": ["nope"]},  # 422 naming the output
        {"instances": [ROW], "outputs": "label"},  # 422: a list of names
    ],
)
def test_fast_and_routed_answers_agree(fast_client: httpx.Client, body: dict) -> None:
    _same(*_both(fast_client, "/v1/endpoints/toy/predict", json=body))


def test_errors_agree(fast_client: httpx.Client) -> None:
    json_headers = {"content-type": "application/json"}
    _same(*_both(fast_client, "/v1/endpoints/toy/predict", content=b"{nope", headers=json_headers))
    _same(*_both(fast_client, "/v1/endpoints/toy/predict", content=b"", headers=json_headers))
    _same(
        *_both(
            fast_client,
            "/v1/endpoints/toy/predict",
            content=b"[" + b"1," * 4000 + b"1]",
            headers=json_headers,
        )
    )  # 413
    fast, routed = _both(fast_client, "/v1/endpoints/boom/predict", json={"instances": [ROW]})
    _same(fast, routed)
    assert fast.status_code == 500 and "model bug" not in fast.text
    fast, routed = _both(fast_client, "/v1/endpoints/missing/predict", json={"instances": [ROW]})
    _same(fast, routed)
    assert fast.status_code == 404


def test_fast_path_records_the_same_metrics(
    fast_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    metrics.reset()
    try:
        _both(fast_client, "/v1/endpoints/toy/predict", json={"instances": [ROW]})
        _both(fast_client, "/v1/endpoints/toy/predict", json={"instances": [{"x": [1]}]})
        text = metrics.render()[0].decode()
    finally:
        metrics.reset()
    assert 'modelrunner_requests_total{endpoint="toy",protocol="rest",version="3"} 2.0' in text
    assert 'modelrunner_request_errors_total{code="invalid_argument",endpoint="toy",version="3"} 2.0' in text


def test_what_the_fast_path_leaves_to_fastapi() -> None:
    endpoints: dict = {"toy": object()}

    def plain_predict(
        path: str = "/v1/endpoints/toy/predict",
        query: bytes = b"",
        headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),),
    ) -> object:
        return plain.endpoint_for(endpoints, {"path": path, "query_string": query, "headers": list(headers)})

    assert plain_predict() is endpoints["toy"]
    assert plain_predict(headers=((b"content-type", b"Application/JSON; charset=utf-8"),))
    assert plain_predict(query=b"trace=1") is None
    assert plain_predict("/v1/endpoints/other/predict") is None
    assert plain_predict("/v1/endpoints/a/b/predict") is None
    assert plain_predict(headers=((b"content-type", b"application/x-protobuf"),)) is None
    assert plain_predict(headers=()) is None  # curl -d without a content-type: the routed path
    assert (
        plain_predict(
            headers=((b"content-type", b"application/json"), (b"accept", b"application/x-protobuf"))
        )
        is None
    )


def test_a_request_may_ask_for_some_outputs_only(fast_client: httpx.Client) -> None:
    for path in ("/v1/endpoints/toy/predict", "/v1/endpoints/toy/predict?trace=0"):
        rows = fast_client.post(path, json={"instances": [ROW, ROW], "outputs": ["label"]})
        assert rows.status_code == 200, rows.text
        assert rows.json()["predictions"] == [{"label": 1}, {"label": 1}]
        cols = fast_client.post(path, json={"inputs": {"x": [[1, 1, 1, 1]]}, "outputs": ["total", "label"]})
        assert cols.json()["outputs"] == {"total": [4.0], "label": [1]}
        bad = fast_client.post(path, json={"instances": [ROW], "outputs": ["label", "nope"]})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "nope"
        assert "unknown output 'nope'" in bad.json()["error"]["message"]
        empty = fast_client.post(path, json={"instances": [ROW], "outputs": []})
        assert (empty.status_code, empty.json()["error"]["field"]) == (422, "outputs")
