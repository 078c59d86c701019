"""HTTP answers -> the modelrunner error tree (shared by :mod:`modelrunner.client` and the CLI's AdminClient).

The server renders errors as ``{"error": {"code", "message", "field", ...}}`` on native routes and
``{"error": "<message>"}`` on ``/v2`` (``server/wire.py``); FastAPI's own validation answers
``{"detail": ...}``. The status picks the class when the body has no code; a 422 is a ValidationError that
keeps the offending ``field``.
"""

from __future__ import annotations

from typing import Any

import httpx

from modelrunner import errors
from modelrunner.errors import BY_CODE, ModelrunnerError

BY_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "unauthenticated",
    404: "not_found",
    409: "failed_precondition",
    413: "resource_exhausted",
    422: "invalid_argument",
    503: "unavailable",
    504: "deadline_exceeded",
}
ROLLOUT_OUTCOMES = ("switched", "refused", "timeout", "pending")


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or None when there is none (or it is not JSON)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _fastapi_detail(detail: Any) -> tuple[str, str | None]:
    """FastAPI's 422 ``detail`` list -> (message, field): the first problem, its last location part."""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", ()) if p not in ("body", "query", "path")]
        field = loc[-1] if loc else None
        return f"{'.'.join(loc) or 'request'}: {detail[0].get('msg', 'invalid')}", field
    return str(detail), None


def error_for(status: int, data: Any, method: str, path: str) -> ModelrunnerError:
    """The modelrunner error an HTTP error answer stands for (its message and ``field`` kept)."""
    code, message, field = BY_STATUS.get(status, "internal"), "", None
    details: dict[str, Any] = {}
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or code)
        message = str(err.get("message") or "")
        field = err.get("field")
        details = {k: v for k, v in err.items() if k not in ("code", "message", "field")}
    elif isinstance(err, str):
        message = err
    elif isinstance(data, dict) and data.get("detail"):
        message, field = _fastapi_detail(data["detail"])
    message = message or f"{method} {path}: HTTP {status}"
    if status == 422 or (field is not None and code == "invalid_argument"):
        return errors.ValidationError(message, field=field, status=status, **details)
    if code == "failed_precondition" and isinstance(details.get("reasons"), list):
        return errors.IncompatibleContract(message, reasons=details["reasons"])
    return BY_CODE.get(code, ModelrunnerError)(message, status=status, **details)


def raise_for(response: httpx.Response, data: Any) -> None:
    """Raise the modelrunner error of an HTTP error answer; do nothing on success."""
    if response.status_code >= 400:
        raise error_for(response.status_code, data, response.request.method, response.request.url.path)


def check_rollout(response: httpx.Response, data: Any) -> dict[str, Any]:
    """A swap/rollback answer: refused -> SwapFailed, timeout -> DeadlineExceeded (result attached)."""
    outcome = data.get("outcome") if isinstance(data, dict) else None
    if outcome in ROLLOUT_OUTCOMES and response.status_code in (409, 504):
        message = data.get("message") or data.get("outcome")
        if data["outcome"] == "timeout":
            raise errors.DeadlineExceeded(str(message), result=data)
        raise errors.SwapFailed(str(message), result=data)
    raise_for(response, data)
    result: dict[str, Any] = data
    return result
