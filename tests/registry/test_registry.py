from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from modelrunner.bundle.manifest import Manifest
from modelrunner.errors import BundleError, DiskFull, InvalidArgument, NotFound, StorageError
from modelrunner.registry import Registry, versions
from modelrunner.registry.tables import model_versions
from modelrunner.settings import Settings
from support.registry_helpers import push_in_process, tiny_tmpfs, write_bundle


def test_push_creates_numbered_immutable_versions(registry: Registry, bundle: Path) -> None:
    v1 = registry.push(bundle, alias="production", tags={"stage": "dev"}, actor="alice")
    v2 = registry.push(bundle, name="other-name")
    v3 = registry.push(bundle)
    assert (v1.ref, v2.ref, v3.ref) == ("toy@1", "other-name@1", "toy@2")
    assert v1.flavor == "python" and v1.license == "MIT" and v1.metrics == {"accuracy": 0.9}
    assert v1.tags == {"team": "core", "stage": "dev"} and v1.created_by == "alice"
    assert v1.aliases == ("production",) and v1.size > 0
    assert v1.contract.inputs[0].name == "x" and v1.contract.inputs[0].number == 1
    assert v1.manifest["name"] == "toy" and v2.manifest["name"] == "other-name"
    info = registry.model("toy")
    assert [v.version for v in info.versions] == [1, 2] and info.aliases == {"production": 1}
    assert info.latest is not None and info.latest.version == 2
    summaries = {s.name: s for s in registry.models()}
    assert summaries["toy"].latest_version == 2 and summaries["toy"].version_count == 2
    assert summaries["other-name"].aliases == {}


def test_resolve_refs(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_bundle(tmp_path / "a", payload=b"a"), alias="production")
    registry.push(write_bundle(tmp_path / "b", payload=b"b"), alias="staging")
    assert registry.resolve("toy").version == 2
    assert registry.resolve("toy@latest").version == 2
    assert registry.resolve("toy@1").version == 1
    assert registry.resolve("toy@production").version == 1
    assert registry.resolve("toy@staging").aliases == ("staging",)


def test_resolve_errors_name_what_is_missing(registry: Registry, bundle: Path) -> None:
    registry.push(bundle, alias="production")
    registry.push(bundle, name="zeta")
    with pytest.raises(NotFound, match=r"unknown model 'nope' \(models: toy, zeta\)"):
        registry.resolve("nope@1")
    with pytest.raises(NotFound, match=r"model 'toy' has no version 7 \(versions: 1\)"):
        registry.resolve("toy@7")
    with pytest.raises(NotFound, match=r"model 'toy' has no alias 'prod' \(aliases: production\)"):
        registry.resolve("toy@prod")
    with pytest.raises(InvalidArgument, match="invalid model reference"):
        registry.resolve("toy@@1")


def test_aliases_move_and_delete(registry: Registry, tmp_path: Path) -> None:
    for i in range(3):
        registry.push(write_bundle(tmp_path / str(i), payload=bytes([i])))
    assert registry.set_alias("toy", "production", 2, actor="bob").version == 2
    assert registry.set_alias("toy", "canary", "latest").version == 3
    assert registry.set_alias("toy", "production", 3).aliases == ("canary", "production")
    registry.delete_alias("toy", "canary")
    assert registry.model("toy").aliases == {"production": 3}
    with pytest.raises(NotFound, match="no alias 'canary'"):
        registry.delete_alias("toy", "canary")
    with pytest.raises(NotFound, match="no version 9"):
        registry.set_alias("toy", "production", 9)
    with pytest.raises(InvalidArgument, match="reserved"):
        registry.set_alias("toy", "latest", 1)
    with pytest.raises(NotFound, match="unknown model"):
        registry.set_alias("ghost", "production", 1)


def test_tags_are_labels_on_a_version(registry: Registry, bundle: Path) -> None:
    registry.push(bundle)
    mv = registry.set_tags("toy@1", {"reviewed": "yes", "team": None})
    assert mv.tags == {"reviewed": "yes"}
    assert registry.resolve("toy@1").tags == {"reviewed": "yes"}


def test_audit_records_every_change(registry: Registry, bundle: Path) -> None:
    registry.push(bundle, alias="production", actor="alice")
    registry.set_alias("toy", "staging", 1, actor="bob")
    registry.delete_alias("toy", "staging", actor="bob")
    registry.set_tags("toy@1", {"k": "v"}, actor="carol")
    registry.record("endpoint.swap_failed", "endpoint:toy", before=None, after={"error": "boom"}, actor="w1")
    actions = [(e.action, e.subject, e.actor) for e in registry.audit()]
    assert actions == [
        ("endpoint.swap_failed", "endpoint:toy", "w1"),
        ("tags.set", "toy@1", "carol"),
        ("alias.delete", "toy@staging", "bob"),
        ("alias.set", "toy@staging", "bob"),
        ("alias.set", "toy@production", "alice"),
        ("version.create", "toy@1", "alice"),
        ("model.create", "toy", "alice"),
    ]
    moved = registry.audit(subject="toy@staging")
    assert [e.before for e in moved] == [{"version": 1}, None]
    assert len(registry.audit(subject="toy")) == 6
    assert len(registry.audit(limit=2)) == 2
    assert [e.action for e in registry.audit(action="alias.set")] == ["alias.set", "alias.set"]
    assert all(e.at.tzinfo is not None for e in registry.audit())


def test_identical_bytes_are_stored_once(registry: Registry, bundle: Path, tmp_path: Path) -> None:
    a = registry.push(bundle)
    b = registry.push(bundle)
    c = registry.push(write_bundle(tmp_path / "c", payload=b"different"))
    assert a.sha256 == b.sha256 != c.sha256
    assert sorted(registry.store.list()) == sorted({a.sha256, c.sha256})


def test_push_accepts_an_archive(registry: Registry, bundle: Path, tmp_path: Path) -> None:
    from modelrunner.bundle.archive import pack

    archive = tmp_path / "toy.tar.gz"
    archive.write_bytes(pack(bundle))
    assert registry.push(archive).sha256 == registry.push(bundle).sha256


def test_push_rejects_non_bundles(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        registry.push(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="modelrunner.yaml"):
        registry.push(tmp_path / "empty")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(BundleError):
        registry.push(junk)
    with pytest.raises(InvalidArgument, match="invalid model name"):
        registry.push(write_bundle(tmp_path / "b"), name="bad name")
    assert registry.models() == []


def test_push_rejects_unknown_flavors_and_non_spdx_licenses(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not-a-license"):
        registry.push(write_bundle(tmp_path / "lic", license="not-a-license"))
    bad = write_bundle(tmp_path / "flv")
    manifest = Manifest.read(bad)
    manifest.model_copy(update={"flavor": "tensorflow"}).dump(bad)
    with pytest.raises(InvalidArgument, match="unknown flavor 'tensorflow'"):
        registry.push(bad)
    assert registry.models() == []


def test_push_renumbers_the_contract_against_the_latest_version(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_bundle(tmp_path / "1", inputs=("a", "b")))
    v2 = registry.push(write_bundle(tmp_path / "2", inputs=("c", "b")))
    numbers = {f.name: f.number for f in v2.contract.inputs}
    assert numbers["b"] == 2 and numbers["c"] not in (1, 2)
    assert 1 in v2.contract.reserved_inputs
    fetched = Manifest.read(registry.fetch(v2))
    assert fetched.contract == v2.contract and fetched.name == "toy"


def test_fetch_returns_a_verified_cached_bundle(registry: Registry, bundle: Path) -> None:
    mv = registry.push(bundle)
    path = registry.fetch(mv)
    assert path == registry.settings.resolved_cache_dir() / mv.sha256
    assert (path / "weights.bin").read_bytes() == b"weights-v1"
    assert Manifest.read(path).name == "toy"
    assert registry.fetch("toy@1") == path
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_fetch_rejects_a_corrupt_artifact(registry: Registry, bundle: Path) -> None:
    mv = registry.push(bundle)
    with registry.store.fs.open(registry.store.key(mv.sha256), "wb") as fh:
        fh.write(b"tampered")
    with pytest.raises(StorageError, match="corrupt"):
        registry.fetch(mv)
    assert not (registry.settings.resolved_cache_dir() / mv.sha256).exists()


def _version_count(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model_versions)).scalar_one())


def test_failed_push_leaves_no_version_and_no_trap(
    registry: Registry, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure after the version row")

    monkeypatch.setattr(versions, "write_audit", boom)
    with pytest.raises(RuntimeError, match="injected"):
        registry.push(bundle, alias="production")
    monkeypatch.undo()
    assert _version_count(registry) == 0
    assert registry.models() == []  # the model row was part of the same transaction
    assert registry.state_generation() == 0
    mv = registry.push(bundle, alias="production")  # the orphaned artifact is reused, not tripped over
    assert mv.version == 1 and registry.fetch(mv).is_dir()


def test_failure_between_artifact_and_transaction(
    registry: Registry, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise StorageError("injected: database went away")

    monkeypatch.setattr(Registry, "_commit_version", boom)
    with pytest.raises(StorageError, match="injected"):
        registry.push(bundle)
    monkeypatch.undo()
    assert len(list(registry.store.list())) == 1 and _version_count(registry) == 0
    assert registry.push(bundle).version == 1


PUSHERS = 8


def test_concurrent_pushes_from_threads_get_distinct_versions(registry: Registry, tmp_path: Path) -> None:
    paths = [write_bundle(tmp_path / str(i), payload=b"same") for i in range(PUSHERS)]
    barrier = threading.Barrier(PUSHERS)
    results: list[Any] = []

    def push(path: Path) -> None:
        barrier.wait()
        try:
            results.append(registry.push(path, alias="latest-push"))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            results.append(exc)

    threads = [threading.Thread(target=push, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.version for r in results) == list(range(1, PUSHERS + 1)), results
    assert len({r.sha256 for r in results}) == 1 and len(list(registry.store.list())) == 1
    assert registry.state_generation() == PUSHERS  # every alias move bumped it


def test_concurrent_pushes_from_processes_get_distinct_versions(
    db_url: str, tmp_home: Path, tmp_path: Path
) -> None:
    """Fresh database: every process also runs the migrations at open, at the same moment."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["modelrunner.registry", "support.registry_helpers"])
    barrier, out = ctx.Barrier(PUSHERS), ctx.Queue()
    paths = [write_bundle(tmp_path / str(i), payload=f"v{i % 2}".encode()) for i in range(PUSHERS)]
    procs = [
        ctx.Process(target=push_in_process, args=(str(tmp_home), db_url, str(p), barrier, out)) for p in paths
    ]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(got, key=str) == list(range(1, PUSHERS + 1)), got
    with Registry(Settings(home=tmp_home), database_url=db_url) as reg:
        assert [v.version for v in reg.model("toy").versions] == list(range(1, PUSHERS + 1))
        assert len(list(reg.store.list())) == 2


def test_concurrent_pushes_with_changing_contracts_keep_field_numbers_consistent(
    registry: Registry, tmp_path: Path
) -> None:
    paths = [write_bundle(tmp_path / str(i), inputs=("a", f"f{i}"), payload=bytes([i])) for i in range(6)]
    barrier = threading.Barrier(len(paths))
    errors: list[BaseException] = []

    def push(path: Path) -> None:
        barrier.wait()
        try:
            registry.push(path)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    by_name: dict[str, int] = {}
    for mv in registry.model("toy").versions:
        for f in mv.contract.inputs:
            assert by_name.setdefault(f.name, f.number) == f.number, (mv.ref, f)
            assert f.number not in mv.contract.reserved_inputs
    assert len(set(by_name.values())) == len(by_name) == 7  # 'a' plus six fields, never a number reused


def test_default_home_layout_from_env(tmp_home: Path, bundle: Path) -> None:
    with Registry.from_env() as reg:
        mv = reg.push(bundle)
        reg.fetch(mv)
    assert (tmp_home / "registry.db").is_file()
    assert (tmp_home / "artifacts" / "sha256" / mv.sha256[:2] / f"{mv.sha256}.tar.gz").is_file()
    assert (tmp_home / "cache" / mv.sha256 / "modelrunner.yaml").is_file()


def test_store_url_selects_another_backend(
    tmp_home: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELRUNNER_STORE_URL", "memory://mr-registry-test")
    with Registry.from_env() as reg:
        mv = reg.push(bundle)
        assert reg.store.url == "memory://mr-registry-test" and reg.store.exists(mv.sha256)
        assert reg.fetch(mv).is_dir()
    assert not (tmp_home / "artifacts").exists()


def test_unreachable_database_url_from_env(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRUNNER_DATABASE_URL", "postgresql+psycopg://bob:pw@127.0.0.1:1/registry")
    expected = r"^cannot connect to postgresql\+psycopg://bob@127.0.0.1:1/registry: "
    with pytest.raises(StorageError, match=expected):
        Registry.from_env()


def test_models_are_read_one_page_at_a_time(registry: Registry, tmp_path: Path) -> None:
    for name in ("c", "a", "e", "b", "d"):
        registry.push(write_bundle(tmp_path / name, name=name, payload=name.encode()), alias="production")
    assert registry.model_count() == 5
    assert [m.name for m in registry.models(limit=2)] == ["a", "b"]
    page = registry.models(limit=2, offset=2)
    assert [m.name for m in page] == ["c", "d"]
    assert page[0].aliases == {"production": 1} and page[0].version_count == 1
    assert [m.name for m in registry.models(limit=2, offset=4)] == ["e"]
    assert registry.models(offset=5) == [] and len(registry.models()) == 5


def test_a_bundle_that_fetches_would_refuse_is_not_stored(
    db_url: str, tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELRUNNER_MAX_UNPACKED_BYTES", str(1024 * 1024))
    with Registry(Settings(home=tmp_home), database_url=db_url) as reg:
        big = write_bundle(tmp_path / "big", payload=bytes(2 * 1024 * 1024))
        with pytest.raises(BundleError, match=r"every fetch would refuse it: .*more than 1\.0 MiB"):
            reg.push(big)
        assert reg.models() == [] and list(reg.store.list()) == []
        assert reg.push(write_bundle(tmp_path / "small")).version == 1


def test_a_fetch_into_a_full_cache_is_disk_full_and_leaves_nothing(
    registry: Registry, db_url: str, tmp_home: Path, tmp_path: Path
) -> None:
    import random

    mv = registry.push(write_bundle(tmp_path / "big", payload=random.Random(5).randbytes(3 * 1024 * 1024)))
    with (
        tiny_tmpfs(tmp_path / "tiny") as tiny,
        Registry(Settings(home=tmp_home, cache_dir=tiny), database_url=db_url) as small,
    ):
        with pytest.raises(DiskFull, match=r"^disk full while writing .*: No space left on device$"):
            small.fetch(mv)
        assert [p for p in tiny.rglob("*") if p.is_file()] == []
    assert registry.fetch(mv).is_dir()
