"""``AdminClient``: the CLI's way to a running server's admin API (swap, rollback, endpoints, workers)."""

from __future__ import annotations

from typing import Any

import httpx

from modelrunner import errors
from modelrunner.client.errors import check_rollout
from modelrunner.client.errors import json_body as _json
from modelrunner.client.errors import raise_for as _raise_for
from modelrunner.errors import Unavailable


class AdminClient:
    """Calls ``/admin`` on ``base_url`` with a bearer ``token``; errors come back as modelrunner errors."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def swap(
        self,
        endpoint: str,
        target: str,
        *,
        wait: bool = False,
        timeout: float = 60.0,
        force: bool = False,
        create: bool = False,
    ) -> dict[str, Any]:
        """Point ``endpoint`` at ``target``; with ``wait``, return once every live worker serves it.

        An unknown ``endpoint`` is refused (NotFound) unless ``create``: a typo must not start serving a
        new endpoint. A refused swap or a timeout raises (SwapFailed / DeadlineExceeded) with the server's
        message.
        """
        body = {"target": target, "force": force, "wait": wait, "timeout_s": timeout}
        params = None if create else {"create": "false"}
        return self._rollout("PUT", f"/admin/endpoints/{endpoint}", body, timeout if wait else 0.0, params)

    def create(
        self, endpoint: str, target: str, *, wait: bool = False, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Create ``endpoint`` serving ``target`` (a ``PUT`` that may create; answers as :meth:`swap`)."""
        return self.swap(endpoint, target, wait=wait, timeout=timeout, create=True)

    def delete(self, endpoint: str) -> None:
        """Stop serving ``endpoint``: its desired state is removed and every worker unloads it."""
        self._request("DELETE", f"/admin/endpoints/{endpoint}")

    def rollback(
        self, endpoint: str, *, wait: bool = False, timeout: float = 60.0, force: bool = False
    ) -> dict[str, Any]:
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

    def status(
        self, *, endpoint: str | None = None, alive_within_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Worker status rows (optionally one endpoint's, optionally only live workers)."""
        params: dict[str, Any] = {}
        if endpoint:
            params["endpoint"] = endpoint
        if alive_within_s:
            params["alive_within_s"] = alive_within_s
        result: list[dict[str, Any]] = self._request("GET", "/admin/workers", params=params)
        return result

    def _rollout(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        wait_s: float,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._send(method, path, json=body, params=params, extra_timeout=wait_s)
        return check_rollout(response, _json(response))

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
