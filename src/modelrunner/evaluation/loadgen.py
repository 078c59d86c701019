"""A bounded HTTP/1.1 load generator: keep-alive connections at fixed concurrency, one POST at a time each.

Plain asyncio streams rather than httpx: on a 2-core machine httpx spends ~2 ms of client CPU per request,
which caps a single client near 300-400 req/s and would be measured as the server's latency. This client
costs a few tens of microseconds per request. Each connection sends ``Content-Length`` bodies and reads
``Content-Length`` or chunked responses; a failed request (status != 200, timeout, dropped connection)
counts as an error and the connection is reopened. The loop is bounded by a request count and a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from modelrunner.errors import InvalidArgument

Progress = Callable[[int], None]


@dataclass
class Target:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidArgument(f"load target {url!r}: expected http://host:port/path")
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        return cls(parts.hostname, parts.port or 80, path)


class _Conn:
    """One keep-alive connection."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        """Send one request and read the whole response; return the status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)
        assert self.reader is not None
        head = (
            f"POST {self.target.path} HTTP/1.1\r\nHost: {self.target.host}:{self.target.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self.writer.write(head + body)
        return await asyncio.wait_for(self._response(self.reader), self.timeout)

    async def _response(self, reader: asyncio.StreamReader) -> int:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            await _read_chunked(reader)
        else:
            await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return


@dataclass
class Tally:
    samples_ms: list[float]
    errors: int = 0
    next_index: int = 0


async def _client(
    target: Target,
    bodies: Sequence[bytes],
    tally: Tally,
    limit: int,
    deadline: float,
    timeout: float,
    progress: Progress | None,
) -> None:
    conn = _Conn(target, timeout)
    try:
        while tally.next_index < limit and time.perf_counter() < deadline:
            i = tally.next_index
            tally.next_index += 1
            t0 = time.perf_counter()
            try:
                ok = await conn.post(bodies[i % len(bodies)]) == 200
            except (
                OSError,
                ConnectionError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,
                ValueError,
                IndexError,
            ):
                ok = False
                await conn.close()
            if ok:
                tally.samples_ms.append((time.perf_counter() - t0) * 1000)
            else:
                tally.errors += 1
            if progress is not None:
                progress(1)
    finally:
        await conn.close()


async def run_load(
    url: str,
    bodies: Sequence[bytes],
    *,
    requests: int,
    concurrency: int,
    max_seconds: float,
    timeout: float,
    progress: Progress | None = None,
) -> tuple[Tally, float]:
    """Fire ``requests`` POSTs with ``concurrency`` connections; return the tally and the seconds taken."""
    target = Target.parse(url)
    tally = Tally(samples_ms=[])
    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(
        *(_client(target, bodies, tally, requests, deadline, timeout, progress) for _ in range(concurrency))
    )
    return tally, time.perf_counter() - started
