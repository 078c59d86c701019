"""contract.render: a contract as proto3, JSON Schema, JSON and V2 metadata (CLI, catalog downloads)."""

from __future__ import annotations

import json

from modelrunner.contract import Contract, DType, Field
from modelrunner.contract.render import ContractFormat, render_contract

CONTRACT = Contract.build(
    inputs=[Field(name="input", dtype=DType.FLOAT64, shape=[4])],
    outputs=[Field(name="label", dtype=DType.INT64)],
)


def test_proto_names_the_endpoint_package() -> None:
    text = render_contract(CONTRACT, ContractFormat.proto, name="iris", endpoint="flowers")
    assert 'syntax = "proto3";' in text
    assert "package modelrunner.flowers;" in text
    assert "package modelrunner.iris;" in render_contract(CONTRACT, ContractFormat.proto, name="iris")


def test_json_formats() -> None:
    plain = json.loads(render_contract(CONTRACT, ContractFormat.json, name="iris"))
    assert [f["name"] for f in plain["inputs"]] == ["input"]
    schema = json.loads(render_contract(CONTRACT, ContractFormat.json_schema, name="iris"))
    assert "input" in json.dumps(schema)
    v2 = json.loads(
        render_contract(CONTRACT, ContractFormat.v2, name="iris", flavor="sklearn", versions=[1, 3])
    )
    assert v2["name"] == "iris" and v2["versions"] == ["1", "3"] and v2["platform"] == "sklearn"
    assert v2["inputs"][0]["shape"] == [-1, 4]
