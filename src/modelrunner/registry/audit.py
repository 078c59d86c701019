"""The audit log: one row per change (actor, action, subject, before, after, time)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, select

from modelrunner.registry.tables import audit_log, utcnow
from modelrunner.registry.types import AuditEntry


def write_audit(
    conn: Connection, *, actor: str, action: str, subject: str, before: Any = None, after: Any = None
) -> None:
    """Append one audit row inside the caller's transaction."""
    conn.execute(
        audit_log.insert().values(
            at=utcnow(), actor=actor, action=action, subject=subject, before=before, after=after
        )
    )


def read_audit(
    conn: Connection,
    *,
    limit: int = 100,
    subject: str | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """Newest first. ``subject`` matches exactly or as a prefix before '@' (``digits`` -> ``digits@3``)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, int(limit)))
    if subject:
        escaped = subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            or_(audit_log.c.subject == subject, audit_log.c.subject.like(f"{escaped}@%", escape="\\"))
        )
    if action:
        query = query.where(audit_log.c.action == action)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    return [
        AuditEntry(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            subject=r.subject,
            before=r.before,
            after=r.after,
        )
        for r in conn.execute(query)
    ]
