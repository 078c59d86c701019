"""modelrunner errors -> gRPC status codes, for every gRPC handler (V2 and per-contract).

The protocol-neutral ``code`` of a :class:`ModelrunnerError` names its gRPC status (``invalid_argument`` ->
``INVALID_ARGUMENT``, ``not_found`` -> ``NOT_FOUND``, ``unavailable`` -> ``UNAVAILABLE`` ...); the details are
the error's one-line message (which names the tensor or field). A field, when known, also goes to the
trailing metadata as ``modelrunner-field``. Anything unexpected is ``INTERNAL`` without a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from modelrunner.errors import ModelrunnerError

log = logging.getLogger(__name__)

T = TypeVar("T")


def status_of(exc: ModelrunnerError) -> grpc.StatusCode:
    """The gRPC status of an error's protocol-neutral code (INTERNAL for anything unknown)."""
    try:
        return grpc.StatusCode[exc.code.upper()]
    except KeyError:
        return grpc.StatusCode.INTERNAL


async def abort_with(context: grpc.aio.ServicerContext, exc: ModelrunnerError) -> None:
    """End the call with the error's status and message (raises, as ``context.abort`` does)."""
    field = getattr(exc, "field", None)
    metadata: list[tuple[str, str]] = [("modelrunner-code", exc.code)]
    if field:
        metadata.append(("modelrunner-field", str(field)))
    context.set_trailing_metadata(tuple(metadata))
    await context.abort(status_of(exc), exc.message)


def guard(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap an async gRPC handler (its last argument is the context) so errors become statuses."""

    @functools.wraps(fn)
    async def handler(*args: Any) -> T:
        context = args[-1]
        try:
            return await fn(*args)
        except ModelrunnerError as exc:
            await abort_with(context, exc)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - never a traceback to a client
            log.error("unhandled error in gRPC %s", fn.__name__, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
        raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises

    return handler
