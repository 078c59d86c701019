"""The protocols' hot paths in-process: server CPU per request of each wire format, and where it goes.

    python bench/protohot.py [--rows 1] [--requests 1600] [--samples 3] [--profile 25] [--protocols ...]

Builds a registry with digits LogisticRegression (as bench/protocols.py), the real Runtime, the worker's app
and the gRPC handlers, then answers the same rows over every protocol without sockets: native JSON, V2 JSON
and protobuf/HTTP through the ASGI app; V2 gRPC (``raw_input_contents``, as tritonclient sends) and the
per-contract ``Predict`` by calling the gRPC handlers with the request bytes (deserializer, handler and
serializer: what grpc's C core does not do). Waves of 32 concurrent requests (``--batching``: the endpoint's
default, ``off`` or ``on``); prints the CPU
per request of each protocol (median of ``--samples``, interleaved) and its ratio to the JSON it replaces;
with ``--profile N`` the N most expensive functions of each protocol (cProfile, own time). The transport
(HTTP parsing, HTTP/2 framing in grpc's core) is not in these figures: bench/protocols.py measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench import hotpath  # noqa: E402
from bench.hotpath import median, per_request_cpu  # noqa: E402
from bench.protocols import PAIRS, bodies, prepare  # noqa: E402

WAVE = 32


class Context:
    """The part of ``grpc.aio.ServicerContext`` the handlers use."""

    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def http_call(app: Any, path: str, content_type: str, body: bytes) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(hotpath.scope(body, path, content_type), receive, send)
        return int(sent[0]["status"]) == 200

    return call


def grpc_call(handler: Any, body: bytes) -> Callable[[], Awaitable[bool]]:
    """A gRPC method handler called as grpc's server calls it: deserialize, await the behavior, serialize."""
    deserialize = handler.request_deserializer or (lambda b: b)
    serialize = handler.response_serializer or (lambda m: m)

    async def call() -> bool:
        answer = await handler.unary_unary(deserialize(body), Context())
        return bool(serialize(answer))

    return call


def grpc_handlers(plane: Any, settings: Any) -> dict[str, Any]:
    """gRPC method path -> method handler, from the handlers a worker's server registers."""
    import grpc

    from modelrunner.server.grpc.server import GrpcServer

    class Collect:
        def __init__(self) -> None:
            self.generic: list[Any] = []

        def add_generic_rpc_handlers(self, handlers: Any) -> None:
            self.generic.extend(handlers)

        def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
            self.generic.append(grpc.method_handlers_generic_handler(service, handlers))

    server = Collect()
    GrpcServer(plane).register(server)

    class Details(grpc.HandlerCallDetails):  # type: ignore[misc]
        def __init__(self, method: str) -> None:
            self.method, self.invocation_metadata = method, ()

    def lookup(method: str) -> Any:
        for generic in server.generic:
            found = generic.service(Details(method))
            if found is not None:
                return found
        raise KeyError(method)

    return {
        m: lookup(m)
        for m in ("/inference.GRPCInferenceService/ModelInfer", "/modelrunner.digits.Model/Predict")
    }


async def measure(home: Path, x: Any, args: argparse.Namespace) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.server.dataplane import DataPlane
    from modelrunner.server.shell import WorkerApp
    from modelrunner.settings import Settings

    settings = Settings(home=home)
    registry = Registry(settings)
    registry.set_endpoint("digits", "digits@1")
    runtime = Runtime(registry, settings, worker_id="protohot")
    plane = DataPlane(runtime, settings)
    app = WorkerApp(runtime, settings, lambda: create_app(runtime, settings, plane=plane), plane=plane)
    if args.batching != "default":
        from modelrunner.runner.config import set_endpoint_config

        set_endpoint_config(registry, "digits", {"batch": args.batching == "on"})
    await runtime.start()
    try:
        await app.routed()
        contract = runtime.get("digits").contract
        handlers = grpc_handlers(plane, settings)
        calls = {}
        for protocol, (path, content_type, body) in bodies(x[: args.rows], contract).items():
            if args.protocols and protocol not in args.protocols:
                continue
            one = (
                grpc_call(handlers[path], body)
                if content_type == "grpc"
                else http_call(app, path, content_type, body)
            )
            calls[protocol] = one
        await run(calls, args)
    finally:
        await runtime.stop()
        registry.close()


def waver(call: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[None]]:
    async def wave() -> None:
        ok = await asyncio.gather(*(call() for _ in range(WAVE)))
        assert all(ok), ok

    return wave


async def run(calls: dict[str, Callable[[], Awaitable[bool]]], args: argparse.Namespace) -> None:
    waves = {p: waver(c) for p, c in calls.items()}
    for wave in waves.values():
        for _ in range(10):
            await wave()
    count = max(1, args.requests // WAVE)
    samples: dict[str, list[float]] = {p: [] for p in waves}
    for _ in range(args.samples):
        for p, wave in waves.items():
            samples[p].append(await per_request_cpu(wave, count) / WAVE)
    cpu = {p: median(v) for p, v in samples.items()}
    for p, v in cpu.items():
        print(f"{p:14} {args.rows:4} rows  {v:7.0f} us CPU/req  ({' '.join(f'{s:.0f}' for s in samples[p])})")
    for binary, json_ in PAIRS:
        if binary in cpu and json_ in cpu:
            print(f"  {binary} / {json_}: {cpu[binary] / cpu[json_]:.2f}x CPU per request")
    if args.profile:
        for p, wave in waves.items():
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for _ in range(count):
                await wave()
            profiler.disable()
            print(f"\n== {p}, {args.rows} rows ==")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/protohot.py")
    p.add_argument("--rows", type=int, default=1)
    p.add_argument("--requests", type=int, default=1600)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--profile", type=int, default=0)
    p.add_argument("--batching", choices=("default", "off", "on"), default="default")
    p.add_argument("--protocols", type=lambda v: [s.strip() for s in v.split(",")], default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelrunner-protohot-") as tmp:
        home = Path(tmp)
        x = prepare(home)
        asyncio.run(measure(home, x, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
