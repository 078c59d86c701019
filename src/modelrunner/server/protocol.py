"""HTTP/1.1 for the workers: uvicorn's httptools protocol with the two limits it lacks.

Measured on uvicorn 0.55 + httptools before this module: a request with a 20 MB header was read into memory
and answered 200, and a connection that sent nothing, or sent its request head one byte at a time, stayed
open forever (uvicorn's keep-alive timeout only runs between requests; it has no header or body timeout).
:func:`guarded_protocol` makes a protocol class that also

- answers **431** and closes the connection once a request head passes ``max_header_bytes`` (counted as the
  bytes arrive, before they reach the parser, so a huge header is refused before it is all in memory);
- answers **408** and closes the connection when a request (head and body) has not fully arrived within
  ``request_read_timeout_s``, counted from its first byte, or from the connection's opening for the first
  request; a connection that sent nothing is closed without an answer. The handler waiting for that body
  sees the client disconnect and answers nothing more.

The read deadline costs no timer per request: each connection notes when its current request must have
arrived (a float), and one sweep per event loop, every tenth of the timeout (at most 1 s), answers the
connections past it. A timer armed and cancelled per request cost ~10 us of a worker's CPU per request
(measured on a 1-row predict, served, against the same server without it). uvicorn's keep-alive timeout is
such a timer (armed after every response, cancelled by the next request's first bytes): here it is the same
sweep's too (a connection idle past ``timeout_keep_alive`` is closed, within a tenth of it).

It also writes each response in one piece: uvicorn writes a response's head and its body separately, two
``send`` calls to the kernel (and two wake-ups of the client) for every small answer; a third of a served
worker's samples were in those two writes (py-spy, 1-row predicts at c32). The connection's writes are held
(:class:`CoalescingTransport`) until the response completes, or until the end of the loop turn that wrote
them (a streamed response is not held back), then written at once.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelrunner.server import wire

LINGER_S = 2.0
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
MAX_SWEEP_S = 1.0


class _Sweeper:
    """The connections of one event loop with a read deadline, checked every ``interval`` s while any is
    open (the sweep stops when the last one closes and starts again with the next)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop, self.interval = loop, interval
        self.open: set[GuardedHttpToolsProtocol] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.open.add(protocol)
        if self._handle is None:
            self._handle = self.loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for protocol in [p for p in self.open if p.deadline is not None and p.deadline <= now]:
            protocol.read_timed_out()
        for protocol in [p for p in self.open if p.idle_until is not None and p.idle_until <= now]:
            protocol.idle_until = None
            protocol.timeout_keep_alive_handler()
        self._handle = self.loop.call_later(self.interval, self._sweep) if self.open else None


_SWEEPERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = weakref.WeakKeyDictionary()


def _sweeper(loop: asyncio.AbstractEventLoop, timeout_s: float) -> _Sweeper:
    sweeper = _SWEEPERS.get(loop)
    if sweeper is None:
        sweeper = _SWEEPERS[loop] = _Sweeper(loop, min(MAX_SWEEP_S, max(0.01, timeout_s / 10)))
    return sweeper


class CoalescingTransport:
    """A transport whose writes are held until :meth:`flush`, which the protocol calls when a response
    completes; a write also posts a flush for the end of the loop turn, so nothing waits longer than that.
    Everything else is the wrapped transport's (closing flushes first)."""

    __slots__ = ("_transport", "_loop", "_held", "_posted")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: list[bytes] = []
        self._posted = False

    def write(self, data: bytes) -> None:
        self._held.append(data)
        if not self._posted:
            self._posted = True
            self._loop.call_soon(self._flush_posted)

    def write_now(self, data: bytes) -> None:
        """Write ``data`` after anything held, at once (a whole response: no flush to post for it)."""
        if self._held:
            self._held.append(data)
            self.flush()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def _flush_posted(self) -> None:
        self._posted = False
        self.flush()

    def flush(self) -> None:
        held = self._held
        if held:
            self._held = []
            if not self._transport.is_closing():
                self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a request-head size limit and a request read deadline (module docstring)."""

    max_header_bytes = 64 * 1024
    request_read_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_request = False  # between the first byte of a request and its last
        self._in_head = False
        self._head_bytes = 0
        self.deadline: float | None = None  # loop time by which the current request must have arrived
        self._discarding = False  # refused: what still comes is dropped until the connection closes
        self.idle_until: float | None = None  # keep-alive: loop time at which an idle connection is closed
        self._sweeper = _sweeper(self.loop, min(self.request_read_timeout_s, self.timeout_keep_alive))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm()
        self._sweeper.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._sweeper.open.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.idle_until = None
        if self._discarding:
            return
        if self._in_head or not self._in_request:  # bytes of a request head (maybe followed by its body)
            before = self._head_bytes
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes and not self._head_ends(data, before):
                self._refuse(431, f"request header fields too large: over {self.max_header_bytes} bytes")
                return
        super().data_received(data)

    def _head_ends(self, data: bytes, before: int) -> bool:
        """Whether the head ends in ``data`` within the limit (the rest of ``data`` is body)."""
        end = data.find(b"\r\n\r\n")
        return end >= 0 and before + end + 4 <= self.max_header_bytes

    def on_message_begin(self) -> None:
        self._begin_request()
        super().on_message_begin()

    def _begin_request(self) -> None:
        self._in_request = self._in_head = True
        if self.deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def _head_done(self) -> None:
        self._in_head = False
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        if self.pipeline or self.transport.is_closing():
            super().on_response_complete()  # uvicorn's: the next pipelined request starts, or nothing to do
            return
        # uvicorn's, but the keep-alive timeout is the sweep's: uvicorn arms a timer on every response
        self.server_state.total_requests += 1
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        self.idle_until = self.loop.time() + self.timeout_keep_alive

    def on_message_complete(self) -> None:
        self._request_done()
        super().on_message_complete()

    def _request_done(self) -> None:
        self._in_request = False
        self._disarm()

    def _arm(self) -> None:
        self.deadline = self.loop.time() + self.request_read_timeout_s

    def _disarm(self) -> None:
        self.deadline = None

    def read_timed_out(self) -> None:
        """The deadline passed (called by the sweep): 408 for a request still arriving, else close."""
        self.deadline = None
        if self.transport.is_closing():
            return
        if not self._in_request:  # opened and sent nothing
            self.transport.close()
            return
        self._refuse(
            408,
            f"the request did not arrive within {self.request_read_timeout_s:g}s (request_read_timeout_s)",
        )

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error (unless a response has started), then close."""
        self._disarm()
        cycle = self.cycle
        started = cycle is not None and cycle.response_started and not cycle.response_complete
        if not self.transport.is_closing() and not started:
            code = "deadline_exceeded" if status == 408 else "resource_exhausted"
            body = wire.dumps(wire.error_body("", code, message))
            head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head.append(
                b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                % len(body)
            )
            self.transport.write(b"".join(head) + body)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the handler still reading sees a disconnect; nothing more is sent
            cycle.message_event.set()
        # A lingering close: closing with unread bytes in the socket makes the kernel send a reset, which
        # can destroy the answer before the client reads it. So: end our side (FIN after the answer), drop
        # what the client still sends, and close for good a moment later.
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def guarded_protocol(max_header_bytes: int, request_read_timeout_s: float) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` with these limits (for ``uvicorn.Config(http=...)``)."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "request_read_timeout_s": request_read_timeout_s},
    )
