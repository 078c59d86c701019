"""Abusive request bodies against a worker's app in-process: time, peak RSS, and how long a 1-row request
sent meanwhile waits (is the event loop free?).

    python bench/abuse.py proto-rows      # 16.7M empty protobuf rows (0a 00 ...), 33 MB
    python bench/abuse.py json-arrays     # 32 MiB of {"instances": [[],[],...]}
    python bench/abuse.py png-pixels      # 50 white 2000x2000 PNGs through image.decode_grayscale
    python bench/abuse.py json-rows       # a legitimate large request: 50,000 digits rows (~12 MB of JSON)
    python bench/abuse.py proto-rows --rows 1000000 --timeout 120

Run each case in a fresh process (peak RSS is per process). Same app as bench/hotpath.py: the digits LR
behind the worker's app (server/shell.py), called directly (no sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import models  # noqa: E402
from bench.hotpath import call  # noqa: E402
from bench.peers import envs  # noqa: E402


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def body_of(case: str, rows: int) -> tuple[bytes, bytes]:
    if case == "proto-rows":
        return b"\x0a\x00" * rows, b"application/x-protobuf"
    if case == "json-rows":
        row = b'{"input": [' + b",".join(b"%d.0" % (i % 17) for i in range(64)) + b"]}"
        return b'{"instances": [' + b",".join([row] * 50_000) + b"]}", b"application/json"
    limit = 32 * 1024 * 1024 - 32
    n = (limit - len(b'{"instances": []}')) // 3
    return b'{"instances": [' + b"[]," * (n - 1) + b"[]]}", b"application/json"


async def call_with(app: Any, body: bytes, content_type: bytes) -> tuple[int, bytes]:
    from bench.hotpath import scope

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    s = scope(body)
    s["headers"] = [(k, content_type if k == b"content-type" else v) for k, v in s["headers"]]
    await app(s, receive, send)
    return int(sent[0]["status"]), sent[1].get("body", b"")


async def attack(app: Any, case: str, rows: int, small: bytes, timeout: float) -> None:
    body, content_type = body_of(case, rows)
    base = rss_mb()
    start = time.perf_counter()

    async def later() -> tuple[int, bytes]:
        await asyncio.sleep(0.05)  # the 1-row requests are under way first: a blocked loop shows as a wait
        return await call_with(app, body, content_type)

    big = asyncio.ensure_future(later())
    slowest = [0.0, 0, 0.0]  # slowest 1-row request, how many, longest stretch between two of them

    async def others() -> None:  # 1-row requests, one after another, while the big one is handled
        last = time.perf_counter()
        while not big.done():
            t0 = time.perf_counter()
            await call(app, small)
            now = time.perf_counter()
            slowest[0] = max(slowest[0], now - t0)
            slowest[1] += 1
            slowest[2] = max(slowest[2], now - last)
            last = now
            await asyncio.sleep(0.005)

    meanwhile = asyncio.ensure_future(others())
    try:
        status, answer = await asyncio.wait_for(big, timeout)
        took = f"{time.perf_counter() - start:.2f} s: {status} {answer[:160].decode(errors='replace')}"
    except TimeoutError:
        took = f"not answered after {timeout:.0f} s"
    await meanwhile
    print(f"{case} ({len(body) / 1e6:.1f} MB): {took}")  # noqa: T201
    print(
        f"  peak RSS +{rss_mb('VmHWM') - base:.0f} MB; {slowest[1]} 1-row requests answered meanwhile, "  # noqa: T201
        f"the slowest in {slowest[0] * 1000:.0f} ms, longest wait between two {slowest[2] * 1000:.0f} ms"
    )


def png_pixels() -> None:
    import numpy as np
    from PIL import Image

    from modelrunner.errors import ModelrunnerError
    from modelrunner.pipelines.transforms import get_transform

    buf = io.BytesIO()
    Image.fromarray(np.full((2000, 2000), 255, dtype=np.uint8)).save(buf, format="PNG")
    column = np.empty(50, dtype=object)
    column[:] = [buf.getvalue()] * 50
    base = rss_mb()
    start = time.perf_counter()
    try:
        get_transform("image.decode_grayscale").predict({"data": column})
        outcome = "decoded"
    except ModelrunnerError as exc:
        outcome = f"{exc.code}: {exc}"
    print(
        f"png-pixels (50 x {len(buf.getvalue())} bytes): {time.perf_counter() - start:.2f} s, "  # noqa: T201
        f"peak RSS +{rss_mb('VmHWM') - base:.0f} MB: {outcome[:160]}"
    )


async def serve(home: Path, args: argparse.Namespace, small: bytes) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.server.shell import WorkerApp
    from modelrunner.settings import Settings

    settings = Settings(home=home)
    registry = Registry(settings)
    registry.set_endpoint("digits", "digits@1")
    runtime = Runtime(registry, settings, worker_id="abuse")
    app = WorkerApp(runtime, settings, lambda: create_app(runtime, settings))
    await runtime.start()
    try:
        await app.routed()  # protobuf goes to the routed app: build it first, as a running worker has
        for _ in range(20):
            await call(app, small)
        await attack(app, args.case, args.rows, small, args.timeout)
    finally:
        await runtime.stop()
        registry.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/abuse.py")
    p.add_argument("case", choices=("proto-rows", "json-arrays", "json-rows", "png-pixels"))
    p.add_argument("--rows", type=int, default=16_700_000, help="rows of proto-rows")
    p.add_argument("--timeout", type=float, default=120.0, help="give up waiting for the answer after this")
    args = p.parse_args(argv)
    if args.case == "png-pixels":
        png_pixels()
        return 0
    paths = models.prepare(envs.CACHE)
    small = models.body_path(envs.CACHE, "modelrunner", 1).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        models.push_bundles(home, paths, [models.MODELS[0]])
        asyncio.run(serve(home, args, small))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
