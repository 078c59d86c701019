"""Garbage collection of artifacts no version references (left by failed or abandoned pushes).

Only artifacts older than ``min_age_s`` are removed, so a push that has stored its artifact but not yet
committed its version row is never robbed of it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelrunner.registry.tables import model_versions

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)
DEFAULT_MIN_AGE_S = 3600.0


def unreferenced_artifacts(registry: Registry, min_age_s: float = DEFAULT_MIN_AGE_S) -> list[str]:
    """sha256 of stored artifacts that no version row references and that are older than ``min_age_s``."""
    stored = set(registry.store.list())
    with registry.engine.connect() as conn:
        referenced = set(conn.scalars(select(model_versions.c.sha256).distinct()))
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_s)
    return sorted(sha for sha in stored - referenced if _modified(registry, sha) <= cutoff)


def collect_artifacts(registry: Registry, min_age_s: float = DEFAULT_MIN_AGE_S, *,
                      dry_run: bool = False) -> list[str]:
    """Delete unreferenced artifacts older than ``min_age_s``; return their sha256 (deleted or not)."""
    doomed = unreferenced_artifacts(registry, min_age_s)
    if not dry_run:
        for sha in doomed:
            registry.store.delete(sha)
            log.info("removed unreferenced artifact %s", sha)
    return doomed


def _modified(registry: Registry, sha: str) -> datetime:
    try:
        when = registry.store.fs.modified(registry.store.key(sha))
    except (NotImplementedError, OSError):
        return datetime.now(UTC)  # unknown age: treat as new, never delete
    return when if when.tzinfo else when.replace(tzinfo=UTC)
