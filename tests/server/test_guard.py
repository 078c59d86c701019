"""Cross-site and host checks (server/guard.py), over real HTTP: simple POSTs a web page can send, foreign
``Origin``, DNS rebinding (a foreign ``Host``), and what legitimate clients send still passing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelrunner.server.guard import allowed_hosts, split_host
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, Stack

DIGIT = {"instances": [{"input": [0.0] * 64}]}


def _port(stack: Stack) -> int:
    return int(stack.url.rsplit(":", 1)[1])


def _served(stack: Stack) -> bool:
    return "digits" in stack.runtime.endpoints


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/v2/repository/models/digits/unload", "text/plain"),
        ("/v2/repository/models/digits/load", "application/x-www-form-urlencoded"),
        ("/admin/endpoints/digits/rollback", "text/plain;charset=UTF-8"),
        ("/admin/endpoints/digits/rollback", "multipart/form-data; boundary=x"),
    ],
)
def test_a_simple_post_a_web_page_can_send_is_refused(open_stack: Stack, path: str, ctype: str) -> None:
    r = open_stack.anon.post(
        path, content=b'{"parameters": {"target": "digits@2"}}', headers={"content-type": ctype}
    )
    assert r.status_code == 415, r.text
    assert ctype.split(";")[0] in r.text and "application/json" in r.text
    assert open_stack.registry.endpoint("digits").target == "digits@production"
    assert _served(open_stack)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://localhost"])
def test_a_foreign_origin_is_refused_naming_it(open_stack: Stack, origin: str) -> None:
    r = open_stack.anon.post("/v2/repository/models/digits/unload", json={}, headers={"origin": origin})
    assert r.status_code == 403, r.text
    assert origin in r.json()["error"]
    r = open_stack.anon.request("DELETE", "/admin/endpoints/digits", headers={"origin": origin})
    assert r.status_code == 403 and origin in r.json()["error"]["message"]
    assert open_stack.registry.endpoint("digits").target == "digits@production"


def test_same_origin_no_origin_and_body_less_requests_pass(open_stack: Stack) -> None:
    same = {"origin": open_stack.url}
    r = open_stack.anon.post("/v2/repository/index", json={"ready": True}, headers=same)
    assert r.status_code == 200 and [m["name"] for m in r.json()] == ["digits"]
    r = open_stack.anon.post("/v2/repository/index")  # no content type at all: tritonclient sends none
    assert r.status_code == 200
    r = open_stack.anon.request("DELETE", "/admin/models/digits/aliases/nope")  # curl -X DELETE
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.2:{port}",
        "attacker",
        "[::2]:{port}",
        "localhost:notaport",
    ],
)
def test_a_foreign_host_is_refused_dns_rebinding(open_stack: Stack, host: str) -> None:
    host = host.format(port=_port(open_stack))
    for method, path in (
        ("GET", "/admin/endpoints"),
        ("GET", "/admin/audit"),
        ("GET", "/metrics"),
        ("POST", "/v2/repository/models/digits/unload"),
    ):
        body = {} if method == "POST" else None
        r = open_stack.anon.request(method, path, headers={"host": host}, json=body)
        assert r.status_code == 421, (method, path, r.text)
        assert repr(host) in r.text and "MODELRUNNER_ALLOWED_HOSTS" in r.text
    assert _served(open_stack)


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST", "127.0.0.1", "[::1]"]
)
def test_loopback_hosts_pass(open_stack: Stack, host: str) -> None:
    host = host.format(port=_port(open_stack))
    assert open_stack.anon.get("/admin/endpoints", headers={"host": host}).status_code == 200


def test_inference_is_not_host_checked(open_stack: Stack) -> None:
    """Predictions change nothing: the hot path answers them before any check, and the routed ones match."""
    foreign = {"host": "evil.example"}
    r = open_stack.anon.post("/v1/endpoints/digits/predict", json=DIGIT, headers=foreign)
    assert r.status_code == 200, r.text
    r = open_stack.anon.post("/v1/endpoints/digits/predict?trace=1", json=DIGIT, headers=foreign)
    assert r.status_code == 200, r.text
    v2 = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64}]}
    assert open_stack.anon.post("/v2/models/digits/infer", json=v2, headers=foreign).status_code == 200


def test_a_token_lifts_the_content_type_check(tmp_path: Path) -> None:
    """With Authorization (which a page cannot add without a preflight) the auth check decides."""
    from modelrunner.server.app import create_app
    from support.server_helpers import StaticRuntime

    settings = Settings(home=tmp_path, admin_token="tok")
    with (
        ServerThread(create_app(StaticRuntime({}), settings)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        plain = {"content-type": "text/plain"}
        r = http.post("/admin/endpoints/x/rollback", content=b"{}", headers=plain)
        assert r.status_code == 415
        token = {**plain, "authorization": "Bearer no"}
        r = http.post("/admin/endpoints/x/rollback", content=b"{}", headers=token)
        assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    ("bind", "extra", "host", "status"),
    [
        ("0.0.0.0", [], "anything.example", 200),
        ("0.0.0.0", ["api.example"], "api.example:443", 200),
        ("0.0.0.0", ["api.example"], "127.0.0.1", 200),
        ("0.0.0.0", ["api.example"], "evil.example", 421),
        ("127.0.0.1", ["mybox"], "mybox:8080", 200),
        ("127.0.0.1", ["*"], "evil.example", 200),
        ("[::1]", [], "evil.example", 421),
    ],
)
def test_host_check_follows_the_bind_address_and_allowed_hosts(
    tmp_path: Path, bind: str, extra: list[str], host: str, status: int
) -> None:
    from modelrunner.server.app import create_app
    from support.server_helpers import StaticRuntime

    settings = Settings(home=tmp_path, allowed_hosts=extra)
    with ServerThread(create_app(StaticRuntime({}), settings, bind_host=bind)) as server:
        assert httpx.get(f"{server.url}/v1/endpoints", headers={"host": host}).status_code == status


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("LocalHost", ("localhost", None)),
        ("[::1]", ("::1", None)),
        ("[::1]:80", ("::1", 80)),
        ("[::1", None),
        ("[::1]x", None),
        ("a:99999", None),
        (":80", None),
        ("host:", None),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


def test_allowed_hosts_normalises_names() -> None:
    loopback = frozenset({"127.0.0.1", "localhost", "::1"})
    assert allowed_hosts("::1", []) == allowed_hosts("[::1]", []) == loopback
    assert allowed_hosts("0.0.0.0", []) is None
    assert allowed_hosts("0.0.0.0", ["API.example"]) == frozenset(
        {"127.0.0.1", "localhost", "::1", "api.example"}
    )
