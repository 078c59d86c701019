"""The wire helpers, written once and without FastAPI: shared by the routed app (``server.http``), the
parts of a worker that answer before FastAPI is imported (``server.native.plain``, ``server.shell``) and
every protocol adapter — JSON bodies, bounded body reading on raw ASGI, the request style, the version
headers, and the error bodies.

Errors keep one shape per protocol: native routes answer ``{"error": {"code", "message", "field"}}``; the
Open Inference Protocol (``/v2``) answers ``{"error": "<message>"}`` as its spec requires. The status comes
from :data:`modelrunner.errors.HTTP_STATUS` by ``code``, except a :class:`ValidationError` which is a 422.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelrunner.errors import (
    HTTP_STATUS,
    InvalidArgument,
    ModelrunnerError,
    ResourceExhausted,
    ValidationError,
)
from modelrunner.server import request_meta

if TYPE_CHECKING:
    from modelrunner.runner.endpoint import Prediction

log = logging.getLogger("modelrunner.server.http")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Answer = tuple[dict[str, Any], bytes]
"""A whole answer: its ``http.response.start`` message and its body."""

JSON = "application/json"
MODEL_HEADER = "x-modelrunner-model"
VERSION_HEADER = "x-modelrunner-version"
_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    """What orjson cannot write natively: object/non-contiguous arrays, bytes, odd numpy scalars."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")  # as contract.codecs sends bytes
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """JSON bytes via orjson, numpy arrays and scalars included."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; malformed JSON is a 400 saying where it broke."""
    if not body:
        raise InvalidArgument("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON: {exc}") from exc


CONTAINERS_PER_ROW = 8
"""A JSON request may hold ``CONTAINERS_PER_ROW * max_request_rows`` arrays/objects (+1024): each costs ~80
bytes once parsed for 2 bytes on the wire, so 32 MiB of ``[[],[],...]`` took 1.2 GB before its 422."""


def check_json_containers(body: bytes, max_rows: int | None) -> None:
    """Refuse (413) a JSON body with more arrays/objects than :data:`CONTAINERS_PER_ROW` per allowed row,
    before parsing it; a body too small to hold that many is not even scanned (the hot path)."""
    if max_rows is None:
        return
    cap = CONTAINERS_PER_ROW * max_rows + 1024
    if len(body) <= 2 * cap:
        return
    count = body.count(b"[") + body.count(b"{")  # C speed (~10 ms for 32 MiB); brackets in strings count too
    if count > cap:
        raise ResourceExhausted(
            f"the JSON body holds {count} arrays/objects; at most {cap} are parsed "
            f"({CONTAINERS_PER_ROW} per row of max_request_rows={max_rows})",
            limit=max_rows,
        )


def parse_request_json(body: bytes, max_rows: int | None) -> Any:
    """A predict/infer request's JSON: :func:`check_json_containers`, then :func:`parse_json`."""
    check_json_containers(body, max_rows)
    return parse_json(body)


async def load_request_json(body: bytes, max_rows: int | None, offload: bool) -> Any:
    """:func:`parse_request_json`, in a thread when ``offload`` (a large body must not hold the loop)."""
    if offload:
        return await asyncio.to_thread(parse_request_json, body, max_rows)
    return parse_request_json(body, max_rows)


def status_of(exc: ModelrunnerError) -> int:
    if isinstance(exc, ValidationError):
        return 422
    return HTTP_STATUS.get(exc.code, 500)


def is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def error_body(path: str, code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error body of the protocol the request to ``path`` speaks."""
    if is_v2(path):
        return {"error": message}
    err: dict[str, Any] = {"code": code, "message": message, "field": field}
    err.update(extra)
    return {"error": err}


_HIDDEN: dict[str, str] = {}
"""Local folders (absolute paths) -> the placeholder clients see instead, longest first."""


def hide_paths(settings: Any) -> None:
    """Keep the registry's local folders (home, database, store, cache) out of client-facing messages.

    Errors name them for whoever runs the server (logs, CLI), but a client learns nothing from them except
    the server's file layout. Called once per app; a process serving several settings (tests) hides all.
    """
    from pathlib import Path

    found: dict[str, str] = {}
    db_url = settings.resolved_database_url()
    store = settings.resolved_store_url().removeprefix("file://")
    local = [
        ("<database>", db_url.split(":///", 1)[1] if db_url.startswith("sqlite:///") else None),
        ("<store>", store if "://" not in store else None),
        ("<cache>", str(settings.resolved_cache_dir())),
        ("<home>", str(settings.home)),
    ]
    for name, path in local:
        if path and path.startswith("/") and path != "/":
            for form in (path, str(Path(path).resolve())):
                found.setdefault(form.rstrip("/"), name)
    _HIDDEN.update(found)
    ordered = sorted(_HIDDEN.items(), key=lambda item: -len(item[0]))
    _HIDDEN.clear()
    _HIDDEN.update(ordered)


def redact(message: str) -> str:
    """``message`` with the local folders :func:`hide_paths` registered replaced by placeholders."""
    for path, name in _HIDDEN.items():
        if path in message:
            message = message.replace(path, name)
    return message


def modelrunner_error(path: str, exc: ModelrunnerError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` answering ``exc`` on a request to ``path`` (local folders hidden)."""
    extra = {
        k: redact(v) if isinstance(v, str) else v
        for k, v in exc.details.items()
        if k != "field" and _plain(v)
    }
    field = getattr(exc, "field", None) or exc.details.get("field")  # any InvalidArgument may name one
    headers = {"www-authenticate": "Bearer"} if exc.code == "unauthenticated" else {}
    if "retry_after_s" in exc.details:  # an overloaded endpoint: when to come back
        headers["retry-after"] = str(exc.details["retry_after_s"])
    return status_of(exc), error_body(path, exc.code, redact(exc.message), field, **extra), headers


def unexpected_error(method: str, path: str, exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Log an unhandled error (with its traceback) and return the 500 that answers it: no traceback in it."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return 500, error_body(path, "internal", f"internal error: {type(exc).__name__}")


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def media(content_type: str | None) -> str:
    """The media type of a ``Content-Type``/``Accept`` item, lower-case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def request_style(body: Any) -> str:
    """``instances`` or ``inputs``: a JSON predict request's form, which the response mirrors."""
    if isinstance(body, dict) and "instances" not in body and isinstance(body.get("inputs"), dict):
        return "inputs"  # {"inputs": [rows]} (MLflow's tensor form) is rows, answered as rows
    return "instances"


def version_headers(pred: Prediction) -> dict[str, str]:
    """The answering model version, the request id and the variant, as headers (also for bodies that
    cannot carry them, e.g. protobuf)."""
    from modelrunner.server.request_meta import headers_of

    return {MODEL_HEADER: pred.model, VERSION_HEADER: str(pred.version), **headers_of(pred)}


_RAW_MODEL = MODEL_HEADER.encode("latin-1")
_RAW_VERSION = VERSION_HEADER.encode("latin-1")


def raw_version_headers(pred: Prediction) -> list[tuple[bytes, bytes]]:
    """:func:`version_headers` as raw ASGI headers (for answers sent with :func:`send_raw`)."""
    return [
        (_RAW_MODEL, pred.model.encode("latin-1")),
        (_RAW_VERSION, str(pred.version).encode("latin-1")),
        *request_meta.raw_headers_of(pred),
    ]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body (None if the client went away); over ``limit`` bytes (declared or streamed) is a 413."""
    check_declared_length(scope, limit)
    message = await receive()
    if message["type"] != "http.request":
        return None
    if not message.get("more_body", False):
        return whole_body(message, limit)
    return await read_rest(receive, message, limit)


def check_declared_length(scope: Scope, limit: int) -> None:
    """A 413 when the request's ``content-length`` is over ``limit`` bytes."""
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise ResourceExhausted(f"request body of {int(value)} bytes exceeds the limit of {limit} bytes")


def whole_body(message: MutableMapping[str, Any], limit: int) -> bytes:
    """The body of a request sent in one ``http.request`` message (no ``more_body``); a 413 over ``limit``.
    With :func:`check_declared_length`, what :func:`read_body` does without a coroutine of its own (the
    1-row hot path: one message)."""
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise ResourceExhausted(f"request body exceeds the limit of {limit} bytes")
    return body


async def read_rest(receive: Receive, message: MutableMapping[str, Any], limit: int) -> bytes | None:
    """The body of a request whose first message (``more_body``) was ``message``: the rest received."""
    body: bytes = message.get("body", b"")
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


async def send_json(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    """Answer ``body`` as JSON with ``status`` (and extra ``headers``) on raw ASGI."""
    await send_bytes(send, status, dumps(body), headers)


async def send_bytes(
    send: Send,
    status: int,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    """Answer ``payload`` with ``status`` (and extra ``headers``) on raw ASGI."""
    await send_raw(send, status, payload, _raw_headers(headers), content_type)


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """What :func:`send_json` sends, as an :data:`Answer`."""
    payload = dumps(body)
    return response_start(status, payload, _raw_headers(headers)), payload


def _raw_headers(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()] if headers else []


async def send_raw(
    send: Send,
    status: int,
    payload: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"application/json",
) -> None:
    """:func:`send_bytes` with the extra headers already raw (lower-case latin-1 bytes)."""
    await send_answer(send, (response_start(status, payload, headers, content_type), payload))


async def send_answer(send: Send, reply: Answer) -> None:
    """Send an :data:`Answer` on raw ASGI."""
    start, payload = reply
    await send(start)
    await send({"type": "http.response.body", "body": payload})


def response_start(
    status: int,
    payload: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"application/json",
) -> dict[str, Any]:
    """The ``http.response.start`` message of :func:`send_raw` (``headers`` raw, after the content ones)."""
    raw = [(b"content-length", str(len(payload)).encode()), (b"content-type", content_type), *headers]
    return {"type": "http.response.start", "status": status, "headers": raw}
