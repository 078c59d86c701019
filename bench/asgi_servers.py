"""Which ASGI server: the bare app (bench/peers/bare_app.py) under each candidate, same model, same load.

    python bench/asgi_servers.py [--duration 10] [--connections 16]

Candidates, each with 2 workers and access logs off: uvicorn on uvloop + httptools (what modelrunner's
workers run), uvicorn on the plain asyncio loop + h11, and granian (Rust HTTP server, ASGI interface).
Installs granian into the bare app's cached virtual environment on first use. Prints a markdown table and
saves ``bench/results/asgi_servers-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen, models, procs  # noqa: E402
from bench.peers import envs, servers  # noqa: E402
from bench.run_all import free_port, machine  # noqa: E402

log = logging.getLogger("bench.asgi")


def candidates(python: Path, port: int) -> dict[str, list[str]]:
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    return {
        "uvicorn + uvloop + httptools": [
            str(python),
            "-m",
            "uvicorn",
            "bare_app:app",
            *common,
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "uvicorn + asyncio + h11": [
            str(python),
            "-m",
            "uvicorn",
            "bare_app:app",
            *common,
            "--loop",
            "asyncio",
            "--http",
            "h11",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "granian (asgi)": [
            str(python.parent / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-access-log",
            "bare_app:app",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    p = argparse.ArgumentParser(prog="bench/asgi_servers.py")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args(argv)
    loadgen.ensure_wrk()
    python = envs.ensure("asgi", [*envs.requirements()["bare"], "granian"])
    paths = models.prepare(envs.CACHE)
    body = models.body_path(envs.CACHE, "instances", 1)
    rows: list[dict[str, Any]] = []
    for name, argv_ in candidates(python, free_port()).items():
        port = int(argv_[argv_.index("--port") + 1])
        launch = servers.Launch(
            argv_,
            f"http://127.0.0.1:{port}/predict",
            "instances",
            servers.HERE,
            servers._env("asgi", BENCH_MODEL=str(paths["lr"])),
        )
        server = procs.Server(launch, envs.CACHE / "work" / "asgi" / f"{name.split()[0]}.log")
        server.start()
        try:
            cold = server.wait_ready(body.read_bytes())
            loadgen.run_wrk(launch.url, body, connections=args.connections, seconds=2)
            cpu0 = server.cpu_s()
            res = loadgen.run_wrk(launch.url, body, connections=args.connections, seconds=args.duration)
            cpu_us = (server.cpu_s() - cpu0) / max(res.requests, 1) * 1e6
            rows.append(
                {
                    "server": name,
                    "rps": round(res.rps),
                    "p50_ms": res.p50_ms,
                    "p99_ms": res.p99_ms,
                    "failed": res.failed,
                    "cpu_us_per_request": round(cpu_us),
                    "cold_start_s": round(cold, 2),
                    "loadavg": procs.loadavg(),
                }
            )
            log.info("%s: %.0f req/s p99 %.1f ms, %.0f us CPU/request", name, res.rps, res.p99_ms, cpu_us)
        finally:
            server.stop()
            time.sleep(1.0)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": rows,
    }
    lines = [
        "| ASGI server (bare app, digits LR, 1 row) | req/s | p50 ms | p99 ms | server CPU µs/req | failed |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['server']} | {r['rps']:,} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
        f"{r['cpu_us_per_request']:,} | {r['failed']} |"
        for r in rows
    ]
    print("\n".join(lines))  # noqa: T201 - the table is this command's output
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "asgi_servers-latest.json").write_text(json.dumps(result, indent=1))
    (out / "asgi_servers-latest.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
