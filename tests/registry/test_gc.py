from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from modelrunner.registry import Registry
from modelrunner.registry.gc import collect, collect_artifacts, collect_orphans, unreferenced_artifacts
from modelrunner.settings import Settings
from support import killed_push
from support.registry_helpers import write_bundle

MIB = 1024 * 1024


def test_gc_removes_only_old_unreferenced_artifacts(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = registry.push(write_bundle(tmp_path / "kept", payload=b"kept"))

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(Registry, "_commit_version", boom)
    with pytest.raises(RuntimeError):
        registry.push(write_bundle(tmp_path / "orphan", payload=b"orphan"))
    monkeypatch.undo()
    (orphan,) = set(registry.store.list()) - {kept.sha256}

    assert unreferenced_artifacts(registry, min_age_s=3600) == []  # too young: may be a push in flight
    assert collect_artifacts(registry, min_age_s=0, dry_run=True) == [orphan]
    assert registry.store.exists(orphan)
    assert collect_artifacts(registry, min_age_s=0) == [orphan]
    assert list(registry.store.list()) == [kept.sha256]
    assert registry.fetch(kept).is_dir()


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _backdate(paths: list[Path], seconds: float) -> None:
    when = time.time() - seconds
    for top in paths:
        for p in [top, *top.rglob("*")] if top.is_dir() else [top]:
            os.utime(p, (when, when))


def _orphans(home: Path) -> tuple[list[Path], list[Path]]:
    return sorted((home / "cache").glob(".push-*")), sorted((home / "artifacts" / "tmp").glob("*.part"))


def test_a_push_killed_half_way_leaves_no_version_and_its_orphans_are_collected(
    registry: Registry, db_url: str, tmp_home: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "big", payload=random.Random(1).randbytes(4 * MIB))
    env = {"MODELRUNNER_HOME": str(tmp_home), "MODELRUNNER_DATABASE_URL": db_url}
    child = killed_push.start(bundle, env)
    try:
        (work,), (part,) = _orphans(tmp_home)
        # in progress: even with no grace at all, neither its folder nor its upload is touched
        assert collect_orphans(tmp_home / "cache", registry.store, 0) == []
    finally:
        killed_push.kill(child)
    assert work.is_dir() and part.stat().st_size > MIB  # what SIGKILL leaves behind
    assert registry.models() == [] and list(registry.store.list()) == []
    assert collect(registry) == []  # younger than the grace period (1 h): kept
    leaked = _tree_size(work) + part.stat().st_size
    _backdate([work, part], 2 * 3600)
    removed = collect(registry, dry_run=True)
    assert {(r.kind, r.what) for r in removed} == {("push", str(work)), ("upload", str(part))}
    assert work.exists() and part.exists()
    removed = collect(registry)
    assert sum(r.size for r in removed) == leaked > 4 * MIB
    assert _orphans(tmp_home) == ([], [])
    assert registry.push(bundle).version == 1  # the same bytes push cleanly afterwards


def test_the_next_push_collects_orphans_older_than_the_grace_setting(tmp_home: Path, tmp_path: Path) -> None:
    """Cleaning needs no database: SQLite only (the test above covers PostgreSQL)."""
    bundle = write_bundle(tmp_path / "big", payload=random.Random(2).randbytes(MIB))
    killed_push.kill(killed_push.start(bundle, {"MODELRUNNER_HOME": str(tmp_home)}))
    assert _orphans(tmp_home) != ([], [])
    with Registry(Settings(home=tmp_home, orphan_grace_s=0)) as reg:
        assert reg.push(write_bundle(tmp_path / "other", payload=b"other")).version == 1
    assert _orphans(tmp_home) == ([], [])
