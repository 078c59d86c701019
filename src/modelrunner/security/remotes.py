"""Federation remotes: other modelrunner servers this registry pulls from and pushes to (docs/federation.md).

A remote's URL and licence allow-list are rows of the registry (``remotes``, migration 0005). Its token is a
secret, so it is not stored in the database: it goes to ``<MODELRUNNER_HOME>/remotes/<name>.token``, a file
readable by its owner only (mode 0600, in a 0700 folder), or comes from ``MODELRUNNER_REMOTE_TOKEN_<NAME>``
(upper case, ``-`` as ``_``), which wins — the way to hand it over from a Kubernetes Secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from modelrunner.bundle.licenses import normalize_license
from modelrunner.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import remotes, utcnow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    allow_licenses: tuple[str, ...]

    def check_license(self, license_id: str | None, what: str) -> None:
        """Refuse ``what`` when its licence is not on this remote's allow-list (an empty list allows any)."""
        if not self.allow_licenses:
            return
        if license_id is None or license_id not in self.allow_licenses:
            raise FailedPrecondition(
                f"{what} has licence {license_id or 'none'!r}, not allowed for remote {self.name!r} "
                f"(allowed: {', '.join(self.allow_licenses)}; `remote add --allow-license`)",
                license=license_id,
            )


def _token_file(settings: Any, name: str) -> Path:
    return Path(settings.home) / "remotes" / f"{name}.token"


def _env_name(name: str) -> str:
    return "MODELRUNNER_REMOTE_TOKEN_" + name.upper().replace("-", "_")


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    os.chmod(path, 0o600)


def add(
    registry: Any, name: str, url: str, token: str, allow_licenses: list[str], actor: str | None = None
) -> Remote:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"invalid remote name {name!r}: lower-case letters, digits, '-', '_'", field="name"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid remote URL {url!r}: expected http(s)://host[:port]", field="url")
    allowed = sorted({normalize_license(item) for item in allow_licenses})
    who = registry.settings.resolved_actor() if actor is None else actor
    with registry._write() as conn:
        if conn.execute(select(remotes.c.name).where(remotes.c.name == name)).first():
            raise AlreadyExists(f"remote {name!r} exists; `modelrunner remote remove {name}` first")
        conn.execute(
            remotes.insert().values(
                name=name, url=url.rstrip("/"), allow_licenses=allowed, created_at=utcnow(), created_by=who
            )
        )
        write_audit(
            conn,
            actor=who,
            action="remote.add",
            subject=f"remote:{name}",
            after={"url": url.rstrip("/"), "allow_licenses": allowed},
        )
    _write_secret(_token_file(registry.settings, name), token)
    return Remote(name, url.rstrip("/"), tuple(allowed))


def list_all(registry: Any) -> list[Remote]:
    with registry._read() as conn:
        rows = conn.execute(select(remotes).order_by(remotes.c.name)).fetchall()
    return [Remote(r.name, r.url, tuple(r.allow_licenses or ())) for r in rows]


def get(registry: Any, name: str) -> Remote:
    for remote in list_all(registry):
        if remote.name == name:
            return remote
    raise NotFound(f"no remote named {name!r} (`modelrunner remote list`)")


def remove(registry: Any, name: str, actor: str | None = None) -> None:
    who = registry.settings.resolved_actor() if actor is None else actor
    with registry._write() as conn:
        if conn.execute(delete(remotes).where(remotes.c.name == name)).rowcount == 0:
            raise NotFound(f"no remote named {name!r}")
        write_audit(conn, actor=who, action="remote.remove", subject=f"remote:{name}")
    _token_file(registry.settings, name).unlink(missing_ok=True)


def token(settings: Any, name: str) -> str:
    """The remote's token: the environment's, else the 0600 file's."""
    from_env = os.environ.get(_env_name(name))
    if from_env:
        return from_env
    path = _token_file(settings, name)
    if not path.is_file():
        raise FailedPrecondition(f"no token for remote {name!r}: set {_env_name(name)} or add it again")
    return path.read_text().strip()
