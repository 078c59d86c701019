"""A contract as text in the formats people download: proto3, JSON Schema, JSON, V2 model metadata.

Shared by ``modelrunner contract`` and the catalog's contract downloads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from modelrunner.contract.types import Contract


class ContractFormat(StrEnum):
    proto = "proto"
    json_schema = "json-schema"
    json = "json"
    v2 = "v2"


def render_contract(
    contract: Contract,
    fmt: ContractFormat,
    *,
    name: str,
    flavor: str = "",
    versions: Sequence[int] = (),
    endpoint: str | None = None,
) -> str:
    """``contract`` of model ``name`` in ``fmt``; ``proto`` as the server serves it to endpoint ``endpoint``
    (default: an endpoint named like the model), so a stub compiled from it can call that endpoint;
    ``v2`` lists the model's ``versions`` and its ``flavor`` as the V2 metadata endpoint does."""
    if fmt is ContractFormat.proto:
        from modelrunner.contract.proto import endpoint_package, render_proto

        return render_proto(contract, endpoint_package(endpoint or name))
    data: Any
    if fmt is ContractFormat.json_schema:
        from modelrunner.contract.schema import json_schema

        data = json_schema(contract)
    elif fmt is ContractFormat.v2:
        from modelrunner.contract.schema import v2_metadata

        data = v2_metadata(contract, name, [str(v) for v in versions], flavor)
    else:
        data = contract.to_dict()
    return json.dumps(data, indent=2, sort_keys=False)
