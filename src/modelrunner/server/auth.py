"""Bearer-token auth for the management API (``/admin``) when ``settings.admin_token`` is set."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelrunner.errors import Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="The server's admin token (MODELRUNNER_ADMIN_TOKEN).")


def check_token(expected: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Pass when no token is configured, or the bearer token matches (constant-time compare)."""
    if not expected:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthenticated("wrong admin token")


async def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """FastAPI dependency guarding every ``/admin`` route."""
    check_token(request.app.state.settings.admin_token, credentials)
