"""``Client`` (blocking) and ``AsyncClient`` (asyncio): the same operations (``core.Core``), two drivers.

Each public method is the core's generator run by ``_run``, which sends every request it yields — with
resends after a connection error for the calls that allow it — and feeds the answer back.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from modelrunner.client.core import RETRYABLE, Call, Core, Op

P = ParamSpec("P")
T = TypeVar("T")


F = TypeVar("F", bound=Callable[..., Any])


def _named(method: F, op: Callable[..., Any]) -> F:
    """The method shows the operation's docstring and signature (``help``, IDEs) under its public name."""
    functools.update_wrapper(method, op)
    fn: Any = method  # a plain function: its attributes are writable
    del fn.__wrapped__  # the operation returns a generator; the method returns its result
    fn.__signature__ = inspect.signature(op).replace(return_annotation=inspect.Signature.empty)
    fn.__name__ = op.__name__.lstrip("_")
    fn.__qualname__ = fn.__name__
    return method


def _blocking(op: Callable[Concatenate[Core, P], Op[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(op(self, *args, **kwargs))

    return _named(method, op)


def _awaitable(
    op: Callable[Concatenate[Core, P], Op[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(op(self, *args, **kwargs))

    return _named(method, op)


class Client(Core):
    """A modelrunner server at ``url``; ``token`` is the admin token (sent as ``Authorization: Bearer``).

    ``timeout`` (s) bounds each request; GET calls are resent up to ``retries`` times after a connection
    error (pauses ``backoff``, doubling); predict only with ``retry_predict=True`` (or ``retry=True``).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, token, **options)
        self._http = httpx.Client(base_url=self.url, headers=self.headers, transport=transport)

    def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _send(self, call: Call) -> httpx.Response:
        delays = self.delays(call)
        for attempt in range(len(delays) + 1):
            try:
                return self._http.send(self.request_of(self._http, call))
            except RETRYABLE as exc:
                if attempt == len(delays):
                    raise self.failure(call, exc) from exc
                time.sleep(delays[attempt])
            except httpx.TransportError as exc:
                raise self.failure(call, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    predict = _blocking(Core._predict)
    feedback = _blocking(Core._feedback)
    feedback_many = _blocking(Core._feedback_many)
    models = _blocking(Core._models)
    model = _blocking(Core._model)
    endpoints = _blocking(Core._endpoints)
    contract = _blocking(Core._contract)
    swap = _blocking(Core._swap)
    rollback = _blocking(Core._rollback)


class AsyncClient(Core):
    """:class:`Client` for asyncio: the same methods, awaited. ``async with AsyncClient(url) as c: ...``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, token, **options)
        self._http = httpx.AsyncClient(base_url=self.url, headers=self.headers, transport=transport)

    async def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(await self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _send(self, call: Call) -> httpx.Response:
        delays = self.delays(call)
        for attempt in range(len(delays) + 1):
            try:
                return await self._http.send(self.request_of(self._http, call))
            except RETRYABLE as exc:
                if attempt == len(delays):
                    raise self.failure(call, exc) from exc
                await asyncio.sleep(delays[attempt])
            except httpx.TransportError as exc:
                raise self.failure(call, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    predict = _awaitable(Core._predict)
    feedback = _awaitable(Core._feedback)
    feedback_many = _awaitable(Core._feedback_many)
    models = _awaitable(Core._models)
    model = _awaitable(Core._model)
    endpoints = _awaitable(Core._endpoints)
    contract = _awaitable(Core._contract)
    swap = _awaitable(Core._swap)
    rollback = _awaitable(Core._rollback)
