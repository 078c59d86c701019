"""Protobuf predictions without a web framework, shared by the routed protobuf route (``native.protobuf``),
the per-contract gRPC services (``grpc.native``) and :func:`intercept`: that one answers a plain protobuf
predict on raw ASGI before routing (as ``native.plain`` does for JSON). No Starlette or FastAPI import here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelrunner.contract import Contract
from modelrunner.errors import ModelrunnerError
from modelrunner.runner.endpoint import Endpoint, Prediction
from modelrunner.server import request_meta, wire
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane
from modelrunner.server.wire import Receive, Scope, Send, media, version_headers

PROTOBUF = "application/x-protobuf"
_PROTOBUF_TYPES = frozenset(
    {PROTOBUF, "application/protobuf", "application/vnd.google.protobuf", "application/x-google-protobuf"}
)
# contract.proto (protobuf's runtime) is imported on the first protobuf request: the worker's shell imports
# this module to intercept one, and a worker that never gets one never imports protobuf (docs/performance.md)


def package_of(endpoint: str) -> str:
    """An endpoint's proto package: ``digits`` -> ``modelrunner.digits`` (the one rule, in contract.proto)."""
    from modelrunner.contract.proto import endpoint_package

    return endpoint_package(endpoint)


def service_of(endpoint: str) -> str:
    """The full gRPC service name of an endpoint: ``modelrunner.digits.Model``."""
    from modelrunner.contract.proto import SERVICE

    return f"{package_of(endpoint)}.{SERVICE}"


def is_protobuf(content_type: str | None) -> bool:
    return media(content_type) in _PROTOBUF_TYPES


def wants_protobuf(accept: str | None) -> bool:
    """True when ``Accept`` names a protobuf type before (or without) JSON."""
    for part in (accept or "").split(","):
        kind = media(part)
        if kind in _PROTOBUF_TYPES:
            return True
        if kind in ("application/json", "application/*"):
            return False
    return False


def handles(headers: Mapping[str, str]) -> bool:
    """Does this predict request speak protobuf (body or wanted answer)?"""
    return is_protobuf(headers.get("content-type")) or wants_protobuf(headers.get("accept"))


def decode_request(
    data: bytes, contract: Contract, package: str, max_rows: int | None = None
) -> dict[str, Any]:
    """``Request`` bytes -> validated input columns of ``contract`` (zero rows answer zero rows; more than
    ``max_rows`` is a 413, counted on the wire before any row is decoded)."""
    from modelrunner.contract.proto import request_to_columns

    return dict(request_to_columns(data, contract, package, max_rows=max_rows))


def answering_contract(endpoint: Endpoint, pred: Prediction) -> Contract:
    """The contract of the version that produced ``pred`` (the current one unless a swap just happened)."""
    live = endpoint.experiment
    for dep in (endpoint.current, endpoint.previous, live.candidate if live is not None else None):
        if dep is not None and dep.model == pred.model and dep.version == pred.version:
            return dep.contract
    return endpoint.contract


async def predict(
    plane: DataPlane,
    endpoint: Endpoint,
    data: bytes,
    protocol: str,
    *,
    request_id: str | bytes | None = None,
    headers: Callable[[str], Any] | None = None,
    lookup: request_meta.Lookup | None = None,
) -> tuple[bytes, Prediction]:
    """``Request`` bytes in, ``Response`` bytes out, on the endpoint's serving version; ``headers`` looks up
    a header or gRPC metadata value (sticky keys), or ``lookup`` is that lookup already made."""
    package, max_rows = package_of(endpoint.name), plane.max_rows
    sticky = lookup
    if sticky is None and headers is not None and endpoint.sticky_key:
        sticky = request_meta.header_lookup(headers)
    pred = await plane.infer(
        endpoint,
        lambda c: decode_request(data, c, package, max_rows),
        protocol,
        offload=len(data) > OFFLOAD_BYTES,
        request_id=request_id,
        sticky=sticky,
    )
    return encode_response(endpoint, pred), pred


def encode_response(endpoint: Endpoint, pred: Prediction) -> bytes:
    from modelrunner.contract.proto import columns_to_response_bytes

    contract = answering_contract(endpoint, pred)
    return columns_to_response_bytes(pred.columns, contract, package_of(endpoint.name))


def answer_headers(endpoint: Endpoint, pred: Prediction) -> dict[str, str]:
    """Which version answered, the request id and the variant (the protobuf body has no room for them)."""
    contract = answering_contract(endpoint, pred)
    return {
        **version_headers(pred),
        "x-modelrunner-ref": pred.ref,
        "x-modelrunner-contract-version": str(contract.version),
    }


_PREFIX, _SUFFIX = "/v1/endpoints/", "/predict"


def _plain_endpoint(plane: DataPlane, scope: Scope) -> Endpoint | None:
    """The endpoint of a plain protobuf predict: ``POST /v1/endpoints/{name}/predict``, no query string, a
    protobuf body and a protobuf answer wanted (or nothing said), on an endpoint this worker serves."""
    path: str = scope["path"]
    if scope["method"] != "POST" or scope.get("query_string") or plane.settings.require_auth_for_predict:
        return None  # with auth, the routed app checks the token
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    content_type = accept = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value.decode("latin-1")
        elif key == b"accept":
            accept = value.decode("latin-1")
    if not is_protobuf(content_type) or not (
        accept is None or wants_protobuf(accept) or "json" not in accept
    ):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return plane.endpoints.get(name) if name and "/" not in name else None


async def intercept(plane: DataPlane, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``scope`` here when it is a plain protobuf predict (True), else leave it to the routed app: the
    same bytes, headers and error bodies as ``native.protobuf.http_predict``, without routing (~70 us)."""
    endpoint = _plain_endpoint(plane, scope)
    if endpoint is None:
        return False
    headers = scope["headers"]
    try:
        raw = await wire.read_body(scope, receive, plane.max_bytes)
        if raw is None:
            return True  # the client went away
        lookup = request_meta.raw_header_lookup(headers) if endpoint.sticky_key else None
        data, pred = await predict(
            plane,
            endpoint,
            raw,
            "protobuf",
            request_id=request_meta.raw_header(headers, b"x-request-id"),
            lookup=lookup,
        )
    except ModelrunnerError as exc:
        status, body, extra = wire.modelrunner_error(scope["path"], exc)
        await wire.send_json(send, status, body, extra)
        return True
    except Exception as exc:  # noqa: BLE001 - the app's last-resort handler: a 500, logged, no traceback
        status, body = wire.unexpected_error(scope["method"], scope["path"], exc)
        await wire.send_json(send, status, body)
        return True
    await wire.send_bytes(send, 200, data, answer_headers(endpoint, pred), PROTOBUF.encode())
    return True
