"""The hot path without FastAPI: a plain JSON ``POST /v1/endpoints/{name}/predict`` answered on raw ASGI.

A request is *plain* when it has a JSON body (``content-type: application/json``), no query string, does
not ask for protobuf, and names an endpoint this worker serves. It gets exactly what the routed
``native.rest.predict`` answers (same body, same version headers, same error bodies, same metrics through
:meth:`DataPlane.infer`), without building a Starlette ``Request``, matching routes or passing middleware.
:func:`intercept` is the one interception, used by ``native.fastpath.FastApp`` (before routing) and by the
worker's ``shell.WorkerApp`` (before FastAPI is even imported): nothing here imports FastAPI or Starlette.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from modelrunner.contract import Contract
from modelrunner.contract.codecs import (
    decode_json_request,
    encode_json_response,
    lists_to_rows,
    select_outputs,
    wanted_outputs,
)
from modelrunner.errors import ModelrunnerError
from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import request_meta, wire
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane
from modelrunner.server.wire import Receive, Scope, Send

PREFIX = "/v1/endpoints/"
SUFFIX = "/predict"
JSON = b"application/json"


def endpoint_for(endpoints: Mapping[str, Endpoint], scope: Scope) -> Endpoint | None:
    """The endpoint a plain predict request (see the module docstring) is for, else None."""
    if scope.get("query_string") or not read_head(scope["headers"])[0]:
        return None
    return endpoint_at(endpoints, scope["path"])


def read_head(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, int | None, bool]:
    """One pass over a request's raw headers: (plain -- a JSON body not asking for a protobuf answer --, its
    ``content-length`` or None, whether it has a ``transfer-encoding``). The length and transfer-encoding
    are only read through for a plain request."""
    json_body = chunked = False
    length = None
    for key, value in headers:
        if key == b"content-length":
            if value.isdigit():
                length = int(value)
        elif key == b"content-type":
            json_body = value == JSON or value.split(b";", 1)[0].strip().lower() == JSON
        elif key == b"transfer-encoding":
            chunked = True
        elif key == b"accept" and b"protobuf" in value.lower():
            return False, length, chunked
    return json_body, length, chunked


def endpoint_at(endpoints: Mapping[str, Endpoint], path: str) -> Endpoint | None:
    """The endpoint whose predict path ``path`` is (``/v1/endpoints/{name}/predict``), else None."""
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    name = path[len(PREFIX) : -len(SUFFIX)]
    if not name or "/" in name:
        return None
    return endpoints.get(name)


async def intercept(plane: DataPlane, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``scope`` here when it is a plain predict request (True), else leave it (False)."""
    if scope["method"] != "POST" or plane.settings.require_auth_for_predict:  # then the routed app checks
        return False
    endpoint = endpoint_for(plane.endpoints, scope)
    if endpoint is None:
        return False
    await answer(plane, endpoint, scope, receive, send)
    return True


async def answer(plane: DataPlane, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, then :func:`respond`; a body over ``max_request_bytes`` is a 413."""
    try:
        wire.check_declared_length(scope, plane.max_bytes)  # read_body, inlined for a one-message body
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away
        raw = (
            await wire.read_rest(receive, message, plane.max_bytes)
            if message.get("more_body", False)
            else wire.whole_body(message, plane.max_bytes)
        )
    except Exception as exc:  # noqa: BLE001 - ours name the error; anything else is the app's last-resort 500
        await wire.send_answer(send, _error(scope, exc))
        return
    if raw is not None:
        await wire.send_answer(send, await respond(plane, endpoint, scope, raw))


async def respond(plane: DataPlane, endpoint: Endpoint, scope: Scope, raw: bytes) -> wire.Answer:
    """Predict on the request body ``raw``; the answer as its ``http.response.start`` message and its body.
    Errors become the same bodies the app's error handlers write. More than ``max_request_rows`` rows is a
    413; a large body is parsed and decoded in a thread (OFFLOAD_BYTES)."""
    max_rows = plane.max_rows
    try:
        large = len(raw) > OFFLOAD_BYTES
        body = (
            await wire.load_request_json(raw, max_rows, True)
            if large
            else wire.parse_request_json(raw, max_rows)
        )
        style = wire.request_style(body)
        decode = _Decoder(body, max_rows)
        headers = scope["headers"]
        sticky = (
            request_meta.chain(request_meta.mapping_lookup(body), request_meta.raw_header_lookup(headers))
            if endpoint.sticky_key
            else None
        )
        body = None  # the decoder holds it until it has decoded it
        pred = await plane.infer(
            endpoint,
            decode,
            "rest",
            offload=large,
            sticky=sticky,
            request_id=request_meta.raw_header(headers, b"x-request-id"),
        )
        wanted = decode.wanted
        outputs = select_outputs(pred.columns, wanted) if wanted is not None else pred.columns
        # the answer to a large request is large too: encoding 50,000 rows held the loop ~2 s
        payload = (
            await asyncio.to_thread(_encode, endpoint.name, pred, outputs, style)
            if large
            else _encode(endpoint.name, pred, outputs, style)
        )
    except Exception as exc:  # noqa: BLE001 - ours name the error; anything else is the app's last-resort 500
        return _error(scope, exc)
    return wire.response_start(200, payload, wire.raw_version_headers(pred)), payload


def _error(scope: Scope, exc: Exception) -> wire.Answer:
    """The answer the app's error handlers give: a ModelrunnerError's status and body, else a logged 500."""
    if isinstance(exc, ModelrunnerError):
        status, err, extra = wire.modelrunner_error(scope["path"], exc)
        return wire.json_answer(status, err, extra)
    status, err = wire.unexpected_error(scope["method"], scope["path"], exc)
    return wire.json_answer(status, err)


class _Decoder:
    """A request's columns from its parsed JSON body, against the contract serving it (DataPlane.infer
    calls it); also reads the outputs the request asks for (``wanted``: None for all of them)."""

    __slots__ = ("body", "max_rows", "wanted")

    def __init__(self, body: Any, max_rows: int | None) -> None:
        self.body, self.max_rows = body, max_rows
        self.wanted: tuple[str, ...] | None = None

    def __call__(self, contract: Contract) -> Any:
        body = self.body
        self.wanted = wanted_outputs(body, contract.outputs)  # before predicting: a bad name is a 422
        columns = decode_json_request(body, contract.inputs, max_rows=self.max_rows)[0]
        # drop the parsed JSON (a Python object per value) before waiting for a batch: with many requests
        # in flight, keeping them all alive made parsing and decoding ~3x slower (cache misses)
        self.body = body = None
        return columns


def _encode(name: str, pred: Any, columns: Any, style: str) -> bytes:
    meta: dict[str, Any] = {
        "endpoint": name,
        "model": pred.model,
        "version": pred.version,
        **request_meta.body_fields(pred),
    }
    rows = _number_rows(columns) if style == "instances" else None
    meta.update({"predictions": rows} if rows is not None else encode_json_response(columns, style))
    return wire.dumps(meta)


_NUMBERS = frozenset("biuf")


def _number_rows(columns: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``encode_json_response``'s rows when every output is a non-empty array of bools or numbers (what
    ``tolist`` writes as is: the common answer, a label and probabilities), else None."""
    lists = {}
    for name, col in columns.items():
        if type(col) is not np.ndarray or col.dtype.kind not in _NUMBERS:
            return None
        lists[name] = col.tolist()
    return lists_to_rows(lists) if lists else None
