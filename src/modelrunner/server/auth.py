"""Bearer-token auth for the management API (``/admin``) when ``settings.admin_token`` is set."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelrunner import admin_token

_bearer = HTTPBearer(auto_error=False, description="The server's admin token (MODELRUNNER_ADMIN_TOKEN).")


def check_token(expected: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Pass when no token is configured, or the bearer token matches (:mod:`modelrunner.admin_token`)."""
    if credentials is None:
        admin_token.check_token(expected, None, None)
    else:
        admin_token.check_token(expected, credentials.scheme, credentials.credentials)


async def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """FastAPI dependency guarding every ``/admin`` route."""
    check_token(request.app.state.settings.admin_token, credentials)
