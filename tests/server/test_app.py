"""The composition root over real HTTP: lifespan, /healthz, /readyz, /metrics, error shapes, OpenAPI."""

from __future__ import annotations

import re

import httpx

from modelrunner.runner.endpoint import Endpoint
from modelrunner.server.app import create_app
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, StaticRuntime, SumPredictor, toy_deployment


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_lifespan_starts_and_stops_the_runtime_and_readyz_follows_loading() -> None:
    ep = Endpoint("late")
    runtime = StaticRuntime({"late": ep})
    with ServerThread(create_app(runtime, Settings())) as server:
        assert runtime.started
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503 and r.json()["waiting_for"] == ["late"]
        ep.current = toy_deployment("late", SumPredictor())
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    assert runtime.stopped


def test_metrics_count_requests_errors_and_latency_per_endpoint_and_version(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    row = {"x": [1, 2, 3, 4]}
    for _ in range(3):
        assert client.post("/v1/endpoints/toy/predict", json={"instances": [row]}).status_code == 200
    assert (
        client.post(
            "/v2/models/toy/infer",
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
        ).status_code
        == 200
    )
    assert client.post("/v1/endpoints/toy/predict", json={"instances": [{"x": [1]}]}).status_code == 422
    assert client.post("/v1/endpoints/empty/predict", json={"instances": [row]}).status_code == 503
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert delta("modelrunner_requests_total", endpoint="toy", version="3", protocol="rest") == 3
    assert delta("modelrunner_requests_total", endpoint="toy", version="3", protocol="v2") == 1
    errors = "modelrunner_request_errors_total"
    assert delta(errors, endpoint="toy", version="3", code="invalid_argument") == 1
    assert delta(errors, endpoint="empty", code="unavailable") == 1
    assert delta("modelrunner_request_duration_seconds_count", endpoint="toy", version="3") == 4
    assert 'modelrunner_requests_in_flight{endpoint="toy"} 0.0' in after
    assert not re.search(r"_created\{", after)


def test_unknown_route_and_method_use_the_error_shape(client: httpx.Client) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/v1/endpoints/toy/predict")
    assert r.status_code == 405 and "error" in r.json()


def test_openapi_lists_every_surface(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/endpoints",
        "/v1/endpoints/{name}/contract",
        "/v1/endpoints/{name}/contract.proto",
        "/v2",
        "/v2/health/live",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/infer",
        "/admin/endpoints/{name}",
    ):
        assert path in paths, path
