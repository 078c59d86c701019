"""Federation between two servers with separate registries on 127.0.0.1: pull, push, licences, sha256."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelrunner.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, push_sklearn_models


@dataclass
class Site:
    url: str
    registry: Any
    tokens: dict[str, str]


@contextmanager
def site(home: Path, models: bool) -> Iterator[Site]:
    import modelrunner as mr
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    settings = Settings(home=home, token_cache_s=0, poll_interval_s=0.05, heartbeat_s=0.2)
    registry = Registry(settings)
    if models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            push_sklearn_models(registry, home / "bundles", versions=1)  # digits@1, MIT
            from sklearn.datasets import load_iris
            from sklearn.tree import DecisionTreeClassifier

            x, y = load_iris(return_X_y=True)
            mr.save_model(
                DecisionTreeClassifier(max_depth=2).fit(x, y),
                home / "gpl",
                sample=x[:3],
                license="GPL-3.0-only",
                name="iris",
            )
            registry.push(home / "gpl")
    values = {
        role: tokens.create(registry, f"{role}-peer", role)[1] for role in ("viewer", "deployer", "admin")
    }
    with ServerThread(create_app(Runtime(registry, settings), settings)) as server:
        try:
            yield Site(server.url, registry, values)
        finally:
            registry.close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Site]]:
    with ExitStack() as stack:
        partner = stack.enter_context(site(tmp_path_factory.mktemp("partner"), models=True))
        local = stack.enter_context(site(tmp_path_factory.mktemp("local"), models=False))
        yield partner, local


def test_pull_copies_bundle_contract_license_and_lineage(sites: tuple[Site, Site]) -> None:
    from modelrunner.security import federation, remotes

    partner, local = sites
    remotes.add(local.registry, "partner", partner.url, partner.tokens["deployer"], ["MIT", "Apache-2.0"])
    token_file = Path(local.registry.settings.home) / "remotes" / "partner.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert partner.tokens["deployer"] not in str(remotes.list_all(local.registry))
    mv = federation.pull(local.registry, "partner", "digits@production", "partner-digits")
    source = partner.registry.resolve("digits@1")
    assert (mv.name, mv.version, mv.license) == ("partner-digits", 1, "MIT")
    assert mv.contract.to_dict()["inputs"] == source.contract.to_dict()["inputs"]
    origin = mv.lineage["extra"]["origin"]
    assert origin == {
        "registry": partner.url,
        "remote": "partner",
        "ref": "digits@1",
        "sha256": source.sha256,
    }
    assert local.registry.fetch(mv).is_dir()  # stored, fetchable, verified


def test_a_licence_off_the_allow_list_is_refused_by_name(sites: tuple[Site, Site]) -> None:
    from modelrunner.security import federation

    _partner, local = sites
    with pytest.raises(FailedPrecondition, match="GPL-3.0-only"):
        federation.pull(local.registry, "partner", "iris@1", "partner-iris")
    with pytest.raises(NotFound, match="unknown model"):
        local.registry.resolve("partner-iris@1")


def test_push_needs_the_admin_role_on_the_remote(sites: tuple[Site, Site]) -> None:
    from modelrunner.security import federation, remotes

    partner, local = sites
    remotes.add(partner.registry, "local-ro", local.url, local.tokens["deployer"], [])
    with pytest.raises(PermissionDenied, match="'admin'"):
        federation.push(partner.registry, "digits@1", "local-ro")
    remotes.add(partner.registry, "local", local.url, local.tokens["admin"], [])
    answer = federation.push(partner.registry, "digits@1", "local", name="pushed-digits")
    assert answer["name"] == "pushed-digits"
    stored = local.registry.resolve(f"pushed-digits@{answer['version']}")
    assert stored.lineage["extra"]["origin"]["ref"] == "digits@1"
    assert stored.lineage["extra"]["origin"]["sha256"] == partner.registry.resolve("digits@1").sha256
    assert local.registry.audit(limit=1, subject="pushed-digits")[0].actor == "token:admin-peer"


def test_a_corrupted_transfer_is_refused(sites: tuple[Site, Site], tmp_path: Path) -> None:
    from modelrunner.security import federation

    partner, local = sites
    source = partner.registry.resolve("digits@1")
    archive = partner.registry.store.get_to(source.sha256, tmp_path / "b.tar.gz")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(InvalidArgument, match="hashes to"):
        federation.store_import(local.registry, archive, expected_sha=source.sha256, origin={}, name="bad")


def test_remote_commands(sites: tuple[Site, Site], tmp_home: Path) -> None:
    from modelrunner.cli.main import main

    partner, _local = sites
    assert main(["remote", "add", "p2", partner.url, "--token", partner.tokens["viewer"]]) == 0
    assert main(["pull", "p2:digits@1", "--as", "viewer-copy"]) == 2  # export needs the deployer role
    assert main(["pull", "nocolon"]) == 2
    assert main(["remote", "remove", "p2"]) == 0
    assert not (tmp_home / "remotes" / "p2.token").exists()
    assert main(["remote", "remove", "p2"]) == 2
