"""The server's admin token (``MODELRUNNER_ADMIN_TOKEN``) checked in one place, below every layer using it:
``/admin`` calls (``server.auth``) and the catalog's sign-in (``catalog.access``)."""

from __future__ import annotations

import hmac

from modelrunner.errors import Unauthenticated


def check_token(expected: str | None, scheme: str | None, given: str | None) -> None:
    """Pass when no token is configured, or ``scheme`` is bearer and ``given`` matches (constant-time)."""
    if not expected:
        return
    if given is None or (scheme or "").lower() != "bearer":
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated("wrong admin token")
