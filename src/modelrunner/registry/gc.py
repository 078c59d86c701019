"""Garbage collection: artifacts no version references, and what killed pushes and fetches left behind.

A push packs the bundle in ``<cache>/.push-*`` and uploads it to ``<store>/tmp/*.part`` before it commits
its version row; a fetch unpacks in ``<cache>/.tmp-*``. A process killed half way (SIGKILL, OOM killer,
power loss) leaves those behind, hundreds of MB each. They are removed here once older than a grace period
(``MODELRUNNER_ORPHAN_GRACE_S``, 1 h by default) -- at the next push, at ``serve`` start and by
``modelrunner gc`` -- and never while in use: a live push or fetch holds an ``flock`` on its work folder
(released by the kernel when the process dies, however it dies), and a live upload is named after the
locked folder of its push. Age is the newest modification inside a folder, so a slow write keeps it young.

Unreferenced artifacts are only removed when older than ``min_age_s`` too, so a push that has stored its
artifact but not yet committed its version row is never robbed of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelrunner.registry.tables import model_versions

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.store import ArtifactStore

log = logging.getLogger(__name__)
DEFAULT_MIN_AGE_S = 3600.0
LOCK_FILE = ".lock"
PUSH_PREFIX, FETCH_PREFIX = ".push-", ".tmp-"
WORK_DIRS = (("push", f"{PUSH_PREFIX}*"), ("fetch", f"{FETCH_PREFIX}*"), ("unpack", "bundles/.*"))
"""Temporary folders under the cache: pushes, fetches, and archives being unpacked by ``open_bundle``."""


@dataclass(frozen=True)
class Removed:
    """One thing garbage collection removed (or would remove, in a dry run)."""

    kind: str  # "artifact" (unreferenced), "push" / "fetch" / "unpack" (work folder), "upload" (.part)
    what: str  # sha256 or path
    size: int


@contextlib.contextmanager
def work_dir(cache: Path, prefix: str = PUSH_PREFIX) -> Iterator[Path]:
    """A temporary folder in ``cache``, ``flock``-ed while in use so garbage collection leaves it alone."""
    cache.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=prefix, dir=cache, ignore_cleanup_errors=True) as tmp,
        open(Path(tmp) / LOCK_FILE, "wb") as lock,
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Path(tmp)


def unreferenced_artifacts(registry: Registry, min_age_s: float = DEFAULT_MIN_AGE_S) -> list[str]:
    """sha256 of stored artifacts that no version row references and that are older than ``min_age_s``."""
    stored = set(registry.store.list())
    with registry.engine.connect() as conn:
        referenced = set(conn.scalars(select(model_versions.c.sha256).distinct()))
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_s)
    return sorted(sha for sha in stored - referenced if _modified(registry, sha) <= cutoff)


def collect_artifacts(
    registry: Registry, min_age_s: float = DEFAULT_MIN_AGE_S, *, dry_run: bool = False
) -> list[str]:
    """Delete unreferenced artifacts older than ``min_age_s``; return their sha256 (deleted or not)."""
    doomed = unreferenced_artifacts(registry, min_age_s)
    if not dry_run:
        for sha in doomed:
            registry.store.delete(sha)
            log.info("removed unreferenced artifact %s", sha)
    return doomed


def collect(registry: Registry, min_age_s: float | None = None, *, dry_run: bool = False) -> list[Removed]:
    """Everything ``modelrunner gc`` removes: orphans of killed pushes/fetches, then unreferenced artifacts
    (older than ``min_age_s``, default the orphan grace period), with their sizes."""
    age = registry.settings.orphan_grace_s if min_age_s is None else min_age_s
    removed = collect_orphans(registry.settings.resolved_cache_dir(), registry.store, age, dry_run=dry_run)
    for sha in unreferenced_artifacts(registry, age):
        size = registry.store.size(sha)
        if not dry_run:
            registry.store.delete(sha)
        removed.append(Removed("artifact", sha, size))
    return removed


def collect_orphans(
    cache: Path, store: ArtifactStore, grace_s: float, *, dry_run: bool = False
) -> list[Removed]:
    """Remove unlocked push/fetch work folders and partial uploads older than ``grace_s``."""
    cutoff = time.time() - grace_s
    removed: list[Removed] = []
    live: list[str] = []
    for kind, pattern in WORK_DIRS:
        for folder in sorted(cache.glob(pattern)) if cache.is_dir() else []:
            if not folder.is_dir() or folder.is_symlink():
                continue
            if _in_use(folder):
                live.append(folder.name)
                continue
            newest, size = _tree_stats(folder)
            if newest > cutoff:
                live.append(folder.name)
                continue
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
            removed.append(Removed(kind, str(folder), size))
    for path, size, modified in store.parts():
        name = path.rsplit("/", 1)[-1]
        if any(name.startswith(f"{owner}-") for owner in live):
            continue  # the upload of a push in progress
        if modified is None or _aware(modified).timestamp() > cutoff:
            continue
        if not dry_run:
            store.remove_part(path)
        removed.append(Removed("upload", path, size))
    for item in removed:
        log.info(
            "%s %s %s (%d bytes)", "would remove" if dry_run else "removed", item.kind, item.what, item.size
        )
    return removed


def _in_use(folder: Path) -> bool:
    """Whether a live process holds the folder's lock (a folder without a lock file is judged by age)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our lock at once
    return False


def _tree_stats(folder: Path) -> tuple[float, int]:
    """(newest mtime, total bytes) of a folder and everything under it."""
    newest, size = folder.lstat().st_mtime, 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime)
            size += st.st_size if name in files else 0
    return newest, size


def _modified(registry: Registry, sha: str) -> datetime:
    try:
        when = registry.store.fs.modified(registry.store.key(sha))
    except (NotImplementedError, OSError):
        return datetime.now(UTC)  # unknown age: treat as new, never delete
    return _aware(when)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
