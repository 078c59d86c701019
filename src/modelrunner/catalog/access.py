"""Who may read and act in the catalog: the one place deciding it (reads, sign-in, actions, CSRF).

- Reading needs nothing from 127.0.0.1 / ::1; from another host it needs a signed-in session.
- Signing in takes a name (the audit actor) and, when the server has an admin token
  (``MODELRUNNER_ADMIN_TOKEN``), that token, checked by :func:`modelrunner.admin_token.check_token` like
  every ``/admin`` call. The session cookie holds the name and an HMAC of it keyed by the token.
- Acting (swap, rollback, alias moves) needs a session when a token is configured, as ``/admin`` does.
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

from modelrunner.admin_token import check_token
from modelrunner.errors import Unauthenticated

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
    token_required: bool  # the server has an admin token
    default_actor: str

    @property
    def can_read(self) -> bool:
        return self.local or self.name is not None

    @property
    def can_act(self) -> bool:
        return self.name is not None or (self.local and not self.token_required)

    @property
    def actor(self) -> str:
        """The audit actor of this visitor's actions."""
        return f"ui:{self.name or self.default_actor}"


def _is_local(request: Request) -> bool:
    host = request.client.host if request.client else ""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _signature(token: str | None, name: str) -> str:
    key = (token or "").encode()
    return hmac.new(key, f"modelrunner-ui:{name}".encode(), hashlib.sha256).hexdigest()


def viewer(request: Request, token: str | None, default_actor: str) -> Viewer:
    """The visitor of ``request`` (session cookie checked against the admin token)."""
    name: str | None = None
    local = _is_local(request)
    raw = request.cookies.get(SESSION_COOKIE, "")
    who, _, sig = raw.rpartition("|")
    # Without an admin token a session proves nothing (its key is empty): it only names a local visitor.
    if who and (token or local) and hmac.compare_digest(sig.encode(), _signature(token, who).encode()):
        name = who
    return Viewer(name=name, local=local, token_required=bool(token), default_actor=default_actor)


def sign_in(response: Response, name: str, given_token: str, token: str | None, *, local: bool) -> None:
    """Check ``given_token`` (when the server has one), set the session cookie; Unauthenticated if wrong."""
    if not token and not local:
        raise Unauthenticated("this server has no admin token (MODELRUNNER_ADMIN_TOKEN): the catalog answers "
                              "only on 127.0.0.1")
    name = " ".join(name.split())[:100]
    if not name or "|" in name:
        raise Unauthenticated("give your name (it is recorded in the audit log), without '|'")
    if token:
        check_token(token, "Bearer", given_token)
    response.set_cookie(SESSION_COOKIE, f"{name}|{_signature(token, name)}", httponly=True, samesite="strict",
                        path="/")


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
