"""push / models / show / alias / contract / audit through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Cli


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
        for name, target in (("iris", "iris@production"), ("canary", "iris@2"), ("newest", "iris"),
                             ("trial", "iris@staging")):
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
        registry.record_evaluation("iris", 1, metrics={"accuracy": 0.95, "per_class": {"a": 1.0}},
                                   passed=True, dataset_name="iris-test")
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


def test_contract_proto_compiles_to_a_stub_that_calls_the_server(cli: Cli, iris_bundle: Path, tmp_home: Path,
                                                                 tmp_path: Path) -> None:
    """The CLI's .proto has the package the server serves (gRPC method names include it): a stub compiled from
    it with protoc calls the endpoint; ``--endpoint`` renders it for an endpoint with another name."""
    import grpc
    from grpc_helpers import compile_proto, grpc_stack

    def push(registry: object, _root: Path) -> None:
        registry.push(iris_bundle, alias="production")  # type: ignore[attr-defined]

    row = [5.1, 3.5, 1.4, 0.2]
    with grpc_stack(tmp_home, push, {"iris": "iris@production", "iris-canary": "iris@production"}) as stack, \
            grpc.insecure_channel(stack.grpc) as channel:
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
