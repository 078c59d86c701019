"""Protobuf-native endpoints (the Acumos way): the endpoint's own ``Request``/``Response`` messages.

Shared by ``POST /v1/endpoints/{name}/predict`` with ``Content-Type: application/x-protobuf`` and by the
per-contract gRPC service ``modelrunner.<endpoint>.Model/Predict`` (``grpc.native``). Bytes are decoded with
the contract of the version serving *now* (so a swap is picked up at once) through ``contract.proto``'s
run-time message classes; no protoc at run time. The ``.proto`` text is served by version: the current
one, an older contract version, or a model version's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from modelrunner.contract import Contract
from modelrunner.contract.codecs import decode_json_request, encode_json_response
from modelrunner.contract.proto import SERVICE, render_proto
from modelrunner.errors import NotFound
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import request_meta
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane
from modelrunner.server.http import json_response
from modelrunner.server.native.protocore import (
    PROTOBUF,
    answer_headers,
    answering_contract,
    decode_request,
    encode_response,
    handles,
    intercept,
    is_protobuf,
    package_of,
    predict,
    service_of,
    wants_protobuf,
)
from modelrunner.server.wire import load_request_json


async def http_predict(
    plane: DataPlane, endpoint: Endpoint, body: bytes, headers: Mapping[str, str]
) -> Response:
    """``POST /v1/endpoints/{name}/predict`` when the body is protobuf or a protobuf answer is wanted."""
    accept, max_rows = headers.get("accept"), plane.max_rows
    rid = headers.get(request_meta.REQUEST_ID)
    if is_protobuf(headers.get("content-type")):
        data, pred = await predict(plane, endpoint, body, "protobuf", request_id=rid, headers=headers.get)
        if accept is None or wants_protobuf(accept) or "json" not in accept:
            return Response(data, media_type=PROTOBUF, headers=answer_headers(endpoint, pred))
        out: dict[str, Any] = {
            "endpoint": endpoint.name,
            "model": pred.model,
            "version": pred.version,
            **request_meta.body_fields(pred),
        }
        out.update(encode_json_response(pred.columns, "instances"))
        return json_response(out, headers=request_meta.headers_of(pred))
    large = len(body) > OFFLOAD_BYTES
    doc = await load_request_json(body, max_rows, large)
    sticky = request_meta.lookup(doc, headers.get) if endpoint.sticky_key else None
    pred = await plane.infer(
        endpoint,
        lambda c: decode_json_request(doc, c.inputs, max_rows=max_rows)[0],
        "protobuf",
        offload=large,
        request_id=rid,
        sticky=sticky,
    )
    return Response(
        encode_response(endpoint, pred), media_type=PROTOBUF, headers=answer_headers(endpoint, pred)
    )


# -- the .proto, by version --------------------------------------------------------------------------------


async def contract_of(
    endpoint: Endpoint, registry: Any, *, version: int | None = None, model_version: int | None = None
) -> Contract:
    """The serving contract; or contract version ``version``; or the contract of ``model_version``."""
    contract = endpoint.contract  # Unavailable while nothing is loaded
    dep = endpoint.current
    assert dep is not None
    if model_version is not None:
        if model_version == dep.version:
            return contract
        mv = await asyncio.to_thread(_registry(registry).resolve, f"{dep.model}@{model_version}")
        of_version: Contract = mv.contract
        return of_version
    if version is None or version == contract.version:
        return contract
    return await asyncio.to_thread(
        _find_contract_version, _registry(registry), endpoint.name, dep.model, version
    )


def _registry(registry: Any) -> Any:
    if registry is None:
        raise NotFound("this server has no registry: only the serving contract is known")
    return registry


def _find_contract_version(registry: Any, endpoint: str, model: str, version: int) -> Contract:
    """The newest model version whose contract has ``version`` (every push records its contract)."""
    versions = registry.model(model).versions
    for mv in reversed(versions):
        if mv.contract.version == version:
            return mv.contract  # type: ignore[no-any-return]
    known = sorted({mv.contract.version for mv in versions})
    raise NotFound(
        f"endpoint {endpoint!r} (model {model!r}) has no contract version {version} "
        f"(contract versions: {', '.join(map(str, known))})"
    )


async def proto_response(
    endpoint: Endpoint, registry: Any, version: int | None, model_version: int | None
) -> Response:
    """``GET /v1/endpoints/{name}/contract.proto``: proto3 text with a ``Predict`` service."""
    contract = await contract_of(endpoint, registry, version=version, model_version=model_version)
    text = render_proto(contract, package=package_of(endpoint.name), service=SERVICE)
    return Response(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"x-modelrunner-contract-version": str(contract.version)},
    )


__all__ = [
    "PROTOBUF",
    "SERVICE",
    "answer_headers",
    "answering_contract",
    "contract_of",
    "decode_request",
    "encode_response",
    "handles",
    "http_predict",
    "intercept",
    "is_protobuf",
    "package_of",
    "predict",
    "proto_response",
    "service_of",
    "wants_protobuf",
]
