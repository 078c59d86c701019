"""The clients of bench/protocols.py: keep-alive HTTP/1.1 connections and gRPC channels posting prebuilt
bodies, in closed loops (each sends its next request when the last is answered), timed per call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

CALL_TIMEOUT_S = 10.0  # a call not answered by then counts as an error (a stuck server must not hang the run)


class HttpConn:
    """One keep-alive HTTP/1.1 connection posting one prebuilt body (cheap on the client's CPU)."""

    def __init__(self, host: str, port: int, path: str, content_type: str, body: bytes) -> None:
        self.host, self.port = host, port
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __call__(self) -> bool:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        close = False
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                close = close or line.lower() == b"connection: close"
            await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            close = True  # a timed-out call (cancelled) leaves half an answer on the connection too
            raise
        finally:
            if close:  # the server closed it (or will): the next call opens a new connection
                await self.close()
                self.writer = None
        return head.startswith(b"HTTP/1.1 200")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


class GrpcCall:
    """One channel (its own connection) calling ``method`` with prebuilt request bytes."""

    def __init__(self, target: str, method: str, body: bytes) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.rpc = self.channel.unary_unary(method)
        self.body = body

    async def __call__(self) -> bool:
        await self.rpc(self.body)
        return True

    async def close(self) -> None:
        await self.channel.close()


Call = HttpConn | GrpcCall  # await call() -> ok; await call.close()


def make_calls(url: str, grpc_target: str, spec: tuple[str, str, bytes], n: int) -> list[Call]:
    path, content_type, body = spec
    if content_type == "grpc":
        return [GrpcCall(grpc_target, path, body) for _ in range(n)]
    host, port = url.removeprefix("http://").split(":")
    return [HttpConn(host, int(port), path, content_type, body) for _ in range(n)]


# -- the load -----------------------------------------------------------------------------------------------


async def _loop(call: Call, until: float, latencies: list[float] | None, errors: list[int]) -> None:
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            ok = await asyncio.wait_for(call(), CALL_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - counted, the loop goes on
            ok = False
        if not ok:
            errors[0] += 1
            await asyncio.sleep(0.01)  # a failing server is not hammered in a tight loop
        elif latencies is not None:
            latencies.append(time.perf_counter() - t0)


async def measure_cell(
    calls: list[Call], duration: float, warmup: float, server_cpu: Callable[[], float]
) -> tuple[list[float], int, float, float]:
    """(latencies, errors, elapsed seconds, server CPU seconds) of ``duration`` s of load after a warm-up."""
    errors = [0]
    await asyncio.gather(*(_loop(c, time.perf_counter() + warmup, None, errors) for c in calls))
    errors = [0]
    latencies: list[float] = []
    cpu0, t0 = server_cpu(), time.perf_counter()
    await asyncio.gather(*(_loop(c, t0 + duration, latencies, errors) for c in calls))
    return latencies, errors[0], time.perf_counter() - t0, server_cpu() - cpu0
