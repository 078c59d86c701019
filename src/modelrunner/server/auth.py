"""The protocol hooks of the access rules in ``security/auth.py`` (docs/security.md): one check for REST
(native, V2, ``/admin``, the V2 repository API) and gRPC.

- :class:`AuthGate`: ASGI middleware of the routed app, every HTTP request checked by ``required_role``.
- :func:`grpc_interceptor`: the same for gRPC calls (``grpc_role``).
- :func:`require_admin`: the ``/admin`` routers' dependency, a fallback when an app runs without the gate.
- :func:`actor_of`: the audit actor of a request (its token's name).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from modelrunner.errors import ModelrunnerError
from modelrunner.security.auth import (
    LEGACY_NAME,
    Authenticator,
    Principal,
    grpc_role,
    required_role,
)

__all__ = [
    "LEGACY_NAME",
    "AuthGate",
    "Authenticator",
    "Principal",
    "actor_of",
    "authenticator",
    "grpc_interceptor",
    "grpc_role",
    "require_admin",
    "required_role",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="A modelrunner token (`modelrunner token create`) or the "
    "server's admin token (MODELRUNNER_ADMIN_TOKEN).",
)
PRINCIPAL_KEY = "modelrunner.principal"


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
            needed = required_role(
                scope["method"], scope["path"], predict_auth=settings.require_auth_for_predict
            )
            if needed is not None:
                header = next(
                    (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
                )
                checker = authenticator(self.state)
                try:
                    scope[PRINCIPAL_KEY] = checker.cached(header, needed) or await run_in_threadpool(
                        checker.authorize, header, needed
                    )
                except ModelrunnerError as exc:
                    from modelrunner.server import wire

                    status, body, headers = wire.modelrunner_error(scope["path"], exc)
                    await wire.send_json(send, status, body, headers)
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
        authenticator(request.app.state).authorize, header, needed
    )


def grpc_interceptor(settings: Any, registry: Any | None) -> Any:
    """The gRPC hook: a ``grpc.aio`` interceptor checking :func:`grpc_role` like :class:`AuthGate`."""
    import asyncio

    import grpc

    from modelrunner.server.grpc.errors import abort_with

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
