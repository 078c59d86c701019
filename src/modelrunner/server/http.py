"""HTTP plumbing of the routed (FastAPI) app: orjson responses, bounded body reading, error mapping.

The bodies themselves (JSON, the error shape of each protocol) are in :mod:`modelrunner.server.wire`, shared
with the parts of a worker that answer before FastAPI is imported.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from modelrunner.errors import ModelrunnerError
from modelrunner.server import wire
from modelrunner.server.dataplane import DataPlane
from modelrunner.server.wire import JSON, Receive, Scope, Send, dumps, parse_json, status_of

log = logging.getLogger("modelrunner.server.http")

__all__ = [
    "JSON",
    "CatchErrors",
    "ORJSONResponse",
    "dumps",
    "error_response",
    "install_error_handlers",
    "json_response",
    "parse_json",
    "plane_of",
    "read_body",
    "status_of",
]


class ORJSONResponse(JSONResponse):
    """A JSON response rendered with :func:`dumps` (numpy-aware). A ``JSONResponse`` so that FastAPI
    documents the routes' response models (any other class is documented as a plain string)."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON, headers=headers)


def plane_of(request: Request) -> DataPlane:
    """The app's :class:`DataPlane` (``create_app`` puts it in ``app.state``)."""
    plane: DataPlane = request.app.state.dataplane
    return plane


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing anything over ``limit`` bytes (declared or streamed) with a 413
    (:func:`wire.read_body`); a client that went away is Starlette's ``ClientDisconnect``."""
    body = await wire.read_body(request.scope, request.receive, limit)
    if body is None:
        raise ClientDisconnect()
    return body


def error_response(
    request: Request, status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> Response:
    """The error body of the protocol ``request`` speaks."""
    return json_response(wire.error_body(request.url.path, code, message, field, **extra), status)


async def _on_modelrunner_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelrunnerError)
    status, body, headers = wire.modelrunner_error(request.url.path, exc)
    return json_response(body, status, headers or None)


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


class CatchErrors:
    """ASGI middleware answering an unhandled error with a 500 (logged once, with its traceback).

    An ``Exception`` handler registered on the app runs in Starlette's outermost middleware, which re-raises
    the error after answering, so the server logged a second traceback. A client that goes away mid-body is
    not an error of the server: logged at INFO, without a traceback, and nothing is answered.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except ClientDisconnect:
            log.info("client went away during %s %s", scope["method"], scope["path"])
        except Exception as exc:  # noqa: BLE001 - the last resort: a 500 without a traceback in it
            status, body = wire.unexpected_error(scope["method"], scope["path"], exc)
            if not started:
                await wire.send_json(send, status, body)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the protocol's error body; never a traceback in a response."""
    app.add_exception_handler(ModelrunnerError, _on_modelrunner_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_middleware(CatchErrors)
