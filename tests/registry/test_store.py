from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import fsspec
import pytest

from modelrunner.errors import InvalidArgument, NotFound, StorageError
from modelrunner.registry.store import ArtifactStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    return ArtifactStore(f"memory://mr-test-{uuid.uuid4().hex}")


def _file(tmp_path: Path, data: bytes, name: str = "a.tar.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_file_is_content_addressed(store: ArtifactStore, tmp_path: Path) -> None:
    data = b"hello artifact" * 1000
    sha = store.put_file(_file(tmp_path, data))
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha)
    assert store.key(sha).endswith(f"sha256/{sha[:2]}/{sha}.tar.gz")
    with store.open(sha) as fh:
        assert fh.read() == data
    assert store.size(sha) == len(data)
    assert list(store.list()) == [sha]


def test_identical_bytes_are_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    a = store.put_file(_file(tmp_path, b"same", "a"))
    b = store.put_bytes(b"same")
    c = store.put_bytes(b"other")
    assert a == b != c
    assert sorted(store.list()) == sorted({a, c})


def test_no_temporary_files_are_left(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(b"x" * 10)
    leftovers = [p for p in store.fs.find(store.root) if p.startswith(f"{store.root}/tmp/")]
    assert leftovers == []


def test_get_to_copies_and_verifies(store: ArtifactStore, tmp_path: Path) -> None:
    sha = store.put_bytes(b"payload")
    dest = store.get_to(sha, tmp_path / "out" / "copy.tar.gz")
    assert dest.read_bytes() == b"payload"


def test_get_to_rejects_corrupt_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    sha = store.put_bytes(b"payload")
    with store.fs.open(store.key(sha), "wb") as fh:  # bit rot / tampering under the final key
        fh.write(b"tampered")
    dest = tmp_path / "copy.tar.gz"
    with pytest.raises(StorageError, match="corrupt"):
        store.get_to(sha, dest)
    assert not dest.exists()
    assert list(tmp_path.glob("*.part")) == []


def test_put_replaces_truncated_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    sha = store.put_bytes(b"full content")
    with store.fs.open(store.key(sha), "wb") as fh:
        fh.write(b"full")  # a truncated object left by some other writer
    assert store.put_bytes(b"full content") == sha
    assert store.get_to(sha, tmp_path / "ok").read_bytes() == b"full content"


def test_missing_and_invalid_keys(store: ArtifactStore, tmp_path: Path) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound, match=missing):
        store.get_to(missing, tmp_path / "x")
    with pytest.raises(InvalidArgument, match="sha256"):
        store.exists("../../etc/passwd")


def test_memory_store_is_shared_by_url(tmp_path: Path) -> None:
    url = f"memory://mr-shared-{uuid.uuid4().hex}"
    sha = ArtifactStore(url).put_bytes(b"shared")
    assert ArtifactStore(url).exists(sha)
    assert fsspec.filesystem("memory").exists(ArtifactStore(url).key(sha))


def test_store_options_come_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MODELRUNNER_STORE_OPTIONS`` (JSON) reaches the fsspec filesystem."""
    from modelrunner.settings import Settings

    monkeypatch.setenv("MODELRUNNER_STORE_OPTIONS", '{"auto_mkdir": false}')
    options = Settings().store_options
    assert options == {"auto_mkdir": False}
    assert ArtifactStore(str(tmp_path / "a"), options).fs.auto_mkdir is False
    assert ArtifactStore(str(tmp_path / "b"), {"auto_mkdir": True}).fs.auto_mkdir is True
