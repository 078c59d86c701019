"""Who may call what: the one place deciding it for REST (native, V2, ``/admin``), gRPC, the catalog and the
CLI through the server (docs/security.md).

- :func:`required_role` maps a request (method, path) to the role it needs, or None (open).
- :class:`Authenticator` turns an ``Authorization: Bearer`` value into a :class:`Principal` (a registry token,
  ``registry/tokens.py``, or the server's ``MODELRUNNER_ADMIN_TOKEN``, an admin) and checks the role: 401
  (:class:`Unauthenticated`) without or with a bad token, 403 (:class:`PermissionDenied`) naming the role
  missing. Without any token configured (no admin token, no registry token) everything but predict-with-
  ``--require-auth-for-predict`` stays open, as before: the server then only listens on loopback
  (``runner.workers.check_exposure``).
- Hooks: :class:`AuthGate` (ASGI middleware of the routed app), :class:`GrpcAuth` (a gRPC interceptor);
  the catalog signs visitors in through :meth:`Authenticator.identify`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from modelrunner.errors import ModelrunnerError, PermissionDenied, Unauthenticated
from modelrunner.registry import tokens

_bearer = HTTPBearer(auto_error=False, description="A modelrunner token (`modelrunner token create`) or the "
                                                   "server's admin token (MODELRUNNER_ADMIN_TOKEN).")
PRINCIPAL_KEY = "modelrunner.principal"
LEGACY_NAME = "admin-token"
ADMIN_ONLY = ("/admin/tokens", "/admin/trust", "/admin/gates", "/admin/federation/import")
DEPLOYER_GET = ("/admin/federation/export",)
GRPC_PREDICT = ("/inference.GRPCInferenceService/ModelInfer",)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's name and role."""

    name: str
    role: str
    legacy: bool = False  # the server's MODELRUNNER_ADMIN_TOKEN

    @property
    def actor(self) -> str:
        return self.name if self.legacy else f"token:{self.name}"

    def grants(self, needed: str) -> bool:
        return needed in tokens.GRANTS.get(self.role, frozenset())


def required_role(method: str, path: str, *, predict_auth: bool) -> str | None:
    """The role a request needs (None: open). The table of docs/security.md."""
    if method == "POST" and ((path.startswith("/v1/endpoints/") and path.endswith("/predict"))
                             or (path.startswith("/v2/models/") and path.endswith("/infer"))):
        return "predictor" if predict_auth else None
    if path.startswith("/v2/repository/"):  # the index is served-model metadata, open like /v2/models
        return None if path.endswith("/index") else "deployer"
    if path != "/admin" and not path.startswith("/admin/"):
        return None
    if path.startswith(ADMIN_ONLY) or method == "DELETE":
        return "admin"
    if path.startswith(DEPLOYER_GET):
        return "deployer"
    return "viewer" if method in ("GET", "HEAD") else "deployer"


def grpc_role(method: str, *, predict_auth: bool) -> str | None:
    """The role a gRPC call needs: inference (V2 ModelInfer, a contract service's Predict) is predictor."""
    if not predict_auth:
        return None
    if method in GRPC_PREDICT or method.endswith("/Predict"):
        return "predictor"
    return None


class Authenticator:
    """Checks bearer tokens against the registry and ``settings.admin_token`` (one per process).

    A verified token is remembered (by a SHA-256 of its value, never the value) for
    ``settings.token_cache_s`` so a predict does not run the KDF each time; a revocation or expiry takes
    effect within that time on every server (0: checked at every request).
    """

    def __init__(self, settings: Any, registry: Any | None) -> None:
        self.settings = settings
        self.registry = registry
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    def enabled(self) -> bool:
        """Whether any token is configured: the admin token, or a token in the registry."""
        if self.settings.admin_token:
            return True
        return self.registry is not None and tokens.count(self.registry) > 0

    def identify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header value; Unauthenticated without a valid token."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise Unauthenticated("this call needs 'Authorization: Bearer <token>' "
                                  "(`modelrunner token create`)")
        key = hashlib.sha256(value.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.settings.token_cache_s:
            return hit[1]
        principal = self._verify(value)
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal

    def _verify(self, value: str) -> Principal:
        expected = self.settings.admin_token
        if expected and hmac.compare_digest(value.encode(), expected.encode()):
            return Principal(LEGACY_NAME, "admin", legacy=True)
        if self.registry is None or not value.startswith(tokens.PREFIX + "_"):
            raise Unauthenticated("unknown or revoked token")
        info = tokens.verify(self.registry, value)
        return Principal(info.name, info.role)

    def cached(self, authorization: str | None, needed: str) -> Principal | None:
        """The principal of a recently verified token that grants ``needed``, without touching the registry
        (the hot path of a predict behind tokens); None: call :meth:`authorize`."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        with self._lock:
            hit = self._cache.get(hashlib.sha256(value.strip().encode()).digest())
        if hit is None or time.monotonic() - hit[0] >= self.settings.token_cache_s:
            return None
        return hit[1] if hit[1].grants(needed) else None

    def authorize(self, authorization: str | None, needed: str | None) -> Principal | None:
        """The principal allowed ``needed``; None when the call is open. Raises 401/403 errors."""
        if needed is None:
            return None
        if needed != "predictor" and not self.enabled():
            return None  # no token configured: loopback-only, open as before
        principal = self.identify(authorization)
        if not principal.grants(needed):
            raise PermissionDenied(f"token {principal.name!r} (role {principal.role}) lacks the role "
                                   f"{needed!r} this call needs", role=needed)
        return principal


def authenticator(app_state: Any) -> Authenticator:
    """The app's authenticator, made on first use (settings + the runtime's registry)."""
    found = getattr(app_state, "authenticator", None)
    if found is None:
        found = Authenticator(app_state.settings, getattr(app_state.runtime, "registry", None))
        app_state.authenticator = found
    return found


def actor_of(request: Request) -> str | None:
    """The audit actor of a request: its token's name, else the client's ``X-Modelrunner-Actor``."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if principal is not None and not principal.legacy:
        return str(principal.actor)
    return request.headers.get("x-modelrunner-actor") or None


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class AuthGate:
    """ASGI middleware: every HTTP request checked by :func:`required_role` + :class:`Authenticator`."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            settings = self.state.settings
            needed = required_role(scope["method"], scope["path"],
                                   predict_auth=settings.require_auth_for_predict)
            if needed is not None:
                header = next((v.decode("latin-1") for k, v in scope["headers"]
                               if k == b"authorization"), None)
                checker = authenticator(self.state)
                try:
                    scope[PRINCIPAL_KEY] = checker.cached(header, needed) or await run_in_threadpool(
                        checker.authorize, header, needed)
                except ModelrunnerError as exc:
                    from modelrunner.server import plain, wire

                    status, body, headers = wire.modelrunner_error(scope["path"], exc)
                    await plain.send_json(send, status, body, headers)
                    return
            scope["modelrunner.auth_checked"] = True
        await self.app(scope, receive, send)


async def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """Dependency of the ``/admin`` and repository routes: checked by :class:`AuthGate` already; checked
    here when the app runs without it."""
    if request.scope.get("modelrunner.auth_checked"):
        return
    header = f"Bearer {credentials.credentials}" if credentials is not None else None
    needed = required_role(request.method, request.url.path, predict_auth=False) or "admin"
    request.scope[PRINCIPAL_KEY] = await run_in_threadpool(
        authenticator(request.app.state).authorize, header, needed)


def check_token(expected: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Pass when no token is configured, or the bearer token matches (constant-time compare)."""
    if not expected:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthenticated("wrong admin token")


def grpc_interceptor(settings: Any, registry: Any | None) -> Any:
    """The gRPC hook: a ``grpc.aio`` interceptor checking :func:`grpc_role` like :class:`AuthGate`."""
    import asyncio

    import grpc

    from modelrunner.server.grpc_errors import abort_with

    auth = Authenticator(settings, registry)

    def refusal(exc: ModelrunnerError) -> Any:
        async def deny(_request: Any, context: Any) -> Any:
            await abort_with(context, exc)

        return grpc.unary_unary_rpc_method_handler(deny)

    class GrpcAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            needed = grpc_role(details.method, predict_auth=settings.require_auth_for_predict)
            if needed is not None:
                header = dict(details.invocation_metadata or ()).get("authorization")
                try:
                    if auth.cached(header, needed) is None:
                        await asyncio.to_thread(auth.authorize, header, needed)
                except ModelrunnerError as exc:
                    return refusal(exc)
            return await continuation(details)

    return GrpcAuth()
