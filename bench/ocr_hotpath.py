"""The OCR pipeline endpoint in-process: CPU per PNG line of the served pipeline against the plain function.

    python bench/ocr_hotpath.py [--lines 300] [--samples 5] [--profile 30] [--quick]

Builds the OCR service as ``bench/ocr_pipeline.py`` does (``examples/ocr/build.py``, recogniser ``svc``),
then calls both ASGI apps directly (no sockets, no uvicorn) with ``examples/ocr/example.png`` as the form
``curl -F image=@...`` sends: the worker app of ``modelrunner serve --endpoint ocr=pipeline:digits-ocr@...``
(the real Runtime and ``create_app``) and ``bench/peers/bare_ocr_app.py`` (the same steps as one plain
function). Prints the process CPU per line of each (the median of ``--samples`` measurements, the two
alternating so the machine's noise hits both alike), their ratio, the CPU per line of each thread of the
served pipeline, and with ``--profile N`` the N most expensive functions of the served path (cProfile by
own time, CPU time of every thread the pipeline runs in). A shared, busy machine skews wall-clock figures
(``bench/ocr_pipeline.py``), not these.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bench import hotpath, ocr_pipeline  # noqa: E402
from bench.peers import envs  # noqa: E402

PATH = "/v1/endpoints/ocr/predict"
App = Callable[..., Awaitable[None]]


async def post(app: App, path: str, body: bytes, query: bytes = b"") -> tuple[int, bytes]:
    """One form POST straight into the ASGI app: (status, body)."""
    scope = hotpath.scope(body)
    scope.update(path=path, raw_path=path.encode(), query_string=query)
    scope["headers"] = [
        (b"host", b"127.0.0.1"),
        (b"content-type", ocr_pipeline.CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (numbered pool threads summed)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        name = re.sub(r"[_-]\d+$", "", names.get(int(tid), "other"))
        out[name] = out.get(name, 0.0) + (int(stat[11]) + int(stat[12])) / tick
    return out


async def lines_cpu(app: App, path: str, body: bytes, count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        await post(app, path, body)
    return (time.process_time() - start) / count * 1e6


async def measure(home: Path, body: bytes, args: argparse.Namespace) -> None:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.server.shell import WorkerApp
    from modelrunner.settings import Settings

    settings = Settings(home=home)
    registry = Registry(settings)
    registry.set_endpoint("ocr", "pipeline:digits-ocr@production")
    runtime = Runtime(registry, settings, worker_id="ocr-hotpath")
    app: Any = WorkerApp(runtime, settings, lambda: create_app(runtime, settings))
    sys.path[:0] = [str(ocr_pipeline.OCR), str(ROOT / "bench" / "peers")]
    import bare_ocr_app  # reads BENCH_OCR_RECOGNIZER, set by main

    await runtime.start()
    try:
        for name, target, path, query in (
            ("pipeline", app, PATH, b"trace=1"),
            ("plain", bare_ocr_app.app, "/predict", b""),
        ):
            status, answer = await post(target, path, body, query)
            print(f"{name}: {status} {answer[:240].decode(errors='replace')}")  # noqa: T201
        for _ in range(20):
            await post(app, PATH, body)
            await post(bare_ocr_app.app, "/predict", body)
        ours, theirs = [], []
        for _ in range(args.samples):  # interleaved: the machine's noise hits both alike
            ours.append(await lines_cpu(app, PATH, body, args.lines))
            theirs.append(await lines_cpu(bare_ocr_app.app, "/predict", body, args.lines))
        cpu, base = hotpath.median(ours), hotpath.median(theirs)
        print(  # noqa: T201
            f"served pipeline {cpu:,.0f} us CPU per line, plain function {base:,.0f} us, "
            f"ratio {cpu / base:.2f} "
            f"(median of {args.samples} x {args.lines} lines: {' '.join(f'{x:.0f}' for x in ours)} vs "
            f"{' '.join(f'{x:.0f}' for x in theirs)})"
        )
        current = runtime.get("ocr").current
        assert current is not None
        await per_thread(app, body, current.predictor, args)
    finally:
        await runtime.stop()
        registry.close()


async def per_thread(app: App, body: bytes, predictor: Any, args: argparse.Namespace) -> None:
    """CPU per line of each thread of the served path; with --profile, cProfile of the event loop thread
    and of the pipeline's ``predict`` (the endpoint's thread), each by its own thread's CPU time."""
    before = thread_cpu()
    for _ in range(args.lines):
        await post(app, PATH, body)
    after = thread_cpu()
    for name in sorted(after):
        used = (after[name] - before.get(name, 0.0)) / args.lines * 1e6
        if used:
            print(f"  thread {name:36s} {used:8,.0f} us per line")  # noqa: T201
    if not args.profile:
        return
    loop_profile, step_profile = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
    inner = predictor.predict

    def profiled(columns: Any) -> Any:
        step_profile.enable()
        try:
            return inner(columns)
        finally:
            step_profile.disable()

    predictor.predict = profiled
    loop_profile.enable()
    try:
        for _ in range(args.lines):
            await post(app, PATH, body)
    finally:
        loop_profile.disable()
        del predictor.predict
    for label, profile in (("event loop thread", loop_profile), ("pipeline predict", step_profile)):
        print(f"\n{label}:")  # noqa: T201
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/ocr_hotpath.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=300, help="lines per measurement")
    p.add_argument("--samples", type=int, default=5, help="measurements of each (the median is printed)")
    p.add_argument("--profile", type=int, default=0, help="print the N most expensive functions")
    p.add_argument("--quick", action="store_true", help="a smaller build of the OCR service")
    args = p.parse_args(argv)
    home = envs.CACHE / "ocr" / ("home-quick" if args.quick else "home")
    os.environ["BENCH_OCR_RECOGNIZER"] = str(ocr_pipeline.build(home, args.quick))
    body = ocr_pipeline.form_body(ocr_pipeline.PNG.read_bytes())
    asyncio.run(measure(home, body, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
