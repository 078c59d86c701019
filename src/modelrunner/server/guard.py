"""Cross-site and host checks of the routed app, in one ASGI middleware (docs/api.md, "Cross-site and host
checks").

A web page the user visits can make the browser send requests to ``127.0.0.1``: simple POSTs (``text/plain``
or form bodies, no CORS preflight) from any origin, and, through DNS rebinding (the page's own name made to
resolve to 127.0.0.1), any request the browser then thinks is same-origin. :class:`RequestGuard` refuses both:

* **Host** (DNS rebinding): bound to a loopback address, the server answers only ``Host: 127.0.0.1``,
  ``localhost`` or ``[::1]`` (any port) plus ``settings.allowed_hosts``; bound to another address, only the
  ``allowed_hosts`` once set ('*': any). Anything else is a 421 naming the host. Inference calls
  (``POST /v1/endpoints/*/predict``, ``POST /v2/models/*/infer``) are not checked: they change nothing, and
  the plain JSON predictions answered before this middleware (server/native/fastpath.py, server/shell.py)
  skip it too, so the hot path does no per-request work for it and every predict behaves the same.
* **Origin** (cross-site requests) on state-changing routes (every non-GET ``/admin`` and
  ``/v2/repository`` route): a browser's ``Origin`` other than the server's own is a 403 naming it;
  requests without one (CLI, curl, SDKs) pass.
* **Content type** on the same routes: a body a browser form or a simple ``fetch`` can send cross-site
  (``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``) is a 415 unless the
  request carries ``Authorization`` (which a page cannot add without a preflight, never granted here). JSON
  and body-less requests pass (tritonclient sends its repository calls without a content type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from modelrunner.runner.sockets import is_loopback, normalize_host
from modelrunner.server import wire
from modelrunner.server.wire import Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
"""The content types a page can send cross-site without a preflight (besides none)."""
DEFAULT_PORTS = {"http": 80, "https": 443}
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def split_host(value: str) -> tuple[str, int | None] | None:
    """``'127.0.0.1:8080'`` -> ``('127.0.0.1', 8080)``, ``'[::1]'`` -> ``('::1', None)``; None: malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    else:
        name, sep, port_text = value.rpartition(":")
        name, port = (name, port_text) if sep else (value, None)
    if port is not None and not (port.isdigit() and int(port) < 65536):
        return None
    return (name, int(port) if port is not None else None) if name else None


def allowed_hosts(bind_host: str, extra: Iterable[str]) -> frozenset[str] | None:
    """The host names the server answers, None for any (see the module docstring)."""
    names = {normalize_host(h) for h in extra if h.strip()}
    if "*" in names:
        return None
    if is_loopback(bind_host):
        return frozenset(LOOPBACK_NAMES | names)
    return frozenset(LOOPBACK_NAMES | names) if names else None


def is_inference(method: str, path: str) -> bool:
    return method == "POST" and (
        (path.startswith("/v1/endpoints/") and path.endswith("/predict"))
        or (path.startswith("/v2/models/") and path.endswith("/infer"))
    )


def changes_state(method: str, path: str) -> bool:
    if method in SAFE_METHODS:
        return False
    return path == "/admin" or path.startswith(("/admin/", "/v2/repository/"))


class RequestGuard:
    """ASGI middleware refusing cross-site requests and foreign ``Host`` names (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, bind_host: str = "127.0.0.1", extra_hosts: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.hosts = allowed_hosts(bind_host, extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                status, code, message = refusal
                await wire.send_json(send, status, wire.error_body(scope["path"], code, message))
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """``(status, code, message)`` refusing the request, or None to let it through."""
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        host = headers.get("host")
        if self.hosts is not None and host is not None and not is_inference(method, path):
            parsed = split_host(host)
            if parsed is None or parsed[0] not in self.hosts:
                return (
                    421,
                    "invalid_argument",
                    (
                        f"this server does not answer for host {host!r} (it answers "
                        f"{', '.join(sorted(self.hosts))}); "
                        "add it to MODELRUNNER_ALLOWED_HOSTS if it is yours"
                    ),
                )
        if not changes_state(method, path):
            return None
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host, scope):
            return (
                403,
                "permission_denied",
                (
                    f"cross-origin request from {origin!r} refused: the management API does not "
                    "accept requests from web pages of other origins"
                ),
            )
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype in FORM_TYPES and "authorization" not in headers:
            return (
                415,
                "invalid_argument",
                (
                    f"content type {ctype!r} refused on {method} {path}: send the body as application/json "
                    "(or an Authorization header); a web page could send this one from any site"
                ),
            )
        return None


_WANTED = frozenset({b"host", b"origin", b"content-type", b"authorization"})


def _headers(scope: Scope) -> dict[str, str]:
    """The few headers the checks read, as str (latin-1, as HTTP/1 carries them)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}


def _same_origin(origin: str, host: str | None, scope: Scope) -> bool:
    """``Origin`` names this server: the request's own ``Host`` (same scheme's default port included)."""
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or host is None:
        return False  # 'null' (sandboxed frames, file:// pages) and odd schemes are foreign
    target = split_host(host)
    if target is None:
        return False
    default = DEFAULT_PORTS[scope.get("scheme", "http")]
    return normalize_host(parts.hostname) == target[0] and (origin_port or DEFAULT_PORTS[parts.scheme]) == (
        target[1] or default
    )
