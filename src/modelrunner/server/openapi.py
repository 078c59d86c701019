"""The served OpenAPI document (``/openapi.json``): FastAPI's, completed where it would not tell the truth.

* The hot-path routes (predict, infer) are plain Starlette routes: their operations are written by hand
  (``rest.OPENAPI_PATHS``, ``v2.OPENAPI_PATHS``) and added here.
* Every error is answered with this server's bodies (server/wire.py ``error_body``), not FastAPI's
  ``{"detail": [...]}``: native routes ``{"error": {"code", "message", "field"}}``, ``/v2`` routes
  ``{"error": "<message>"}``, request validation included (422). Each operation declares them as ``4XX`` and
  ``5XX`` (plus the codes it documents by name), and FastAPI's ``HTTPValidationError`` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI

from modelrunner.server.wire import is_v2

ERROR = "Error"
V2_ERROR = "V2Error"
SCHEMAS: dict[str, Any] = {
    ERROR: {
        "type": "object",
        "required": ["error"],
        "description": "An error of the native API (`/v1`, `/admin`, health).",
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "invalid_argument, not_found, unavailable, ...",
                    },
                    "message": {"type": "string", "description": "What is wrong, naming the field or value."},
                    "field": {"type": ["string", "null"], "description": "The input field at fault, if any."},
                },
            }
        },
    },
    V2_ERROR: {
        "type": "object",
        "required": ["error"],
        "description": "An Open Inference Protocol (`/v2`) error.",
        "properties": {"error": {"type": "string"}},
    },
}
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def document(app: FastAPI, hand_written: Iterable[Mapping[str, Any]]) -> None:
    """Make ``app.openapi()`` serve the completed document (built once, on first use)."""
    generate = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            schema = generate()
            for paths in hand_written:
                for path, operations in paths.items():
                    schema["paths"].setdefault(path, {}).update(operations)
            _declare_errors(schema)
            done.append(schema)
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ERRORS:
        components.pop(name, None)
    components.update(SCHEMAS)
    for path, operations in schema["paths"].items():
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{_error_of(path)}"}}}
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            default = responses.pop("default", None)
            for code, response in responses.items():
                if code[0] in "45":
                    _add_error(response, content)
                    if code == "422" and response.get("description") == "Validation Error":
                        response["description"] = "A parameter or the body is invalid (named in the error)"
            responses.setdefault(
                "4XX", {"description": (default or {}).get("description", "Client error"), "content": content}
            )
            responses.setdefault(
                "5XX", {"description": "Server error (503: not ready, 504: timeout)", "content": content}
            )


def _add_error(response: dict[str, Any], content: dict[str, Any]) -> None:
    """Declare the error body; a body the route documents for this code too (a refused rollout) stays."""
    own = response.get("content", {}).get("application/json", {}).get("schema")
    if own is None or own == content["application/json"]["schema"]:
        response["content"] = content
    else:
        response["content"] = {
            "application/json": {"schema": {"anyOf": [own, content["application/json"]["schema"]]}}
        }


def _error_of(path: str) -> str:
    return V2_ERROR if is_v2(path) else ERROR
