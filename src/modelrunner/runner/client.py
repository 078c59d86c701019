"""``AdminClient``: the CLI's way to a running server's admin API (swap, rollback, endpoints, workers)."""

from __future__ import annotations

from typing import Any

import httpx

from modelrunner import errors
from modelrunner.errors import ModelrunnerError, Unavailable

_BY_CODE: dict[str, type[ModelrunnerError]] = {
    "invalid_argument": errors.InvalidArgument,
    "not_found": errors.NotFound,
    "already_exists": errors.AlreadyExists,
    "failed_precondition": errors.FailedPrecondition,
    "unavailable": errors.Unavailable,
    "unauthenticated": errors.Unauthenticated,
    "deadline_exceeded": errors.DeadlineExceeded,
}
_BY_STATUS = {400: "invalid_argument", 401: "unauthenticated", 403: "unauthenticated", 404: "not_found",
              409: "failed_precondition", 413: "invalid_argument", 422: "invalid_argument",
              503: "unavailable", 504: "deadline_exceeded"}
_OUTCOMES = ("switched", "refused", "timeout", "pending")


class AdminClient:
    """Calls ``/admin`` on ``base_url`` with a bearer ``token``; errors come back as modelrunner errors."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def swap(self, endpoint: str, target: str, *, wait: bool = False, timeout: float = 60.0,
             force: bool = False) -> dict[str, Any]:
        """Point ``endpoint`` at ``target``; with ``wait``, return once every live worker serves it.

        A refused swap or a timeout raises (SwapFailed / DeadlineExceeded) with the server's message.
        """
        body = {"target": target, "force": force, "wait": wait, "timeout_s": timeout}
        return self._rollout("PUT", f"/admin/endpoints/{endpoint}", body, timeout if wait else 0.0)

    def rollback(self, endpoint: str, *, wait: bool = False, timeout: float = 60.0,
                 force: bool = False) -> dict[str, Any]:
        """Serve the endpoint's previous target again (same wait semantics as :meth:`swap`)."""
        body = {"force": force, "wait": wait, "timeout_s": timeout}
        return self._rollout("POST", f"/admin/endpoints/{endpoint}/rollback", body, timeout if wait else 0.0)

    def configure(self, endpoint: str, **options: Any) -> dict[str, Any]:
        """Change an endpoint's options (``max_batch_size``, ``max_latency_ms``, ``max_concurrency``,
        ``max_queue``, ``timeout_s``) in place; its new state."""
        result: dict[str, Any] = self._request("PATCH", f"/admin/endpoints/{endpoint}/config", json=options)
        return result

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint's desired state with its workers' rows."""
        result: list[dict[str, Any]] = self._request("GET", "/admin/endpoints")
        return result

    def status(self, *, endpoint: str | None = None,
               alive_within_s: float | None = None) -> list[dict[str, Any]]:
        """Worker status rows (optionally one endpoint's, optionally only live workers)."""
        params: dict[str, Any] = {}
        if endpoint:
            params["endpoint"] = endpoint
        if alive_within_s:
            params["alive_within_s"] = alive_within_s
        result: list[dict[str, Any]] = self._request("GET", "/admin/workers", params=params)
        return result

    def _rollout(self, method: str, path: str, body: dict[str, Any], wait_s: float) -> dict[str, Any]:
        response = self._send(method, path, json=body, extra_timeout=wait_s)
        data = _json(response)
        if isinstance(data, dict) and data.get("outcome") in _OUTCOMES and response.status_code in (409, 504):
            message = data.get("message") or data.get("outcome")
            if data["outcome"] == "timeout":
                raise errors.DeadlineExceeded(str(message), result=data)
            raise errors.SwapFailed(str(message), result=data)
        _raise_for(response, data)
        result: dict[str, Any] = data
        return result

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        data = _json(response)
        _raise_for(response, data)
        return data

    def _send(self, method: str, path: str, *, extra_timeout: float = 0.0, **kwargs: Any) -> httpx.Response:
        if extra_timeout:
            base = self._http.timeout.read or 10.0
            kwargs["timeout"] = httpx.Timeout(self._http.timeout.connect, read=base + extra_timeout)
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.DeadlineExceeded(f"{self.base_url} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the runner at {self.base_url}: {exc}") from exc


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _raise_for(response: httpx.Response, data: Any) -> None:
    if response.status_code < 400:
        return
    code, message = _BY_STATUS.get(response.status_code, "internal"), ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or code)
        message = str(err.get("message") or "")
    elif isinstance(data, dict) and data.get("detail"):
        message = str(data["detail"])
    message = message or f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}"
    raise _BY_CODE.get(code, ModelrunnerError)(message)
