"""push / models / show / alias / contract / audit through the real CLI entry point."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support import killed_push
from support.bombs import yaml_alias_bomb, zip_bomb
from support.cli_helpers import Cli
from support.registry_helpers import tiny_tmpfs, write_bundle

MIB = 1024 * 1024


def _push_two(cli: Cli, bundle: Path) -> None:
    assert cli("push", bundle, "--name", "iris").out.startswith("iris version 1")
    second = cli("push", bundle, "--name", "iris", "--alias", "staging", "--tag", "team=ml")
    assert second.code == 0, second.err
    assert second.out.startswith("iris version 2")
    assert "alias staging" in second.out


def test_push_uses_the_bundle_name_and_counts_versions(cli: Cli, iris_bundle: Path) -> None:
    first = cli("push", iris_bundle)
    assert first.code == 0, first.err
    assert first.out.startswith("iris version 1 ")
    assert "flavor sklearn" in first.out
    assert cli("push", iris_bundle).out.startswith("iris version 2 ")


def test_models_table(cli: Cli, iris_bundle: Path) -> None:
    assert "no models yet" in cli("models").out
    _push_two(cli, iris_bundle)
    out = cli("models").out
    row = next(line for line in out.splitlines() if " iris " in line)
    for cell in ("iris", "2", "staging->2", "MIT"):
        assert cell in row


def test_show_versions_contract_metrics_license_lineage(cli: Cli, iris_bundle: Path) -> None:
    _push_two(cli, iris_bundle)
    result = cli("show", "iris@staging")
    assert result.code == 0, result.err
    out = result.out
    assert "iris@2 (resolved from iris@staging)" in out
    assert "accuracy=0.97" in out
    assert "MIT" in out
    assert "lineage.training_data_sha256" in out
    assert '"team": "ml"' in out
    assert "float64[4]" in out  # the input field of the contract
    assert "label" in out  # an output field
    lines = [line for line in out.splitlines() if line.strip().startswith(("│ 1 ", "│ 2 "))]
    assert len(lines) == 2  # both versions listed


def test_alias_set_move_and_delete(cli: Cli, iris_bundle: Path) -> None:
    from modelrunner import Registry

    _push_two(cli, iris_bundle)
    assert cli("alias", "set", "iris@1", "production").out.splitlines()[0] == "iris@production -> version 1"
    moved = cli("alias", "set", "iris@2", "production")
    assert moved.out.splitlines()[0] == "iris@production -> version 2 (was version 1)"
    with Registry.from_env() as registry:
        assert registry.resolve("iris@production").version == 2
    assert cli("alias", "delete", "iris", "production").out.strip() == "deleted iris@production"
    gone = cli("show", "iris@production")
    assert gone.code == 2
    assert "production" in gone.err


def test_alias_set_says_which_endpoints_follow_and_which_are_pinned(cli: Cli, iris_bundle: Path) -> None:
    from modelrunner import Registry

    _push_two(cli, iris_bundle)
    first = cli("alias", "set", "iris@1", "production").out.splitlines()
    assert first[1] == "no endpoint follows iris@production"
    with Registry.from_env() as registry:
        for name, target in (
            ("iris", "iris@production"),
            ("canary", "iris@2"),
            ("newest", "iris"),
            ("trial", "iris@staging"),
        ):
            registry.set_endpoint(name, target)
    moved = cli("alias", "set", "iris@2", "production")
    assert moved.code == 0, moved.err
    assert moved.out.splitlines() == [
        "iris@production -> version 2 (was version 1)",
        "endpoint canary is pinned to iris@2: does not follow iris@production",
        "endpoint iris follows iris@production: it swaps to version 2",
        "endpoint newest is pinned to iris@latest: does not follow iris@production",
        "endpoint trial is pinned to iris@staging: does not follow iris@production",
    ]


def test_contract_formats(cli: Cli, iris_bundle: Path) -> None:
    cli("push", iris_bundle, "--alias", "production")
    proto = cli("contract", "iris@production", "--format", "proto")
    assert proto.code == 0, proto.err
    assert 'syntax = "proto3";' in proto.out
    assert "repeated double input = 1;" in proto.out
    as_json = json.loads(cli("contract", "iris@1", "--format", "json").out)
    assert [f["name"] for f in as_json["inputs"]] == ["input"]
    schema = json.loads(cli("contract", "iris", "--format", "json-schema").out)
    assert isinstance(schema, dict) and schema
    v2 = json.loads(cli("contract", "iris", "-f", "v2").out)
    assert v2["name"] == "iris"


def test_audit_lists_pushes_and_alias_moves(cli: Cli, iris_bundle: Path) -> None:
    _push_two(cli, iris_bundle)
    cli("alias", "set", "iris@1", "production")
    out = cli("audit").out
    assert "version.create" in out and "alias.set" in out
    assert "tester" in out
    rows = [line for line in cli("audit", "--limit", "1").out.splitlines() if "tester" in line]
    assert len(rows) == 1 and "iris@production" in rows[0] and "+ version=1" in rows[0]
    cli("alias", "set", "iris@2", "production")
    assert "version: 1 -> 2" in cli("audit", "--limit", "1").out
    only = cli("audit", "--subject", "iris@production").out
    assert "iris@production" in only and "version.create" not in only


def test_show_lists_gates_and_evaluations(cli: Cli, iris_bundle: Path) -> None:
    from modelrunner import Registry

    cli("push", iris_bundle)
    with Registry.from_env() as registry:
        registry.set_gates("iris", ["accuracy >= 0.9"])
        registry.record_evaluation(
            "iris",
            1,
            metrics={"accuracy": 0.95, "per_class": {"a": 1.0}},
            passed=True,
            dataset_name="iris-test",
        )
    out = cli("show", "iris@1").out
    assert "gates: accuracy >= 0.9" in out
    row = next(line for line in out.splitlines() if "iris-test" in line)
    assert "accuracy=0.95" in row and "yes" in row


def test_push_an_archive(cli: Cli, iris_bundle: Path, tmp_path: Path) -> None:
    from modelrunner.bundle.archive import pack

    archive = tmp_path / "iris.tar.gz"
    archive.write_bytes(pack(iris_bundle))
    result = cli("push", archive, "--name", "packed")
    assert result.code == 0, result.err
    assert result.out.startswith("packed version 1 ")


def test_contract_proto_compiles_to_a_stub_that_calls_the_server(
    cli: Cli, iris_bundle: Path, tmp_home: Path, tmp_path: Path
) -> None:
    """The CLI's .proto has the package the server serves (gRPC method names include it): a stub compiled from
    it with protoc calls the endpoint; ``--endpoint`` renders it for an endpoint with another name."""
    import grpc

    from support.grpc_helpers import compile_proto, grpc_stack

    def push(registry: object, _root: Path) -> None:
        registry.push(iris_bundle, alias="production")  # type: ignore[attr-defined]

    row = [5.1, 3.5, 1.4, 0.2]
    with (
        grpc_stack(tmp_home, push, {"iris": "iris@production", "iris-canary": "iris@production"}) as stack,
        grpc.insecure_channel(stack.grpc) as channel,
    ):
        for endpoint, args in (("iris", ()), ("iris-canary", ("--endpoint", "iris-canary"))):
            rendered = cli("contract", "iris@production", "--format", "proto", *args)
            assert rendered.code == 0, rendered.err
            served = stack.http.get(f"/v1/endpoints/{endpoint}/contract.proto").text
            assert rendered.out == served  # one renderer, one package rule
            module = f"cli_{endpoint.replace('-', '_')}"
            pb2, pb2_grpc = compile_proto(rendered.out, module, tmp_path / endpoint)
            request = pb2.Request(rows=[pb2.InputRow(input=row)])
            answer = pb2_grpc.ModelStub(channel).Predict(request, timeout=30)
            assert len(answer.rows) == 1
            want = stack.http.post(f"/v1/endpoints/{endpoint}/predict", json={"instances": [{"input": row}]})
            assert answer.rows[0].label == want.json()["predictions"][0]["label"]
    assert "package modelrunner.iris;" in cli("contract", "iris", "-f", "proto").out


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_gc_reports_what_a_killed_push_left_and_the_bytes_freed(
    cli: Cli, tmp_home: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "big", payload=random.Random(3).randbytes(2 * MIB))
    killed_push.kill(killed_push.start(bundle, {"MODELRUNNER_HOME": str(tmp_home)}))
    models = cli("models")
    assert models.code == 0 and "no models yet" in models.out  # nothing visible, nothing broken
    leaked = _files(tmp_home / "cache") + _files(tmp_home / "artifacts" / "tmp")
    assert sum(p.stat().st_size for p in leaked) > 2 * MIB
    assert cli("gc").out.strip() == "nothing to remove (nothing unused older than 3600 s)"
    old = time.time() - 7200
    for p in [*leaked, *(tmp_home / "cache").glob(".push-*")]:
        os.utime(p, (old, old))
    dry = cli("gc", "--dry-run").out
    assert "would remove push work folder" in dry and "would remove partial upload" in dry
    result = cli("gc")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[0].startswith("removed push work folder ") and ".push-" in lines[0]
    assert lines[1].startswith("removed partial upload ") and lines[1].endswith("MiB)")
    assert lines[-1].startswith("freed ") and lines[-1].endswith("in 2 items")
    assert int(lines[-1].split("(")[1].split()[0]) >= 2 * MIB
    assert _files(tmp_home / "artifacts" / "tmp") == [] and not list((tmp_home / "cache").glob(".push-*"))


def _bad_bundles(tmp_path: Path) -> dict[str, tuple[Path, list[str], str]]:
    long_description = write_bundle(tmp_path / "long")
    manifest = long_description / "modelrunner.yaml"
    data = yaml.safe_load(manifest.read_text())
    manifest.write_text(yaml.safe_dump({**data, "description": "x" * 50_000}))
    aliases = write_bundle(tmp_path / "aliases")
    manifest = aliases / "modelrunner.yaml"
    manifest.write_text(
        manifest.read_text()
        + "lineage:\n  extra:\n"
        + "".join(f"    {line}\n" for line in yaml_alias_bomb().splitlines())
    )
    return {
        "zip bomb": (zip_bomb(tmp_path / "bomb.zip"), [], "times its packed 2.0 MiB (limit 200:1"),
        "description": (
            long_description,
            [],
            "field description is too long: 50000 characters (limit 10000)",
        ),
        "alias bomb": (aliases, [], "YAML anchors and aliases are not allowed in a manifest"),
        "tag": (
            write_bundle(tmp_path / "tag"),
            ["--tag", f"note={'y' * 2000}"],
            "field tags['note'] is too long: 2000 characters (limit 1024)",
        ),
    }


def test_push_refuses_bombs_and_oversized_fields_in_one_line(
    cli: Cli, tmp_home: Path, tmp_path: Path
) -> None:
    for case, (bundle, extra, message) in _bad_bundles(tmp_path).items():
        result = cli("push", bundle, *extra)
        assert result.code == 2, (case, result)
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, (case, result.err)
        assert message in result.err, (case, result.err)
    assert "no models yet" in cli("models").out
    assert sum(p.stat().st_size for p in _files(tmp_home)) < MIB  # the zip bomb was not unpacked


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "tiny") as mount:
        yield mount


@pytest.mark.parametrize("full", ["cache", "store"])
def test_push_on_a_full_disk_is_one_line_and_leaves_nothing(
    cli: Cli, tiny_disk: Path, tmp_home: Path, tmp_path: Path, full: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELRUNNER_CACHE_DIR", str(tiny_disk if full == "cache" else tmp_home / "cache"))
    monkeypatch.setenv("MODELRUNNER_STORE_URL", str(tiny_disk if full == "store" else tmp_home / "artifacts"))
    bundle = write_bundle(tmp_path / "big", payload=random.Random(4).randbytes(3 * MIB))  # incompressible
    result = cli("push", bundle)
    assert result.code == 2, result
    what = "the packed bundle in" if full == "cache" else "artifact"
    assert result.err.startswith(f"error: disk full while writing {what} "), result.err
    assert result.err.rstrip().endswith(": No space left on device") and result.err.count("\n") == 1
    assert "no models yet" in cli("models").out
    assert _files(tiny_disk) == []  # no half-written archive or upload
    assert cli("push", write_bundle(tmp_path / "small", payload=b"small")).code == 0  # space is back


def test_models_and_audit_show_one_page_with_a_hint(cli: Cli, tmp_path: Path) -> None:
    for name in ("m1", "m2", "m3"):
        assert cli("push", write_bundle(tmp_path / name, name=name, payload=name.encode())).code == 0
    first = cli("models", "--limit", "2").out
    assert " m1 " in first and " m2 " in first and " m3 " not in first
    assert "models 1-2 of 3; next page: modelrunner models --offset 2 --limit 2" in first
    last = cli("models", "--offset", "2", "--limit", "2").out
    assert " m3 " in last and " m1 " not in last and "next page" not in last
    assert "no models past offset 5 (there are 3)" in cli("models", "--offset", "5").out
    audit = cli("audit", "--limit", "2").out
    assert "newest 2 entries shown; older ones: modelrunner audit --limit 20" in audit
    assert "older ones" not in cli("audit", "--limit", "100").out
