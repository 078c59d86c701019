"""The request path through the HTTP protocol, in-process: a request's bytes in, its answer's bytes out.

    python bench/wirehot.py [--rows 1] [--wave 8] [--requests 3200] [--samples 5] [--profile 30]

``bench/hotpath.py`` calls the ASGI app; a served worker answers a plain predict in its HTTP protocol instead
(``server/fastproto.py``). This drives that protocol, as uvicorn builds it for a worker, over ``--wave``
keep-alive connections whose transports only collect what is written (no sockets, no system calls), and
uvicorn's httptools protocol over the bare app doing the same work (``hotpath.bare_app``) the same way:
interleaved samples of the CPU per request of each, their ratio, and with ``--profile N`` the N most
expensive functions of ours (cProfile, own time). What it leaves out, the socket calls and the event loop's
polling, is alike for both (one write per answer for ours, two for uvicorn's).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import hotpath, models  # noqa: E402


class Transport:
    """Collects what a protocol writes; ``done`` resolves once a whole answer (head + body) is written."""

    def __init__(self) -> None:
        self.buffer = b""
        self.done: asyncio.Future[bytes] | None = None

    def write(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.done is None:
            return
        head = self.buffer[:head_end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) >= head_end + 4 + length:
            answer, self.buffer = self.buffer, b""
            if not self.done.done():
                self.done.set_result(answer)

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


def request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def connections(protocol: type, config: Any, count: int) -> list[tuple[Any, Transport]]:
    from uvicorn.server import ServerState

    state = ServerState()
    out = []
    for _ in range(count):
        proto = protocol(config=config, server_state=state, app_state={})
        transport = Transport()
        proto.connection_made(transport)
        out.append((proto, transport))
    return out


def waver(conns: list[tuple[Any, Transport]], raw: bytes) -> Callable[[], Awaitable[None]]:
    """One wave: every connection sends ``raw``; returns once every answer is written (each a 200)."""

    async def wave() -> None:
        loop = asyncio.get_running_loop()
        waits = []
        for proto, transport in conns:
            transport.done = loop.create_future()
            waits.append(transport.done)
            proto.data_received(raw)
        for answer in await asyncio.gather(*waits):
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]

    return wave


async def measure(
    home: Path, body: bytes, bare_body: bytes, model_path: Path, args: argparse.Namespace
) -> None:
    import uvicorn

    from modelrunner.runner.config import set_endpoint_config
    from modelrunner.runner.memory import freeze_startup_heap
    from modelrunner.server.compose import build_worker
    from modelrunner.server.fastproto import fast_protocol

    settings, registry, runtime = hotpath.digits_runtime(home, "wirehot")
    set_endpoint_config(registry, "digits", {"max_batch_size": 1, "max_latency_ms": 5})  # batching off
    observer: Any = None
    if args.no_metrics:  # what the metrics cost: nothing recorded
        from modelrunner.monitoring.observer import NullObserver

        observer = NullObserver()
    app = build_worker(runtime, settings, **({"observer": observer} if observer else {}))
    await runtime.start()
    freeze_startup_heap()  # as a served worker does once loaded (see hotpath.py)
    ours_proto = fast_protocol(app.plane, settings.max_header_bytes, settings.request_read_timeout_s)
    common = {"lifespan": "off", "access_log": False, "log_level": "warning", "ws": "none"}
    ours_config = uvicorn.Config(app, http=ours_proto, server_header=False, **common)  # type: ignore[arg-type]
    bare_config = uvicorn.Config(hotpath.bare_app(model_path), http="httptools", **common)  # type: ignore[arg-type]
    for config in (ours_config, bare_config):
        config.load()
    try:
        ours_conns = connections(ours_config.http_protocol_class, ours_config, args.wave)
        bare_conns = connections(bare_config.http_protocol_class, bare_config, args.wave)
        wave = waver(ours_conns, request(hotpath.PATH, body))
        bare_wave = waver(bare_conns, request("/predict", bare_body))
        for _ in range(20):
            await wave()
            await bare_wave()
        waves = max(1, args.requests // args.wave)
        ours, theirs = [], []
        for _ in range(args.samples):  # interleaved: the machine's noise hits both alike
            ours.append(await hotpath.per_request_cpu(wave, waves) / args.wave)
            theirs.append(await hotpath.per_request_cpu(bare_wave, waves) / args.wave)
        cpu, base = hotpath.median(ours), hotpath.median(theirs)
        print(  # noqa: T201
            f"through the HTTP protocol: {cpu:.0f} us CPU per request, bare app {base:.0f} us, ratio "
            f"{cpu / base:.2f} ({args.rows} row(s), batching off, {args.wave} connections, median of "
            f"{args.samples}: {' '.join(f'{x:.0f}' for x in ours)} vs {' '.join(f'{x:.0f}' for x in theirs)})"
        )
        if args.profile:
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for _ in range(waves):
                await wave()
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats("tottime")
            stats.print_stats(*([args.only] if args.only else []), args.profile)
    finally:
        await runtime.stop()
        registry.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/wirehot.py")
    p.add_argument("--rows", type=int, choices=models.ROWS, default=1)
    p.add_argument("--requests", type=int, default=3200)
    p.add_argument("--samples", type=int, default=5, help="measurements of each (the median is printed)")
    p.add_argument("--wave", type=int, default=8, help="connections (8: c16 per worker)")
    p.add_argument("--profile", type=int, default=0, help="print the N most expensive functions of ours")
    p.add_argument("--only", default="", help="with --profile: only functions whose path matches this regex")
    p.add_argument("--no-metrics", action="store_true", help="ours records no request metrics")
    hotpath.run_measure(measure, p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
