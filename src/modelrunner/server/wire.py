"""JSON bodies and error bodies, without FastAPI: shared by the routed app (``server.http``) and the parts
of a worker that answer before FastAPI is imported (``server.plain``, ``server.shell``).

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

from modelrunner.errors import HTTP_STATUS, InvalidArgument, ModelrunnerError, ValidationError

log = logging.getLogger("modelrunner.server.http")

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


def is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def error_body(path: str, code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error body of the protocol the request to ``path`` speaks."""
    if is_v2(path):
        return {"error": message}
    err: dict[str, Any] = {"code": code, "message": message, "field": field}
    err.update(extra)
    return {"error": err}


def modelrunner_error(path: str, exc: ModelrunnerError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` answering ``exc`` on a request to ``path``."""
    extra = {k: v for k, v in exc.details.items() if k != "field" and _plain(v)}
    field = getattr(exc, "field", None)
    headers = {"www-authenticate": "Bearer"} if exc.code == "unauthenticated" else {}
    if "retry_after_s" in exc.details:  # an overloaded endpoint: when to come back
        headers["retry-after"] = str(exc.details["retry_after_s"])
    return status_of(exc), error_body(path, exc.code, exc.message, field, **extra), headers


def unexpected_error(method: str, path: str, exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Log an unhandled error (with its traceback) and return the 500 that answers it: no traceback in it."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return 500, error_body(path, "internal", f"internal error: {type(exc).__name__}")


def readiness(runtime: Any) -> tuple[int, dict[str, Any]]:
    """``/readyz``: 200 once the runtime has started and every endpoint has a loaded version, else 503."""
    waiting = sorted(name for name, ep in runtime.endpoints.items() if not ep.ready)
    if runtime.ready and not waiting:
        return 200, {"status": "ready"}
    return 503, {"status": "not ready", "waiting_for": waiting}


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))
