"""Batching on and off against the number of clients (docs/performance.md, "Batching by default").

One modelrunner launch (2 workers, this checkout, the Python running this script) serving the digits logistic
regression; for every concurrency (1, 4, 16, 64 wrk connections, 1-row bodies) the two modes are measured
back to back, switched live through ``PATCH /admin/endpoints/digits/config``: ``off`` (``{"batch": false}``)
and ``default`` (the config emptied: what a new endpoint gets). The bare ASGI app (bench/peers/bare_app.py,
the ceiling without batching) is measured in its own launch for the req/s ratio. Over HTTP a lone client's
latency is milliseconds of scheduling on a busy machine, so the lone-client cost is also measured in-process
(``--lone N``): one client's sequential requests to the same model, each timed, off vs default vs batching
asked for (``max_batch_size`` 64), alternated. ``--repeat N`` interleaves everything N times and reports
medians (the machine is shared: compare ratios, not absolute numbers).

    python bench/batching_curve.py [--connections 1,4,16,64] [--duration 5] [--repeat 3] [--no-bare]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen, models, procs  # noqa: E402
from bench.peers.servers import ONE_THREAD, WORKERS, Launch  # noqa: E402

log = logging.getLogger("bench.batching_curve")

CACHE = ROOT / "bench" / ".cache"
MODES: dict[str, dict[str, Any]] = {
    "off": {"batch": False, "max_batch_size": None, "max_latency_ms": None},
    "default": {"batch": None, "max_batch_size": None, "max_latency_ms": None},
}
"""PATCH bodies: ``null`` puts an option back to its default."""
LONE_MODES: dict[str, dict[str, Any]] = {**MODES, "on": {"max_batch_size": 64, "max_latency_ms": 5}}
"""The lone client is also measured with batching asked for explicitly (as ``make bench``'s batching on)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/batching_curve.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", default="1,4,16,64")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load per cell")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each cell")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds; tables show medians")
    p.add_argument("--no-bare", action="store_true", help="skip the bare ASGI app")
    p.add_argument("--lone", type=int, default=3000, help="in-process lone-client requests a round (0: none)")
    p.add_argument("--out", type=Path, default=None, help="also write the runs as JSON here")
    return p.parse_args(argv)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "PROMETHEUS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench" / "peers")])
    env.update(ONE_THREAD)
    env.update(extra)
    return env


def modelrunner_launch(port: int, work: Path, joblib_path: Path) -> Launch:
    lr = next(m for m in models.MODELS if m.key == "lr")
    home = work / "home"
    models.push_bundles(home, {"lr": joblib_path}, [lr])
    argv = [sys.executable, "-m", "modelrunner", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--endpoint", f"{lr.endpoint}={lr.endpoint}@1"]
    base = f"http://127.0.0.1:{port}"
    env = _env(MODELRUNNER_HOME=str(home))
    return Launch(argv, f"{base}/v1/endpoints/{lr.endpoint}/predict", "modelrunner", work, env, base)


def bare_launch(port: int, work: Path, joblib_path: Path) -> Launch:
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    argv += ["--log-level", "warning"]
    env = _env(BENCH_MODEL=str(joblib_path))
    return Launch(argv, f"http://127.0.0.1:{port}/predict", "instances", ROOT / "bench" / "peers", env)


def set_mode(admin_url: str, mode: str) -> None:
    url = f"{admin_url}/admin/endpoints/digits/config"
    status, body = procs.post(url, json.dumps(MODES[mode]).encode(), method="PATCH")
    if status != 200:
        raise RuntimeError(f"could not set batching {mode}: HTTP {status} {body[:200]!r}")
    time.sleep(0.5)  # every worker applies it at its next poll (100 ms)


def cell(server: procs.Server, body: Path, conns: int, args: argparse.Namespace) -> dict[str, Any]:
    loadgen.THREADS = min(2, conns)  # wrk needs a connection per thread: one thread for one client
    if args.warmup:
        loadgen.run_wrk(server.launch.url, body, connections=conns, seconds=args.warmup)
    load, cpu0 = procs.loadavg(), server.cpu_s()
    res = loadgen.run_wrk(server.launch.url, body, connections=conns, seconds=args.duration)
    cpu_us = (server.cpu_s() - cpu0) / max(res.requests, 1) * 1e6
    return {
        "connections": conns,
        "rps": round(res.rps, 1),
        "p50_ms": round(res.p50_ms, 3),
        "p99_ms": round(res.p99_ms, 3),
        "failed": res.failed,
        "cpu_us": round(cpu_us, 1),
        "loadavg": round(load, 2),
    }


def start(launch: Launch, work: Path) -> procs.Server:
    server = procs.Server(launch, work / "server.log")
    server.start()
    server.wait_ready(models.body_path(CACHE, launch.body_form, 1).read_bytes())
    time.sleep(1.0)
    return server


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from bench.run_all import free_port

    loadgen.ensure_wrk()
    joblib_path = models.prepare(CACHE)["lr"]
    conns = [int(c) for c in args.connections.split(",")]
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        work = CACHE / "work" / "batching-curve"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        mr = start(modelrunner_launch(free_port(), work, joblib_path), work)
        try:
            body = models.body_path(CACHE, "modelrunner", 1)
            for c in conns:
                for mode in MODES if rep % 2 == 0 else reversed(list(MODES)):
                    assert mr.launch.admin_url is not None
                    set_mode(mr.launch.admin_url, mode)
                    runs.append({"server": f"modelrunner {mode}", "repeat": rep, **cell(mr, body, c, args)})
                    log.info("%s", runs[-1])
        finally:
            mr.stop()
        if not args.no_bare:
            bare = start(bare_launch(free_port(), work, joblib_path), work)
            try:
                body = models.body_path(CACHE, "instances", 1)
                for c in conns:
                    runs.append({"server": "bare", "repeat": rep, **cell(bare, body, c, args)})
                    log.info("%s", runs[-1])
            finally:
                bare.stop()
    return runs


def lone_client(joblib_path: Path, requests: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    """In-process: µs per request (median, p99) of one client's sequential 1-row requests, per mode."""
    import asyncio

    import joblib
    import numpy as np
    from sklearn.datasets import load_digits

    from modelrunner import save_model
    from modelrunner.runner.endpoint import Deployment, Endpoint

    x = load_digits().data.astype(np.float64)
    folder = CACHE / "work" / "batching-lone"
    shutil.rmtree(folder, ignore_errors=True)
    predictor = save_model(joblib.load(joblib_path), folder, sample=x[:2], license="MIT").load()
    times: dict[str, list[float]] = {mode: [] for mode in LONE_MODES}

    async def client(mode: str) -> None:
        ep = Endpoint("digits")
        ep.configure({k: v for k, v in LONE_MODES[mode].items() if v is not None})
        dep = Deployment("digits", "digits", 1, "digits@1", "digits@1", predictor.contract, predictor)
        dep.batch_safe = predictor.batch_safe
        ep.swap(dep)
        row = {"input": x[:1]}
        for i in range(requests + 200):
            t0 = time.perf_counter()
            await ep.predict(row)
            if i >= 200:  # after the probe calls and warm-up
                times[mode].append((time.perf_counter() - t0) * 1e6)
            await asyncio.sleep(0)  # the client's next request comes in a later turn of the loop

    for _ in range(rounds):
        for mode in LONE_MODES:
            asyncio.run(client(mode))
    return {
        mode: {"p50_us": statistics.median(t), "p99_us": sorted(t)[int(len(t) * 0.99)]}
        for mode, t in times.items()
    }


def table(runs: list[dict[str, Any]]) -> str:
    """Medians per (server, connections), and the default/off and default/bare ratios."""
    med: dict[tuple[str, int], dict[str, float]] = {}
    for key in {(r["server"], r["connections"]) for r in runs}:
        cells = [r for r in runs if (r["server"], r["connections"]) == key]
        med[key] = {k: statistics.median(r[k] for r in cells) for k in ("rps", "p50_ms", "p99_ms", "cpu_us")}
    lines = [
        "| clients | off req/s | default req/s | ratio | bare req/s | default/bare | off p50 | default p50 "
        "| off p99 | default p99 | CPU us/req off / default |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted({k[1] for k in med}):
        off, on = med.get(("modelrunner off", c)), med.get(("modelrunner default", c))
        bare = med.get(("bare", c))
        if off is None or on is None:
            continue
        bare_rps = f"{bare['rps']:,.0f}" if bare else "-"
        vs_bare = f"{on['rps'] / bare['rps']:.2f}x" if bare else "-"
        lines.append(
            f"| {c} | {off['rps']:,.0f} | {on['rps']:,.0f} | {on['rps'] / off['rps']:.2f}x | {bare_rps} "
            f"| {vs_bare} | {off['p50_ms']:.2f} ms | {on['p50_ms']:.2f} ms | {off['p99_ms']:.2f} ms "
            f"| {on['p99_ms']:.2f} ms | {off['cpu_us']:.0f} / {on['cpu_us']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    load0 = procs.loadavg()
    lone = lone_client(models.prepare(CACHE)["lr"], args.lone) if args.lone else None
    runs = run(args)
    print(table(runs))
    if lone is not None:
        off, on, explicit = lone["off"], lone["default"], lone["on"]
        print(
            f"lone client in-process: p50 {off['p50_us']:.1f} us off, {on['p50_us']:.1f} us default "
            f"({on['p50_us'] - off['p50_us']:+.1f} us), {explicit['p50_us']:.1f} us with batching asked for "
            f"({explicit['p50_us'] - off['p50_us']:+.1f} us); p99 {off['p99_us']:.1f} / {on['p99_us']:.1f} / "
            f"{explicit['p99_us']:.1f} us"
        )
    print(f"load average {load0:.1f} at the start, {procs.loadavg():.1f} at the end")
    if args.out is not None:
        args.out.write_text(json.dumps({"runs": runs, "lone_client_us": lone}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
