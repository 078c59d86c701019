"""Who may read and act in the catalog: the one place deciding it (reads, sign-in, actions, CSRF).

- Reading needs nothing from 127.0.0.1 / ::1; from another host it needs a signed-in session.
- Signing in takes a name (the audit actor) and, when the server has tokens (``modelrunner token create``
  or ``MODELRUNNER_ADMIN_TOKEN``), a token, checked by :class:`modelrunner.security.auth.Authenticator` like
  every ``/admin`` call. The session cookie holds the name, the token's name and an HMAC of both keyed by
  the token's stored hash (the admin token itself for that one): revoking the token ends its sessions.
- Reading needs the viewer role, acting (swap, rollback, alias moves) the deployer role, once tokens exist.
- Every form POST carries a CSRF token equal to the ``mr_csrf`` cookie (double submit; the cookie is
  SameSite=Strict), and a cross-site ``Origin`` is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from modelrunner.errors import Unauthenticated
from modelrunner.security.auth import LEGACY_NAME, Authenticator

SESSION_COOKIE = "mr_session"
CSRF_COOKIE = "mr_csrf"
CSRF_FIELD = "csrf"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Forbidden(Exception):
    """An action or a page this visitor may not use; the message says why and what to do."""


@dataclass(frozen=True)
class Viewer:
    """The visitor of one request."""

    name: str | None  # signed-in name, None when anonymous
    local: bool  # the request comes from this machine
    token_required: bool  # the server has tokens (an admin token or registry tokens)
    default_actor: str
    role: str | None = None  # the role of the token signed in with
    token: str | None = None  # that token's name

    @property
    def can_read(self) -> bool:
        return self.local or (self.name is not None and (not self.token_required or self._grants("viewer")))

    @property
    def can_act(self) -> bool:
        if self.token_required:
            return self.name is not None and self._grants("deployer")
        return self.name is not None or self.local

    def _grants(self, needed: str) -> bool:
        from modelrunner.registry.tokens import GRANTS

        return needed in GRANTS.get(self.role or "", frozenset())

    @property
    def actor(self) -> str:
        """The audit actor of this visitor's actions (with the token's name when signed in with one)."""
        who = f"ui:{self.name or self.default_actor}"
        return f"{who} (token:{self.token})" if self.token and self.token != LEGACY_NAME else who


def _is_local(request: Request) -> bool:
    host = request.client.host if request.client else ""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _signature(key: bytes, name: str, token: str) -> str:
    return hmac.new(key, f"modelrunner-ui:{name}|{token}".encode(), hashlib.sha256).hexdigest()


def _key(auth: Authenticator, token: str) -> tuple[str, bytes] | None:
    """``(role, signing key)`` of sessions made with the token named ``token``; ("", b"") without tokens."""
    if not token:
        return None
    admin = auth.settings.admin_token
    if token == LEGACY_NAME and admin:
        return "admin", admin.encode()
    if auth.registry is None:
        return None
    from modelrunner.registry.tokens import session_key

    return session_key(auth.registry, token)


def viewer(request: Request, auth: Authenticator, default_actor: str) -> Viewer:
    """The visitor of ``request`` (session cookie checked against the token it was made with)."""
    local = _is_local(request)
    enabled = auth.enabled()
    who, token, sig = (request.cookies.get(SESSION_COOKIE, "").split("|") + ["", "", ""])[:3]
    found = _key(auth, token) if enabled else (("", b"") if local else None)
    # Without tokens a session proves nothing (its key is empty): it only names a local visitor.
    expected = _signature(found[1], who, token) if found is not None else ""
    if who and found is not None and hmac.compare_digest(sig.encode(), expected.encode()):
        return Viewer(
            name=who,
            local=local,
            token_required=enabled,
            default_actor=default_actor,
            role=found[0] or None,
            token=token or None,
        )
    return Viewer(name=None, local=local, token_required=enabled, default_actor=default_actor)


def sign_in(response: Response, name: str, given_token: str, auth: Authenticator, *, local: bool) -> None:
    """Check ``given_token`` (when the server has tokens), set the session cookie; Unauthenticated if
    wrong."""
    enabled = auth.enabled()
    if not enabled and not local:
        raise Unauthenticated(
            "this server has no tokens (`modelrunner token create`, "
            "MODELRUNNER_ADMIN_TOKEN): the catalog answers only on 127.0.0.1"
        )
    name = " ".join(name.split())[:100]
    if not name or "|" in name:
        raise Unauthenticated("give your name (it is recorded in the audit log), without '|'")
    token, key = "", b""
    if enabled:
        token = auth.identify(f"Bearer {given_token}").name
        found = _key(auth, token)
        if found is None:
            raise Unauthenticated("unknown or revoked token")
        key = found[1]
    response.set_cookie(
        SESSION_COOKIE,
        f"{name}|{token}|{_signature(key, name, token)}",
        httponly=True,
        samesite="strict",
        path="/",
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_token(request: Request) -> str:
    """This visitor's CSRF token (the cookie's, or a new one that :func:`keep_csrf` sets)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    token: str = request.state.__dict__.setdefault("csrf_new", secrets.token_urlsafe(32))
    return token


def keep_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request made a new token."""
    new = request.state.__dict__.get("csrf_new")
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/")


def check_post(request: Request, form_token: str) -> None:
    """Refuse a form POST without the right CSRF token or from another site (Forbidden naming why)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(f"cross-site form post refused (Origin {origin})")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token or not hmac.compare_digest(cookie.encode(), form_token.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and submit the form again")
