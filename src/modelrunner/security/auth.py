"""Who may call what: the role table and the token check, the same for every protocol (docs/security.md).

- :func:`required_role` maps a request (method, path) to the role it needs, or None (open);
  :func:`grpc_role` does the same for a gRPC method.
- :class:`Authenticator` turns an ``Authorization: Bearer`` value into a :class:`Principal` (a registry token,
  ``registry/tokens.py``, or the server's ``MODELRUNNER_ADMIN_TOKEN``, an admin) and checks the role: 401
  (:class:`Unauthenticated`) without or with a bad token, 403 (:class:`PermissionDenied`) naming the role
  missing. Without any token configured (no admin token, no registry token) everything but predict-with-
  ``--require-auth-for-predict`` stays open, as before: the server then only listens on loopback
  (``runner.workers.check_exposure``).

No web framework here: the protocol hooks are in ``server/auth.py`` (ASGI middleware, gRPC interceptor) and
the catalog signs visitors in through :meth:`Authenticator.identify`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

from modelrunner.errors import PermissionDenied, Unauthenticated
from modelrunner.registry import tokens

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
    if method == "POST" and (
        (path.startswith("/v1/endpoints/") and path.endswith(("/predict", "/feedback")))
        or (path.startswith("/v2/models/") and path.endswith(("/infer", "/feedback")))
    ):
        return "predictor" if predict_auth else None  # feedback: the ground truth of an app's own predictions
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
            raise Unauthenticated(
                "this call needs 'Authorization: Bearer <token>' (`modelrunner token create`)"
            )
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
            raise PermissionDenied(
                f"token {principal.name!r} (role {principal.role}) lacks the role {needed!r} this call needs",
                role=needed,
            )
        return principal
