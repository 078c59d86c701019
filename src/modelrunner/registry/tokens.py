"""API tokens with roles, stored in the registry as a KDF hash (docs/security.md).

A token reads ``mrt_<id>_<secret>``: ``<id>`` (8 hex digits) is public and stored as is, so a check looks up
one row and runs the key derivation (scrypt, a per-token random salt) once; ``<secret>`` is never stored.
The derived key is compared with :func:`hmac.compare_digest`. Roles:

- ``viewer``: read the registry (``GET /admin/...``, the web catalog);
- ``predictor``: call the predict routes when the server runs with ``--require-auth-for-predict``;
- ``deployer``: all of viewer and predictor, plus swaps, rollbacks, alias moves, endpoint config;
- ``admin``: everything: tokens, gates, deletes, trust decisions, federation imports.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from modelrunner.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import api_tokens, utcnow

ROLES = ("viewer", "predictor", "deployer", "admin")
GRANTS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"viewer"}),
    "predictor": frozenset({"predictor"}),
    "deployer": frozenset({"viewer", "predictor", "deployer"}),
    "admin": frozenset(ROLES),
}
"""What each role may do: a role grants itself and the roles listed (predictor is not a viewer)."""
PREFIX = "mrt"
KDF = "scrypt:n=16384,r=8,p=1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


@dataclass(frozen=True)
class TokenInfo:
    """A stored token, without its secret."""

    name: str
    role: str
    token_id: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None

    def grants(self, needed: str) -> bool:
        return needed in GRANTS.get(self.role, frozenset())

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(f"unknown role {role!r}: one of {', '.join(ROLES)}", field="role")
    return role


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` -> a timedelta; InvalidArgument naming the format otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text or "")
    if not match or int(match.group(1)) <= 0:
        raise InvalidArgument(
            f"invalid duration {text!r}: a positive number and a unit m, h, d or w (30d)", field="expires"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def derive(secret: str, salt: bytes) -> bytes:
    """The stored key of a token secret (scrypt, ~16 MiB and a few tens of ms)."""
    return hashlib.scrypt(secret.encode(), salt=salt, n=16384, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)


def split_token(presented: str) -> tuple[str, str]:
    """``mrt_<id>_<secret>`` -> ``(id, secret)``; Unauthenticated for anything else (never echoing it)."""
    prefix, _, rest = presented.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(token_id) != 8 or not secret:
        raise Unauthenticated(
            "malformed token: expected the 'mrt_...' value that `modelrunner token create` printed"
        )
    return token_id, secret


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        role=row.role,
        token_id=row.token_id,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
    )


def create(
    registry: Any, name: str, role: str, *, expires_in: timedelta | None = None, actor: str | None = None
) -> tuple[TokenInfo, str]:
    """Store a new token; return it and its full value (shown once: only its hash is kept)."""
    if not _NAME.match(name or ""):
        raise InvalidArgument(
            f"invalid token name {name!r}: letters, digits, '.', '_', '-' (up to 128)", field="name"
        )
    check_role(role)
    token_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_bytes(16)
    now = utcnow()
    expires_at = now + expires_in if expires_in else None
    who = registry.settings.resolved_actor() if actor is None else actor
    row = {
        "token_id": token_id,
        "name": name,
        "role": role,
        "salt": salt.hex(),
        "hash": derive(secret, salt).hex(),
        "kdf": KDF,
        "created_at": now,
        "created_by": who,
        "expires_at": expires_at,
    }
    with registry._write() as conn:
        if conn.execute(select(api_tokens.c.name).where(api_tokens.c.name == name)).first():
            raise AlreadyExists(f"a token named {name!r} exists; revoke it first or pick another name")
        conn.execute(api_tokens.insert().values(**row))
        write_audit(
            conn,
            actor=who,
            action="token.create",
            subject=f"token:{name}",
            after={"role": role, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    info = TokenInfo(
        name=name, role=role, token_id=token_id, created_at=now, created_by=who, expires_at=expires_at
    )
    return info, f"{PREFIX}_{token_id}_{secret}"


def list_all(registry: Any) -> list[TokenInfo]:
    with registry._read() as conn:
        return [_info(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.name))]


def revoke(registry: Any, name: str, *, actor: str | None = None) -> TokenInfo:
    """Delete the token ``name`` (it stops working at once; servers' caches hold it at most
    ``MODELRUNNER_TOKEN_CACHE_S``)."""
    who = registry.settings.resolved_actor() if actor is None else actor
    with registry._write() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name!r}")
        conn.execute(delete(api_tokens).where(api_tokens.c.name == name))
        write_audit(
            conn, actor=who, action="token.revoke", subject=f"token:{name}", before={"role": row.role}
        )
    return _info(row)


def count(registry: Any) -> int:
    with registry._read() as conn:
        return int(conn.execute(select(func.count()).select_from(api_tokens)).scalar() or 0)


def verify(registry: Any, presented: str) -> TokenInfo:
    """The stored token ``presented`` is, or Unauthenticated (unknown, revoked, wrong secret, expired)."""
    token_id, secret = split_token(presented)
    with registry._read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
    if row is None:
        raise Unauthenticated("unknown or revoked token")
    if not hmac.compare_digest(derive(secret, bytes.fromhex(row.salt)), bytes.fromhex(row.hash)):
        raise Unauthenticated("unknown or revoked token")
    info = _info(row)
    if info.expired:
        raise Unauthenticated(f"token {info.name!r} expired at {info.expires_at:%Y-%m-%d %H:%M} UTC")
    return info


def session_key(registry: Any, name: str) -> tuple[str, bytes] | None:
    """``(role, key)`` signing catalog sessions of the token ``name`` (its stored hash: secret, and gone with
    the token), or None when it does not exist or expired."""
    with registry._read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
    if row is None or _info(row).expired:
        return None
    return str(row.role), bytes.fromhex(row.hash)
