"""The request hot path in-process: CPU per request of the real app and of its parts, and where it goes.

    python bench/hotpath.py [--rows 1] [--requests 3200] [--profile 25]

Builds a registry with the digits LR (bench/models.py), the real Runtime and ``create_app``, then calls the
ASGI app directly (no sockets, no uvicorn) with waves of 32 concurrent requests, batching off and on; prints
the server-side CPU per request, the cost of each part (decode, predict, encode, metrics) and, with
``--profile N``, the N most expensive functions (cProfile, by own time). For a profile of a served worker
under real load use py-spy on a worker process instead, e.g.
``py-spy record -p <worker pid> -d 10 -r 500 -f raw -o prof.raw`` while wrk runs.
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

from bench import models  # noqa: E402
from bench.peers import envs  # noqa: E402

PATH = "/v1/endpoints/digits/predict"
WAVE = 32


def scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def call(app: Any, body: bytes) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(body), receive, send)
    return int(sent[0]["status"])


async def per_request_cpu(fn: Callable[[], Awaitable[Any]], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        await fn()
    return (time.process_time() - start) / count * 1e6


async def measure(home: Path, body: bytes, args: argparse.Namespace) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.config import set_endpoint_config
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.settings import Settings

    settings = Settings(home=home)
    registry = Registry(settings)
    registry.set_endpoint("digits", "digits@1")
    runtime = Runtime(registry, settings, worker_id="hotpath")
    app: Any = create_app(runtime, settings)
    if args.app == "worker":  # what a served worker runs: server/shell.py in front of the routed app
        from modelrunner.server.shell import WorkerApp

        app = WorkerApp(runtime, settings, lambda: create_app(runtime, settings))
    await runtime.start()
    try:

        async def wave() -> None:
            statuses = await asyncio.gather(*(call(app, body) for _ in range(WAVE)))
            assert set(statuses) == {200}, statuses

        for label, size in (("batching off", 1), ("batching on (64, 5 ms)", 64)):
            set_endpoint_config(registry, "digits", {"max_batch_size": size, "max_latency_ms": 5})
            await runtime.reconciler.poll()
            for _ in range(20):
                await wave()
            waves = max(1, args.requests // WAVE)
            cpu = await per_request_cpu(wave, waves) / WAVE
            print(f"{label}: {cpu:.0f} us CPU per request ({args.rows} row(s), waves of {WAVE})")  # noqa: T201
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(waves):
                    await wave()
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
        await parts(runtime, body)
    finally:
        await runtime.stop()
        registry.close()


async def parts(runtime: Any, body: bytes) -> None:
    from modelrunner.contract.codecs import decode_json_request, encode_json_response
    from modelrunner.monitoring import metrics
    from modelrunner.server.http import dumps, parse_json

    endpoint = runtime.get("digits")
    contract = endpoint.contract
    columns = decode_json_request(parse_json(body), contract.inputs)[0]
    prediction = await endpoint.predict(columns)
    predictor = endpoint.current.predictor

    async def decode() -> Any:
        return decode_json_request(parse_json(body), contract.inputs)

    async def predict() -> Any:
        return predictor.predict(columns)

    async def encode() -> Any:
        return dumps({"endpoint": "digits", **encode_json_response(prediction.columns, "instances")})

    async def record() -> None:
        gauge = metrics.in_flight("digits")
        gauge.inc()
        gauge.dec()
        metrics.observe_request("digits", 1, "rest", 0.001)

    for label, fn in (
        ("parse + decode", decode),
        ("predictor.predict", predict),
        ("encode + dumps", encode),
        ("metrics", record),
    ):
        print(f"  {label}: {await per_request_cpu(fn, 2000):.1f} us")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/hotpath.py")
    p.add_argument("--rows", type=int, choices=models.ROWS, default=1)
    p.add_argument("--requests", type=int, default=3200)
    p.add_argument("--profile", type=int, default=0, help="print the N most expensive functions")
    p.add_argument(
        "--app",
        choices=("worker", "routed"),
        default="worker",
        help="the app a served worker runs (default), or create_app's routed app alone",
    )
    args = p.parse_args(argv)
    paths = models.prepare(envs.CACHE)
    body = models.body_path(envs.CACHE, "modelrunner", args.rows).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        models.push_bundles(home, paths, [models.MODELS[0]])
        asyncio.run(measure(home, body, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
