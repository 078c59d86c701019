"""Roles against each protected route (REST, V2, admin, repository, tokens, gRPC): 2xx or 403 naming it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from modelrunner.registry.tokens import GRANTS
from modelrunner.server import auth
from support.auth_helpers import ROLES, AuthStack, auth_stack

ROW = [0.0] * 64
CASES = [  # (method, path, json body, role needed)
    ("POST", "/v1/endpoints/digits/predict", {"instances": [ROW]}, "predictor"),
    (
        "POST",
        "/v2/models/digits/infer",
        {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 64], "data": ROW}]},
        "predictor",
    ),
    ("GET", "/admin/endpoints", None, "viewer"),
    ("GET", "/admin/models/digits", None, "viewer"),
    ("PUT", "/admin/endpoints/digits", {"target": "digits@production"}, "deployer"),
    ("PATCH", "/admin/endpoints/digits/config", {"max_batch_size": 0}, "deployer"),
    ("PUT", "/admin/models/digits/aliases/staging", {"version": 2}, "deployer"),
    ("POST", "/v2/repository/models/second/load", {"parameters": {"target": "digits@2"}}, "deployer"),
    ("GET", "/admin/tokens", None, "admin"),
    ("GET", "/admin/trust", None, "admin"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    with auth_stack(tmp_path_factory.mktemp("auth")) as s:
        yield s


def _call(stack: AuthStack, method: str, path: str, body: object, who: str | None) -> httpx.Response:
    return httpx.request(method, stack.url + path, json=body, headers=stack.headers(who), timeout=30)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_route(stack: AuthStack, role: str) -> None:
    for method, path, body, needed in CASES:
        answer = _call(stack, method, path, body, role)
        if needed in GRANTS[role]:
            assert 200 <= answer.status_code < 300, (method, path, role, answer.text)
        else:
            assert answer.status_code == 403, (method, path, role, answer.text)
            assert repr(needed) in answer.text and f"{role}-bot" in answer.text


def test_no_token_and_bad_tokens_are_401(stack: AuthStack) -> None:
    for method, path, body, _needed in CASES:
        assert _call(stack, method, path, body, None).status_code == 401, path
    bad = {"authorization": "Bearer mrt_00000000_nope"}
    answer = httpx.get(stack.url + "/admin/endpoints", headers=bad)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    wrong_secret = stack.tokens["admin"][:-4] + "AAAA"
    answer = httpx.get(stack.url + "/admin/endpoints", headers={"authorization": f"Bearer {wrong_secret}"})
    assert answer.status_code == 401


def test_expired_and_revoked_tokens_are_refused(stack: AuthStack) -> None:
    from modelrunner.registry import tokens

    answer = _call(stack, "GET", "/admin/endpoints", None, "expired")
    assert answer.status_code == 401 and "expired" in answer.text
    value = tokens.create(stack.registry, "short-lived", "viewer")[1]
    headers = {"authorization": f"Bearer {value}"}
    assert httpx.get(stack.url + "/admin/endpoints", headers=headers).status_code == 200
    tokens.revoke(stack.registry, "short-lived")
    answer = httpx.get(stack.url + "/admin/endpoints", headers=headers)
    assert answer.status_code == 401 and "revoked" in answer.text


def test_audit_names_the_token_and_nothing_logs_a_token(
    stack: AuthStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = _call(stack, "PUT", "/admin/models/digits/aliases/candidate", {"version": 1}, "deployer")
    assert answer.status_code == 200
    _call(stack, "GET", "/admin/tokens", None, "viewer")  # a refusal, logged or not
    _call(stack, "GET", "/admin/tokens", None, "expired")
    entry = stack.registry.audit(limit=5, action="alias.set")[0]
    assert entry.actor == "token:deployer-bot"
    dumped = json.dumps([e.__dict__ for e in stack.registry.audit(limit=1000)], default=str)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in stack.tokens.values():
        secret = value.split("_", 2)[2]
        assert secret not in dumped and secret not in logged


def test_grpc_infer_needs_the_predictor_role(stack: AuthStack) -> None:
    with grpc.insecure_channel(stack.grpc) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        live = channel.unary_unary("/inference.GRPCInferenceService/ServerLive")
        live(b"", timeout=30)  # health stays open
        for who, expected in (
            (None, grpc.StatusCode.UNAUTHENTICATED),
            ("viewer", grpc.StatusCode.PERMISSION_DENIED),
        ):
            metadata = [("authorization", f"Bearer {stack.tokens[who]}")] if who else []
            with pytest.raises(grpc.RpcError) as refused:
                infer(b"", metadata=metadata, timeout=30)
            assert refused.value.code() == expected
        for who in ("predictor", "deployer", "admin"):
            try:
                infer(b"", metadata=[("authorization", f"Bearer {stack.tokens[who]}")], timeout=30)
            except grpc.RpcError as exc:  # an empty request: the handler's own answer, past the auth check
                assert exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_comparisons_are_constant_time() -> None:
    """The token checks compare with hmac.compare_digest (timings are not asserted)."""
    import inspect

    from modelrunner.registry import tokens

    assert "hmac.compare_digest" in inspect.getsource(tokens.verify)
    assert "hmac.compare_digest" in inspect.getsource(auth.Authenticator._verify)


def test_role_table() -> None:
    assert auth.required_role("GET", "/healthz", predict_auth=True) is None
    assert auth.required_role("POST", "/v1/endpoints/x/predict", predict_auth=False) is None
    assert auth.required_role("DELETE", "/admin/endpoints/x", predict_auth=False) == "admin"
    assert auth.required_role("POST", "/v2/repository/models/x/load", predict_auth=False) == "deployer"


def test_without_tokens_the_loopback_server_stays_open(tmp_path: Path) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    with Registry(Settings(home=tmp_path)) as registry:
        authenticator = auth.Authenticator(registry.settings, registry)
        assert not authenticator.enabled()
        assert authenticator.authorize(None, "admin") is None
        from modelrunner.errors import Unauthenticated

        with pytest.raises(Unauthenticated):
            authenticator.authorize(None, "predictor")  # --require-auth-for-predict always needs one


def test_a_verified_token_is_remembered_for_token_cache_s(tmp_path: Path) -> None:
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    with Registry(Settings(home=tmp_path, token_cache_s=60)) as registry:
        value = tokens.create(registry, "app", "predictor")[1]
        checker = auth.Authenticator(registry.settings, registry)
        header = f"Bearer {value}"
        assert checker.cached(header, "predictor") is None  # never verified yet
        assert checker.authorize(header, "predictor") == auth.Principal("app", "predictor")
        assert checker.cached(header, "predictor") == auth.Principal("app", "predictor")
        assert checker.cached(header, "deployer") is None  # not granted: authorize answers the 403
        tokens.revoke(registry, "app")
        assert checker.cached(header, "predictor") is not None  # within token_cache_s, as documented
        fresh = auth.Authenticator(registry.settings.model_copy(update={"token_cache_s": 0}), registry)
        from modelrunner.errors import Unauthenticated

        with pytest.raises(Unauthenticated, match="revoked"):
            fresh.authorize(header, "predictor")
