"""The request hot path in-process: CPU per request of the real app and of its parts, and where it goes.

    python bench/hotpath.py [--rows 1] [--requests 3200] [--samples 5] [--batching off] [--wave 32]
                            [--profile 25]

Builds a registry with the digits LR (bench/models.py), the real Runtime and ``create_app``, then calls the
ASGI app directly (no sockets, no uvicorn) with waves of ``--wave`` concurrent requests (32: one worker of
two at c64; 8: at c16; 1: a lone client), batching off, on (``max_batch_size`` 64) and/or auto (the default);
prints the server-side CPU per request (the median of ``--samples`` measurements, each sample alternating
with one of a *bare* ASGI app doing the same work in the same process: orjson, one ``predict_proba``,
label = argmax, both returned), the ratio of the two, the cost of each part (decode, predict, encode,
metrics) and, with ``--profile N``, the N most expensive functions (cProfile, by own time; the main thread
thread, its CPU time). For a profile of a served worker
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


def scope(body: bytes, path: str = PATH, content_type: str = "application/json") -> dict[str, Any]:
    """An ASGI scope of a POST of ``body`` to ``path`` (also used by protohot.py and ocr_hotpath.py)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode()),
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


def bare_app(model_path: Path) -> Callable[..., Awaitable[None]]:
    """The same work without a platform: parse, one ``predict_proba``, label = argmax, both returned."""
    import joblib
    import numpy as np
    import orjson

    model = joblib.load(model_path)
    classes = model.classes_
    headers = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        data = orjson.loads((await receive())["body"])
        proba = model.predict_proba(np.asarray(data["instances"], dtype=np.float64))
        labels = classes[np.argmax(proba, axis=1)]
        payload = orjson.dumps(
            {
                "predictions": [
                    {"label": label, "proba": p}
                    for label, p in zip(labels.tolist(), proba.tolist(), strict=True)
                ]
            }
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def digits_runtime(home: Path, worker_id: str, **options: Any) -> tuple[Any, Any, Any]:
    """(settings, registry, runtime) of ``home`` with the endpoint ``digits`` serving ``digits@1`` (the
    runtime not started; ``options`` are the Runtime's). Also used by wirehot.py."""
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.settings import Settings

    settings = Settings(home=home)
    registry = Registry(settings)
    registry.set_endpoint("digits", "digits@1")
    return settings, registry, Runtime(registry, settings, worker_id=worker_id, **options)


async def measure(
    home: Path, body: bytes, bare_body: bytes, model_path: Path, args: argparse.Namespace
) -> None:
    from modelrunner.runner.config import set_endpoint_config
    from modelrunner.runner.memory import freeze_startup_heap
    from modelrunner.server.app import create_app

    settings, registry, runtime = digits_runtime(home, "hotpath")
    app: Any = create_app(runtime, settings)
    if args.app == "worker":  # what a served worker runs: server/shell.py in front of the routed app
        from modelrunner.server.shell import WorkerApp

        app = WorkerApp(runtime, settings, lambda: create_app(runtime, settings))
    bare = bare_app(model_path)
    await runtime.start()
    # as a served worker does once loaded (runner.memory.freeze_startup_heap): without it every young-
    # generation collection here walks the whole heap of the imported stack, and the request that allocates
    # more pays more of that than a served worker would (it inflated our ratio to the bare app)
    freeze_startup_heap()
    try:
        size = args.wave

        def waver(target: Any, payload: bytes) -> Callable[[], Awaitable[None]]:
            async def wave() -> None:
                if size == 1:  # a lone client: one task a request, as a server runs it
                    statuses = [await asyncio.get_running_loop().create_task(call(target, payload))]
                else:
                    statuses = await asyncio.gather(*(call(target, payload) for _ in range(size)))
                assert set(statuses) == {200}, statuses

            return wave

        wave, bare_wave = waver(app, body), waver(bare, bare_body)
        modes: dict[str, tuple[str, dict[str, Any]]] = {
            "off": ("batching off", {"max_batch_size": 1, "max_latency_ms": 5}),
            "on": ("batching on (64, 5 ms)", {"max_batch_size": 64, "max_latency_ms": 5}),
            "auto": (
                "batching auto (the default)",
                {"batch": None, "max_batch_size": None, "max_latency_ms": None},
            ),
        }
        chosen = {"both": ("off", "on"), "all": ("off", "on", "auto")}.get(args.batching, (args.batching,))
        for label, config in (modes[m] for m in chosen):
            set_endpoint_config(registry, "digits", config)
            await runtime.reconciler.poll()
            for _ in range(20):
                await wave()
                await bare_wave()
            waves = max(1, args.requests // size)
            ours, theirs = [], []
            for _ in range(args.samples):  # interleaved: the machine's noise hits both alike
                ours.append(await per_request_cpu(wave, waves) / size)
                theirs.append(await per_request_cpu(bare_wave, waves) / size)
            cpu, base = median(ours), median(theirs)
            print(  # noqa: T201
                f"{label}: {cpu:.0f} us CPU per request, bare app {base:.0f} us, ratio {cpu / base:.2f} "
                f"({args.rows} row(s), waves of {size}, median of {args.samples}: "
                f"{' '.join(f'{x:.0f}' for x in ours)} vs {' '.join(f'{x:.0f}' for x in theirs)})"
            )
            if args.profile:
                profiler = cProfile.Profile(time.thread_time)  # CPU of the loop thread
                profiler.enable()
                for _ in range(waves):
                    await wave()
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
        if args.parts:
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
    p.add_argument("--samples", type=int, default=5, help="measurements per mode (the median is printed)")
    p.add_argument("--batching", choices=("off", "on", "auto", "both", "all"), default="both")
    p.add_argument("--wave", type=int, default=32, help="concurrent requests a wave (8: c16 per worker)")
    p.add_argument("--no-parts", dest="parts", action="store_false", help="skip the per-part costs")
    p.add_argument("--profile", type=int, default=0, help="print the N most expensive functions")
    p.add_argument(
        "--app",
        choices=("worker", "routed"),
        default="worker",
        help="the app a served worker runs (default), or create_app's routed app alone",
    )
    run_measure(measure, p.parse_args(argv))
    return 0


Measure = Callable[[Path, bytes, bytes, Path, argparse.Namespace], Awaitable[None]]


def run_measure(measure: Measure, args: argparse.Namespace) -> None:
    """``measure(home, body, bare body, model path, args)`` over a new home with the digits LR pushed, the
    bodies of ``args.rows`` rows (also used by wirehot.py)."""
    paths = models.prepare(envs.CACHE)
    body = models.body_path(envs.CACHE, "modelrunner", args.rows).read_bytes()
    bare_body = models.body_path(envs.CACHE, "instances", args.rows).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        models.push_bundles(home, paths, [models.MODELS[0]])
        asyncio.run(measure(home, body, bare_body, paths[models.MODELS[0].key], args))


if __name__ == "__main__":
    raise SystemExit(main())
