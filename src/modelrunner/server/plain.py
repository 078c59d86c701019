"""The hot path without FastAPI: a plain JSON ``POST /v1/endpoints/{name}/predict`` answered on raw ASGI.

A request is *plain* when it has a JSON body (``content-type: application/json``), no query string, does
not ask for protobuf, and names an endpoint this worker serves. It gets exactly what the routed
``rest.predict`` answers (same body, same version headers, same error bodies, same metrics through
:func:`dataplane.infer`), without building a Starlette ``Request``, matching routes or passing middleware.
Used by ``fastpath.FastApp`` (before routing) and by the worker's ``shell.WorkerApp`` (before FastAPI is even
imported): nothing here imports FastAPI or Starlette.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from modelrunner.contract.codecs import decode_json_request, encode_json_response
from modelrunner.errors import ModelrunnerError, ResourceExhausted
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import dataplane, request_meta, wire

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PREFIX = "/v1/endpoints/"
SUFFIX = "/predict"


def endpoint_for(endpoints: Mapping[str, Any], scope: Scope) -> Any | None:
    """The endpoint a plain predict request (see the module docstring) is for, else None."""
    path: str = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)) or scope.get("query_string"):
        return None
    name = path[len(PREFIX):-len(SUFFIX)]
    if not name or "/" in name:
        return None
    json_body = False
    for key, value in scope["headers"]:
        if key == b"content-type":
            json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif key == b"accept" and b"protobuf" in value.lower():
            return None
    if not json_body:
        return None
    return endpoints.get(name)


async def answer(endpoint: Endpoint, limit: int, scope: Scope, receive: Receive, send: Send, *,
                 max_rows: int | None = None) -> None:
    """Read, predict, answer; errors become the same bodies the app's error handlers write. More than
    ``max_rows`` rows is a 413; a large body is parsed and decoded in a thread (dataplane.OFFLOAD_BYTES)."""
    try:
        raw = await read_body(scope, receive, limit)
        if raw is None:
            return  # the client went away
        large = len(raw) > dataplane.OFFLOAD_BYTES
        parsed = [await wire.load_request_json(raw, max_rows, True) if large
                  else wire.parse_request_json(raw, max_rows)]
        style = _style(parsed[0])

        def decode(contract: Any) -> Any:
            columns = decode_json_request(parsed[0], contract.inputs, max_rows=max_rows)[0]
            # drop the parsed JSON (a Python object per value) before waiting for a batch: with many
            # requests in flight, keeping them all alive made parsing and decoding ~3x slower (cache misses)
            parsed.clear()
            return columns

        headers = scope["headers"]
        sticky = request_meta.chain(request_meta.mapping_lookup(parsed[0]),
                                    request_meta.raw_header_lookup(headers)) if endpoint.sticky_key else None
        pred = await dataplane.infer(endpoint, decode, "rest", offload=large, sticky=sticky,
                                     request_id=request_meta.raw_header(headers, b"x-request-id"))
        meta: dict[str, Any] = {"endpoint": endpoint.name, "model": pred.model, "version": pred.version,
                                **request_meta.body_fields(pred)}
        # the answer to a large request is large too: encoding 50,000 rows held the loop ~2 s
        payload = await asyncio.to_thread(_encode, meta, pred.columns, style) if large \
            else _encode(meta, pred.columns, style)
    except ModelrunnerError as exc:
        status, body, headers = wire.modelrunner_error(scope["path"], exc)
        await send_json(send, status, body, headers)
        return
    except Exception as exc:  # noqa: BLE001 - the app's last-resort handler: a 500, logged, no traceback
        status, body = wire.unexpected_error(scope["method"], scope["path"], exc)
        await send_json(send, status, body)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json"),
        (b"x-modelrunner-model", pred.model.encode()), (b"x-modelrunner-version", str(pred.version).encode()),
        *request_meta.raw_headers_of(pred),
    ]})
    await send({"type": "http.response.body", "body": payload})


async def send_json(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    """Answer ``body`` as JSON with ``status`` (and extra ``headers``) on raw ASGI."""
    payload = wire.dumps(body)
    raw_headers = [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
    raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _encode(meta: dict[str, Any], columns: Any, style: str) -> bytes:
    meta.update(encode_json_response(columns, style))
    return wire.dumps(meta)


def _style(body: Any) -> str:
    if isinstance(body, dict) and "instances" not in body and isinstance(body.get("inputs"), dict):
        return "inputs"  # {"inputs": [rows]} (MLflow's tensor form) is rows, answered as rows
    return "instances"


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body (None if the client went away); over ``limit`` bytes is a 413, as in ``http.read_body``."""
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise ResourceExhausted(f"request body of {int(value)} bytes exceeds the limit of {limit} bytes")
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise ResourceExhausted(f"request body exceeds the limit of {limit} bytes")
        return body
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ResourceExhausted(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
