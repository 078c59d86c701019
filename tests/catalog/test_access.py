"""Who may read and act: loopback vs another host, the signed session, CSRF (catalog/access.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from modelrunner.catalog import access
from modelrunner.errors import Unauthenticated
from modelrunner.security.auth import Authenticator

TOKEN = "the-admin-token"


def auth(admin_token: str | None, registry: Any = None) -> Authenticator:
    return Authenticator(SimpleNamespace(admin_token=admin_token, token_cache_s=0.0), registry)


def request(
    host: str, cookies: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Request:
    """A request as uvicorn hands it to the app, from client ``host``."""
    raw: list[tuple[bytes, bytes]] = [(b"host", b"catalog.example:8080")]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/ui/",
        "headers": raw,
        "client": (host, 50000),
        "query_string": b"",
        "state": {},
    }
    return Request(scope)


def session_cookie(name: str, token: str | None) -> str:
    response = Response()
    access.sign_in(response, name, token or "", auth(token), local=True)
    header = response.headers["set-cookie"]
    value = header.split(";", 1)[0].split("=", 1)[1]
    return value.strip('"').replace("\\174", "|") if value.startswith('"') else value


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_reading_from_this_machine_needs_nothing(host: str) -> None:
    who = access.viewer(request(host), auth(TOKEN), "ops")
    assert who.can_read and not who.can_act and who.name is None  # a token is set: acting needs signing in
    assert access.viewer(request(host), auth(None), "ops").can_act  # no token: loopback-only, as /admin


def test_another_host_needs_a_session_signed_with_the_admin_token() -> None:
    assert not access.viewer(request("10.1.2.3"), auth(TOKEN), "ops").can_read
    good = session_cookie("alice", TOKEN)
    who = access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: good}), auth(TOKEN), "ops")
    assert who.can_read and who.can_act and who.actor == "ui:alice"
    forged = "mallory|" + good.rpartition("|")[2]  # alice's signature on another name
    admin = auth(TOKEN)
    assert not access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: forged}), admin, "ops").can_read
    other_key = session_cookie("alice", "another-token")
    assert not access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: other_key}), admin, "ops").can_read


def test_signing_in_checks_the_token_and_the_name() -> None:
    with pytest.raises(Unauthenticated, match="unknown or revoked token"):
        access.sign_in(Response(), "alice", "guess", auth(TOKEN), local=True)
    with pytest.raises(Unauthenticated, match="give your name"):
        access.sign_in(Response(), "   ", TOKEN, auth(TOKEN), local=True)


def test_without_an_admin_token_another_host_can_never_sign_in() -> None:
    with pytest.raises(Unauthenticated, match="only on 127.0.0.1"):
        access.sign_in(Response(), "mallory", "", auth(None), local=False)
    unsigned = session_cookie("mallory", None)  # what a loopback sign-in without a token sets
    local = access.viewer(request("127.0.0.1", {access.SESSION_COOKIE: unsigned}), auth(None), "ops")
    assert local.name == "mallory" and local.actor == "ui:mallory"
    remote = access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: unsigned}), auth(None), "ops")
    assert remote.name is None and not remote.can_read and not remote.can_act


def test_form_posts_need_the_csrf_cookie_value_and_the_same_origin() -> None:
    token = "t" * 43
    ok = request("127.0.0.1", {access.CSRF_COOKIE: token}, {"origin": "http://catalog.example:8080"})
    access.check_post(ok, token)
    for form_token in ("", "x" * 43):
        with pytest.raises(access.Forbidden, match="CSRF"):
            access.check_post(ok, form_token)
    with pytest.raises(access.Forbidden, match="CSRF"):
        access.check_post(request("127.0.0.1"), token)  # no cookie
    evil = request("127.0.0.1", {access.CSRF_COOKIE: token}, {"origin": "http://evil.example"})
    with pytest.raises(access.Forbidden, match="cross-site"):
        access.check_post(evil, token)


def test_registry_tokens_sign_in_with_their_role_and_revoking_ends_the_session(registry: Any) -> None:
    from modelrunner.registry import tokens

    viewer_value = tokens.create(registry, "reader", "viewer")[1]
    deployer_value = tokens.create(registry, "ops-bot", "deployer")[1]
    checker = auth(None, registry)

    def cookie(value: str) -> str:
        response = Response()
        access.sign_in(response, "alice", value, checker, local=False)
        raw = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
        return raw.strip('"').replace("\\174", "|") if raw.startswith('"') else raw

    reader = access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: cookie(viewer_value)}), checker, "ops")
    assert reader.can_read and not reader.can_act and reader.role == "viewer"
    ops = access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: cookie(deployer_value)}), checker, "ops")
    assert ops.can_act and ops.actor == "ui:alice (token:ops-bot)"
    assert not access.viewer(request("10.1.2.3"), checker, "ops").can_read
    kept = cookie(deployer_value)
    tokens.revoke(registry, "ops-bot")
    assert not access.viewer(request("10.1.2.3", {access.SESSION_COOKIE: kept}), checker, "ops").can_read
