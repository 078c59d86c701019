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
from google.protobuf.message import DecodeError

from modelrunner.errors import InvalidArgument, ModelrunnerError, ValidationError

log = logging.getLogger(__name__)

T = TypeVar("T")


def status_of(exc: ModelrunnerError) -> grpc.StatusCode:
    """The gRPC status of an error's protocol-neutral code (INTERNAL for anything unknown)."""
    try:
        return grpc.StatusCode[exc.code.upper()]
    except KeyError:  # a finer code of an HTTP-only error (unsupported_media_type): its family's status
        invalid = isinstance(exc, InvalidArgument)
        return grpc.StatusCode.INVALID_ARGUMENT if invalid else grpc.StatusCode.INTERNAL


async def abort_with(context: grpc.aio.ServicerContext, exc: ModelrunnerError) -> None:
    """End the call with the error's status and message (raises, as ``context.abort`` does)."""
    field = getattr(exc, "field", None)
    metadata: list[tuple[str, str]] = [("modelrunner-code", exc.code)]
    if field:
        metadata.append(("modelrunner-field", str(field)))
    context.set_trailing_metadata(tuple(metadata))
    await context.abort(status_of(exc), exc.message)


class Malformed:
    """A request whose bytes did not parse: handed to the handler (see :func:`tolerant`) so the client gets
    INVALID_ARGUMENT naming the message, not the UNKNOWN grpc answers for a failing deserializer."""

    def __init__(self, what: str, error: Exception) -> None:
        self.error = ValidationError(f"the request is not a valid protobuf {what}: {error}")


def tolerant(message: Any) -> Callable[[bytes], Any]:
    """A request deserializer for ``message`` (a protobuf class) that returns :class:`Malformed` instead of
    raising."""
    what = message.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:  # the C parser's errors vary by version
            return Malformed(what, exc)

    return deserialize


def guard(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap an async gRPC handler (its last argument is the context) so errors become statuses."""

    @functools.wraps(fn)
    async def handler(*args: Any) -> T:
        context = args[-1]
        try:
            if len(args) > 1 and isinstance(args[-2], Malformed):
                raise args[-2].error
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
