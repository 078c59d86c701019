"""HTTP plumbing shared by the adapters: orjson bodies, bounded body reading, error mapping.

Errors keep one shape per protocol: native routes answer ``{"error": {"code", "message", "field"}}``; the
Open Inference Protocol (``/v2``) answers ``{"error": "<message>"}`` as its spec requires. The status comes
from :data:`modelrunner.errors.HTTP_STATUS` by ``code``, except a :class:`ValidationError` which is a 422.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from modelrunner.errors import (
    HTTP_STATUS,
    InvalidArgument,
    ModelrunnerError,
    ResourceExhausted,
    ValidationError,
)

log = logging.getLogger(__name__)

JSON = "application/json"
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


class ORJSONResponse(Response):
    """A JSON response rendered with :func:`dumps` (numpy-aware)."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing anything over ``limit`` bytes (declared or streamed) with a 413."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ResourceExhausted(f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ResourceExhausted(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; malformed JSON is a 400 saying where it broke."""
    if not body:
        raise InvalidArgument("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON: {exc}") from exc


def status_of(exc: ModelrunnerError) -> int:
    if isinstance(exc, ValidationError):
        return 422
    return HTTP_STATUS.get(exc.code, 500)


def _is_v2(request: Request) -> bool:
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def error_response(request: Request, status: int, code: str, message: str,
                   field: str | None = None, **extra: Any) -> Response:
    """The error body of the protocol ``request`` speaks."""
    if _is_v2(request):
        return json_response({"error": message}, status)
    err: dict[str, Any] = {"code": code, "message": message, "field": field}
    err.update(extra)
    return json_response({"error": err}, status)


async def _on_modelrunner_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelrunnerError)
    extra = {k: v for k, v in exc.details.items() if k != "field" and _plain(v)}
    field = getattr(exc, "field", None)
    response = error_response(request, status_of(exc), exc.code, exc.message, field, **extra)
    if exc.code == "unauthenticated":
        response.headers["www-authenticate"] = "Bearer"
    return response


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    message = f"{field}: {first.get('msg', 'invalid request')}" if field else first.get("msg", "invalid")
    return error_response(request, 422, "invalid_argument", message, field)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "invalid_argument", 401: "unauthenticated"}
    code = codes.get(exc.status_code, "internal")
    return error_response(request, exc.status_code, code, str(exc.detail))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal", f"internal error: {type(exc).__name__}")


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the protocol's error body; never a traceback in a response."""
    app.add_exception_handler(ModelrunnerError, _on_modelrunner_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
