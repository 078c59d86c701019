"""Management API over real HTTP on the full stack: real registry, real sklearn bundles, the real Runtime."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from support.server_helpers import ADMIN_TOKEN, Stack

DIGIT = {"input": [0.0] * 64}


def _serve(stack: Stack, target: str, *, force: bool = False) -> dict[str, Any]:
    r = stack.admin.put(
        "/admin/endpoints/digits", json={"target": target, "force": force, "wait": True, "timeout_s": 20}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _version_answering(stack: Stack, row: dict[str, Any] = DIGIT) -> int:
    r = stack.anon.post("/v1/endpoints/digits/predict", json={"instances": [row]})
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def test_admin_needs_the_token_and_changes_nothing_without_it(stack: Stack) -> None:
    before = stack.registry.endpoint("digits")
    assert stack.anon.get("/admin/endpoints").status_code == 401
    r = stack.anon.put("/admin/endpoints/digits", json={"target": "digits@2"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"
    r = stack.anon.put(
        "/admin/endpoints/digits", json={"target": "digits@2"}, headers={"authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
    r = stack.anon.get("/admin/workers", headers={"authorization": f"Basic {ADMIN_TOKEN}"})
    assert r.status_code == 401
    assert stack.registry.endpoint("digits").generation == before.generation
    # the data plane stays open
    assert stack.anon.get("/healthz").status_code == 200


def test_predict_on_a_real_sklearn_bundle(stack: Stack) -> None:
    _serve(stack, "digits@production")
    r = stack.anon.post("/v1/endpoints/digits/predict", json={"instances": [DIGIT, DIGIT]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "digits" and body["version"] == 1
    assert len(body["predictions"]) == 2
    assert isinstance(body["predictions"][0]["label"], int)
    assert np.isclose(sum(body["predictions"][0]["proba"]), 1.0)


def test_list_and_get_endpoints_show_workers(stack: Stack) -> None:
    _serve(stack, "digits@1")
    listing = stack.admin.get("/admin/endpoints").json()
    digits = next(e for e in listing if e["name"] == "digits")
    assert digits["target"] == "digits@1" and digits["generation"] >= 1
    one = stack.admin.get("/admin/endpoints/digits").json()
    assert one["name"] == "digits"
    worker = one["workers"][0]
    assert worker["version"] == 1 and worker["state"] == "serving" and worker["pid"] > 0
    assert stack.admin.get("/admin/endpoints/nope").status_code == 404


def test_swap_with_wait_reports_every_worker(stack: Stack) -> None:
    _serve(stack, "digits@1")
    body = _serve(stack, "digits@2")
    assert body["outcome"] == "switched" and body["waited"] is True
    assert body["endpoint"]["target"] == "digits@2"
    assert body["endpoint"]["previous_target"] == "digits@1"
    assert [w["version"] for w in body["workers"]] == [2]
    assert body["workers"][0]["pid"] > 0 and body["workers"][0]["load_ms"] is not None
    assert _version_answering(stack) == 2


def test_incompatible_swap_is_refused_with_409_and_old_version_keeps_serving(stack: Stack) -> None:
    _serve(stack, "digits@2")
    r = stack.admin.put("/admin/endpoints/digits", json={"target": "digits@3", "wait": True, "timeout_s": 20})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["outcome"] == "refused" and "refused" in body["message"]
    assert body["workers"][0]["state"] == "failed" and body["workers"][0]["error"]
    assert _version_answering(stack) == 2


def test_rollback_serves_the_previous_target(stack: Stack) -> None:
    _serve(stack, "digits@1")
    _serve(stack, "digits@2")
    r = stack.admin.post("/admin/endpoints/digits/rollback", json={"wait": True, "timeout_s": 20})
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"]["target"] == "digits@1"
    assert _version_answering(stack) == 1


def test_forced_swap_changes_the_contract(stack: Stack) -> None:
    body = _serve(stack, "digits@3", force=True)
    assert body["workers"][0]["version"] == 3
    contract = stack.anon.get("/v1/endpoints/digits/contract").json()
    assert contract["version"] == 3 and contract["contract_version"] == 2  # the breaking push bumped it
    assert contract["contract"]["inputs"][0]["shape"] == [4]
    old = stack.anon.get("/v1/endpoints/digits/contract", params={"version": 1}).json()
    assert old["contract_version"] == 1 and old["contract"]["inputs"][0]["shape"] == [64]
    by_model = stack.anon.get("/v1/endpoints/digits/contract", params={"model_version": 2}).json()
    assert by_model["contract"]["inputs"][0]["shape"] == [64]
    r = stack.anon.get("/v1/endpoints/digits/contract", params={"version": 9})
    assert r.status_code == 404 and "contract version" in r.json()["error"]["message"]
    assert _version_answering(stack, {"input": [5.1, 3.5, 1.4, 0.2]}) == 3
    _serve(stack, "digits@1", force=True)


def test_timeout_is_504_when_a_live_worker_never_takes_the_swap(stack: Stack) -> None:
    from modelrunner.registry.types import WorkerStatus

    _serve(stack, "digits@1")
    # a second (stuck) worker of the fleet: alive, but never reports the new generation
    stack.registry.report_worker(
        WorkerStatus(
            runner_id="stuck:1",
            endpoint="digits",
            state="serving",
            model="digits",
            version=1,
            generation=0,
            pid=1,
        )
    )
    try:
        r = stack.admin.put(
            "/admin/endpoints/digits", json={"target": "digits@2", "wait": True, "timeout_s": 0.5}
        )
        assert r.status_code == 504, r.text
        assert r.json()["outcome"] == "timeout" and "stuck:1" in r.json()["message"]
    finally:
        stack.registry.remove_worker("stuck:1")
    assert _version_answering(stack) == 2  # the live worker switched anyway


def test_put_without_wait_returns_at_once(stack: Stack) -> None:
    r = stack.admin.put("/admin/endpoints/digits", json={"target": "digits@1"})
    assert r.status_code == 200
    assert r.json()["outcome"] == "pending" and r.json()["waited"] is False
    _serve(stack, "digits@1")


def test_bad_admin_requests(stack: Stack) -> None:
    r = stack.admin.put("/admin/endpoints/digits", json={"target": "nope@1"})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = stack.admin.put("/admin/endpoints/digits", json={"target": "digits@1", "bogus": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "bogus"
    r = stack.admin.put("/admin/endpoints/digits", json={"force": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "target"
    r = stack.admin.put("/admin/endpoints/digits", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)


def test_put_with_create_false_refuses_an_unknown_endpoint(stack: Stack) -> None:
    before = stack.registry.state_generation()
    r = stack.admin.put("/admin/endpoints/digitz", params={"create": "false"}, json={"target": "digits@2"})
    assert r.status_code == 404, r.text
    message = r.json()["error"]["message"]
    assert "digitz" in message and "digits" in message  # names the endpoints that do exist
    assert stack.admin.get("/admin/endpoints/digitz").status_code == 404
    assert stack.registry.state_generation() == before  # nothing written
    r = stack.admin.put(
        "/admin/endpoints/digits",
        params={"create": "false"},
        json={"target": "digits@2", "wait": True, "timeout_s": 20},
    )
    assert r.status_code == 200 and r.json()["outcome"] == "switched", r.text


def test_targets_that_do_not_resolve_are_refused_and_never_stored(stack: Stack) -> None:
    _serve(stack, "digits@1")
    before = stack.registry.state_generation()
    for target, status, named in [
        ("pipeline:digits-ocr@prodution", 404, "'digits-ocr'"),
        ("pipeline:digits@prodution", 404, "'prodution'"),
        ("pipeline:digits@1", 400, "digits@1 is a sklearn model, not a pipeline"),
        ("pipe:digits@1", 400, "unknown kind 'pipe:'"),
    ]:
        r = stack.admin.put("/admin/endpoints/typo", json={"target": target, "wait": True, "timeout_s": 5})
        assert (r.status_code, named in r.json()["error"]["message"]) == (status, True), (target, r.text)
    assert stack.admin.get("/admin/endpoints/typo").status_code == 404
    assert stack.registry.state_generation() == before, "nothing was written"
    ready = stack.anon.get("/readyz").json()
    assert ready["status"] == "ready" and "not_serving" not in ready and ready["registry"]["connected"]


def test_create_and_delete_an_endpoint(stack: Stack) -> None:
    r = stack.admin.put("/admin/endpoints/other", json={"target": "digits@2", "wait": True, "timeout_s": 20})
    assert r.status_code == 200, r.text
    r = stack.anon.post("/v1/endpoints/other/predict", json={"instances": [DIGIT]})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = stack.admin.post("/admin/endpoints/other/rollback", json={"wait": True})
    assert r.status_code == 400 and "previous target" in r.json()["error"]["message"]
    assert stack.admin.delete("/admin/endpoints/other").status_code == 204
    assert stack.admin.get("/admin/endpoints/other").status_code == 404
    assert stack.admin.delete("/admin/endpoints/other").status_code == 404


def test_workers(stack: Stack) -> None:
    rows = stack.admin.get("/admin/workers", params={"endpoint": "digits", "alive_within_s": 30}).json()
    assert rows and all(r["endpoint"] == "digits" for r in rows)
    assert {"runner_id", "pid", "host", "state", "version", "heartbeat"} <= set(rows[0])
    serving = [r for r in rows if r["state"] == "serving"]
    assert serving and all(r["load_ms"] is not None and r["warmup_ms"] is not None for r in serving)


def test_models_aliases_and_audit(stack: Stack) -> None:
    models = stack.admin.get("/admin/models").json()
    digits = next(m for m in models if m["name"] == "digits")
    assert digits["version_count"] == 3 and digits["aliases"]["production"] == 1
    info = stack.admin.get("/admin/models/digits").json()
    assert [v["version"] for v in info["versions"]] == [1, 2, 3]
    assert info["versions"][0]["contract"]["inputs"][0]["name"] == "input"
    r = stack.admin.put(
        "/admin/models/digits/aliases/staging", json={"version": 2}, headers={"x-modelrunner-actor": "alice"}
    )
    assert r.status_code == 200 and r.json() == {"model": "digits", "alias": "staging", "version": 2}
    assert stack.admin.get("/admin/models/digits").json()["aliases"]["staging"] == 2
    assert stack.admin.put("/admin/models/digits/aliases/staging", json={"version": 9}).status_code == 404
    assert stack.admin.delete("/admin/models/digits/aliases/staging").status_code == 204
    assert stack.admin.get("/admin/models/nope").status_code == 404
    audit = stack.admin.get("/admin/audit", params={"limit": 50}).json()
    assert any(a["actor"] == "alice" for a in audit)
    assert any(a["action"] == "endpoint.set" for a in audit)


def test_openapi_documents_the_admin_api(stack: Stack) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/admin/endpoints",
        "/admin/endpoints/{name}",
        "/admin/endpoints/{name}/rollback",
        "/admin/workers",
        "/admin/models",
        "/admin/models/{name}",
        "/admin/models/{name}/aliases/{alias}",
        "/admin/audit",
    ):
        assert path in paths, path
    assert "put" in paths["/admin/endpoints/{name}"] and "delete" in paths["/admin/endpoints/{name}"]
    assert "EndpointPut" in spec["components"]["schemas"]
    assert any("HTTPBearer" in s for s in spec["components"]["securitySchemes"])
    assert "/v1/endpoints/{name}/predict" in paths and "/v2/models/{name}/infer" in paths


def test_alias_move_to_production_enforces_saved_gates(stack: Stack) -> None:
    stack.registry.set_gates("digits", ["accuracy>=0.99"])
    try:
        url = "/admin/models/digits/aliases/production"
        refused = stack.admin.put(url, json={"version": 1})
        assert refused.status_code == 409
        assert "accuracy>=0.99" in refused.json()["error"]["message"]
        forced = stack.admin.put(url, json={"version": 1, "force": True})
        assert forced.status_code == 200 and forced.json()["version"] == 1
        actions = [a["action"] for a in stack.admin.get("/admin/audit", params={"limit": 20}).json()]
        assert "gates.override" in actions
    finally:
        stack.registry.set_gates("digits", [])


def test_models_are_listed_in_pages(stack: Stack, tmp_path: Any) -> None:
    from support.registry_helpers import write_bundle

    for name in ("page-a", "page-b", "page-c"):
        stack.registry.push(write_bundle(tmp_path / name, name=name, payload=name.encode()))
    everything = sorted(m.name for m in stack.registry.models())
    r = stack.admin.get("/admin/models", params={"limit": 2})
    assert r.status_code == 200 and len(r.json()) == 2
    assert r.headers["x-total-count"] == str(len(everything))
    names, url = [m["name"] for m in r.json()], r.headers.get("link")
    while url:  # follow rel="next" to the end
        path = url.split(";")[0].strip("<>")
        r = stack.admin.get(path)
        names += [m["name"] for m in r.json()]
        url = r.headers.get("link")
    assert names == everything
    assert len(stack.admin.get("/admin/models").json()) == len(everything)  # default page: 100
    for bad in (0, 1001):
        r = stack.admin.get("/admin/models", params={"limit": bad})
        assert r.status_code in (400, 422) and "limit" in r.text


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/admin/workers?alive_within_s=1e20", "alive_within_s"),
        ("/admin/endpoints?alive_within_s=inf", "alive_within_s"),
        ("/admin/endpoints/digits?alive_within_s=1e300", "alive_within_s"),
        ("/admin/audit?limit=99999999999999999999", "limit"),
        ("/admin/models?offset=9223372036854775808", "offset"),  # past int64: was a 500 from SQLite
    ],
)
def test_out_of_range_numbers_are_422_naming_the_parameter(stack: Stack, path: str, param: str) -> None:
    r = stack.admin.get(path)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == param and param in r.json()["error"]["message"]
