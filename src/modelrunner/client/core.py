"""What :class:`~modelrunner.client.Client` and :class:`~modelrunner.client.AsyncClient` share: every call
written once, as a generator of HTTP requests (sans-I/O).

An operation yields :class:`Call` objects, receives each ``httpx.Response`` back and returns its result; the
sync and async classes only differ in how they send a call (``_run``), so request building, retries policy,
decoding and error mapping exist once. Predict bodies are JSON, or V2 binary tensors for large numeric column
batches, where that measured faster (``client.binary``, docs/client.md); protobuf measured slower than both.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from modelrunner import __version__
from modelrunner.client import binary as wire_v2
from modelrunner.client.errors import check_rollout, json_body, raise_for
from modelrunner.client.frames import Prediction, as_columns, decode_outputs, encode_inputs
from modelrunner.errors import DeadlineExceeded, Unavailable

T = TypeVar("T")

RETRYABLE: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
"""Connection failures a resend can fix (a slow answer, ReadTimeout, is not one: the server is working)."""


@dataclass(frozen=True)
class Call:
    """One HTTP request of an operation; ``retry``: safe to resend after a connection error."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: bool = False
    extra_timeout: float = 0.0


Op = Generator[Call, httpx.Response, T]


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="@")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> JSON values (targets often come out of numpy)."""
    return value.tolist() if hasattr(value, "tolist") else value


def _json(payload: Any) -> tuple[bytes, dict[str, str]]:
    return orjson.dumps(payload), {"content-type": "application/json"}


class Core:
    """Settings and operations; subclasses add the transport (``_run``)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.1,
        retry_predict: bool = False,
        binary: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.retry_predict = retry_predict
        self.binary = binary
        self.headers = {"user-agent": f"modelrunner-client/{__version__}", "accept": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    # -- transport helpers used by both drivers -------------------------------------------------------------

    def request_of(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        timeout = httpx.Timeout(self.timeout, read=self.timeout + call.extra_timeout)
        return http.build_request(
            call.method,
            call.path,
            params=call.params,
            content=call.content,
            headers=dict(call.headers),
            timeout=timeout,
        )

    def delays(self, call: Call) -> list[float]:
        """Pauses before each resend of ``call`` after a connection error (none when it is not retried)."""
        if not call.retry:
            return []
        return [self.backoff * 2**i for i in range(self.retries)]

    def failure(self, call: Call, exc: httpx.TransportError) -> Exception:
        """The modelrunner error for a request that got no answer."""
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return DeadlineExceeded(f"{self.url} did not answer {call.method} {call.path} in time")
        return Unavailable(f"cannot reach {self.url} ({call.method} {call.path}): {exc}")

    # -- operations (each one generator, driven by Client / AsyncClient) ----------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Op[Any]:
        response = yield Call("GET", path, params=params, retry=True)
        data = json_body(response)
        raise_for(response, data)
        return data

    def _predict(
        self,
        endpoint: str,
        data: Any,
        *,
        as_frame: bool | None = None,
        retry: bool | None = None,
        request_id: str | None = None,
    ) -> Op[Any]:
        """Predict on ``endpoint``: ``data`` is a list of rows, a dict of columns, a numpy array (rows of a
        one-input model) or a pandas DataFrame (a column per input). Returns the output columns as numpy
        arrays (a :class:`Prediction`, which also carries ``model`` and ``version``), or a DataFrame when
        ``data`` is one or ``as_frame`` is true. ``retry`` (default: the client's ``retry_predict``) resends
        the request after a connection error; off by default, as a predict may have side effects (feedback
        logging, metrics) and the server may have received it. ``request_id`` (sent as ``x-request-id``) names
        the answer for :meth:`feedback`; without one the server makes one up (``Prediction.request_id``).
        """
        columns, frame = as_columns(data)
        numeric = wire_v2.numeric_columns(columns) if self.binary and isinstance(columns, Mapping) else None
        if numeric is not None:
            content, headers = wire_v2.encode(numeric)
            path = f"/v2/models/{_quote(endpoint)}/infer"
        else:
            content, headers = encode_inputs(columns), {"content-type": "application/json"}
            path = f"/v1/endpoints/{_quote(endpoint)}/predict"
        again = self.retry_predict if retry is None else retry
        if request_id is not None:
            headers = {**headers, "x-request-id": request_id}
        response = yield Call("POST", path, content=content, headers=headers, retry=again)
        pred = self._answer(response, numeric is not None)
        pred.request_id = response.headers.get("x-request-id") or pred.request_id
        pred.variant = response.headers.get("x-modelrunner-variant") or pred.variant
        want_frame = frame is not None if as_frame is None else as_frame
        return pred.to_frame(frame.index if frame is not None else None) if want_frame else pred

    @staticmethod
    def _answer(response: httpx.Response, v2: bool) -> Prediction:
        if not v2:
            answer = json_body(response)
            raise_for(response, answer)
            return decode_outputs(answer)
        if response.status_code >= 400:
            answer = json_body(response)
            message = answer.get("error") if isinstance(answer, dict) else None
            field = wire_v2.field_of(message) if isinstance(message, str) else None
            if field is not None:  # V2 bodies carry only the message: the field is taken from it
                answer = {"error": {"code": "invalid_argument", "message": message, "field": field}}
            raise_for(response, answer)
        return wire_v2.decode(response.content, response.headers.get(wire_v2.HEADER))

    def _feedback(self, endpoint: str, request_id: str, target: Any) -> Op[dict[str, Any]]:
        """Send the ground truth of one answered request (``Prediction.request_id``); returns ``{joined,
        duplicates}``. A request id the server never logged raises NotFound naming it."""
        return (yield from self._feedback_many(endpoint, [(request_id, target)]))

    def _feedback_many(self, endpoint: str, items: Any) -> Op[dict[str, Any]]:
        """Ground truth of many answers: ``[(request_id, target), ...]`` or ``{request_id: target}``."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        body = {"items": [{"request_id": str(rid), "target": _plain(t)} for rid, t in pairs]}
        content, headers = _json(body)
        response = yield Call(
            "POST", f"/v1/endpoints/{_quote(endpoint)}/feedback", content=content, headers=headers, retry=True
        )  # the later target wins: safe to resend
        data = json_body(response)
        raise_for(response, data)
        return data  # type: ignore[no-any-return]

    def _models(self) -> Op[list[dict[str, Any]]]:
        """Every model in the registry (name, latest version, aliases), following the server's pages."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500, "offset": 0}
        while True:
            page = yield from self._get("/admin/models", params)
            out.extend(page)
            if len(page) < params["limit"]:
                return out
            params = {**params, "offset": params["offset"] + len(page)}

    def _model(self, name: str) -> Op[dict[str, Any]]:
        """One model with its versions and aliases (NotFound when there is none)."""
        result: dict[str, Any] = yield from self._get(f"/admin/models/{_quote(name)}")
        return result

    def _endpoints(self) -> Op[list[dict[str, Any]]]:
        """Every endpoint's desired state (target, previous target, config) with its workers' rows."""
        result: list[dict[str, Any]] = yield from self._get("/admin/endpoints")
        return result

    def _contract(self, endpoint: str) -> Op[dict[str, Any]]:
        """The contract an endpoint serves now: ``{endpoint, model, version, contract, json_schema, ...}``."""
        result: dict[str, Any] = yield from self._get(f"/v1/endpoints/{_quote(endpoint)}/contract")
        return result

    def _rollout(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        wait: bool,
        timeout: float,
        params: Mapping[str, Any] | None = None,
    ) -> Op[dict[str, Any]]:
        content, headers = _json(body)
        response = yield Call(
            method,
            path,
            params=params,
            content=content,
            headers=headers,
            extra_timeout=timeout if wait else 0.0,
        )
        return check_rollout(response, json_body(response))

    def _swap(
        self,
        endpoint: str,
        target: str,
        *,
        wait: bool = True,
        timeout: float = 60.0,
        force: bool = False,
        create: bool = False,
    ) -> Op[dict[str, Any]]:
        """Point ``endpoint`` at ``target`` (``digits@3``, ``digits@staging``); with ``wait`` (default),
        return once every live worker serves it. Raises SwapFailed when a worker refused it (the old version
        keeps serving), DeadlineExceeded after ``timeout`` s, NotFound for an unknown endpoint unless
        ``create``. Returns the rollout: ``{endpoint, waited, outcome, message, workers}``.
        """
        body = {"target": target, "force": force, "wait": wait, "timeout_s": timeout}
        params = None if create else {"create": "false"}
        return (
            yield from self._rollout(
                "PUT", f"/admin/endpoints/{_quote(endpoint)}", body, wait, timeout, params
            )
        )

    def _rollback(self, endpoint: str, *, wait: bool = True, timeout: float = 60.0) -> Op[dict[str, Any]]:
        """Serve the endpoint's previous target again (same answers as :meth:`swap`)."""
        body = {"wait": wait, "timeout_s": timeout}
        return (
            yield from self._rollout(
                "POST", f"/admin/endpoints/{_quote(endpoint)}/rollback", body, wait, timeout
            )
        )
