from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from registry_helpers import write_bundle

from modelrunner.registry import Registry
from modelrunner.registry.gc import collect_artifacts, unreferenced_artifacts


def test_gc_removes_only_old_unreferenced_artifacts(registry: Registry, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
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
