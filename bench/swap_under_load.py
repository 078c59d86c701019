"""Swaps under load: what a live hot-swap costs the clients of a 2-worker ``modelrunner serve``.

Pushes two versions of the digits logistic regression into a fresh registry (``bench/.cache/swap``), serves
``digits`` with 2 workers, then:

1. steady: wrk (2 threads, 16 keep-alive connections) posts 1-row predictions;
2. swapping: the same load while the endpoint is swapped between the two versions every ``--every``
   seconds (``PUT /admin/endpoints/digits`` with ``wait``: a swap returns once every worker serves it).

Each phase lasts ``--seconds`` in all, split in ``--rounds`` windows that alternate (steady, swapping,
steady, ...), so both phases share the same neighbours on a busy machine. p50/p99 are the median of the
windows' values; req/s and failures are totals.

Reports req/s, p50/p99 and failed requests for both phases, and the swap time (PUT until every worker
serves the new version). Prints a table and saves ``bench/results/swap_under_load-<date>.json``
(+ ``-latest.json`` and ``-latest.md``).

    python bench/swap_under_load.py [--seconds 30] [--every 1.0] [--connections 16] [--no-save]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen, models, procs  # noqa: E402
from bench.run_all import free_port, machine  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/swap_under_load.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="total length of each phase")
    p.add_argument("--rounds", type=int, default=3, help="steady/swapping windows alternate this many times")
    p.add_argument("--every", type=float, default=1.0, help="seconds between swap starts")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-save", action="store_true")
    return p.parse_args(argv)


def push_versions(home: Path) -> None:
    """digits@1 and digits@2: the same estimator saved twice (distinct bundles, distinct versions)."""
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits

    from modelrunner.bundle import save_model
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    est = joblib.load(models.prepare(CACHE)["lr"])
    x = load_digits().data[:2].astype(np.float64)
    with Registry(Settings(home=home)) as registry:
        for n in (1, 2):
            folder = home.parent / f"bundle{n}"
            save_model(est, folder, name="digits", sample=x, license="MIT", description=f"digits LR copy {n}")
            registry.push(folder)


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MODELRUNNER_HOME": str(home)}
    for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR"):
        env.pop(var, None)
    argv = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--endpoint",
        "digits=digits@1",
    ]
    log = (home.parent / "serve.log").open("wb")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_all_serving(admin: Any, workers: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            rows = admin.status(alive_within_s=3.0)
            if len({r["runner_id"] for r in rows if r["state"] == "serving"}) == workers:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.2)
    raise RuntimeError("the workers did not all serve in time (see bench/.cache/swap/serve.log)")


def wrk_window(url: str, body: Path, args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.seconds / args.rounds
    r = loadgen.run_wrk(url, body, connections=args.connections, seconds=seconds)
    return {
        "seconds": seconds,
        "requests": r.requests,
        "rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "failed": r.failed,
        "loadavg": procs.loadavg(),
    }


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the windows; latency percentiles are the median of the windows' values."""
    seconds = sum(w["seconds"] for w in windows)
    return {
        "requests": sum(w["requests"] for w in windows),
        "seconds": seconds,
        "rps": sum(w["requests"] for w in windows) / seconds,
        "p50_ms": statistics.median(w["p50_ms"] for w in windows),
        "p99_ms": statistics.median(w["p99_ms"] for w in windows),
        "failed": sum(w["failed"] for w in windows),
        "windows": windows,
    }


def swapping_window(
    url: str, body: Path, admin: Any, args: argparse.Namespace, swaps: list[dict[str, Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    load = threading.Thread(target=lambda: out.update(wrk_window(url, body, args)))
    load.start()
    time.sleep(0.5)
    end = time.monotonic() + args.seconds / args.rounds - 1.5
    target = 2 if not swaps else 3 - swaps[-1]["target"]
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            result = admin.swap("digits", f"digits@{target}", wait=True, timeout=10)
            outcome = result.get("outcome")
        except Exception as exc:  # noqa: BLE001 - a refused or timed-out swap is a result too
            outcome = f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - started
        swaps.append({"target": target, "seconds": round(took, 4), "outcome": outcome})
        target = 3 - target
        time.sleep(max(0.0, args.every - took))
    load.join()
    return out


def interleaved(url: str, body: Path, admin: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Alternate steady and swapping windows, so both phases see the same neighbours on a shared machine."""
    steady: list[dict[str, Any]] = []
    swapping: list[dict[str, Any]] = []
    swaps: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        steady.append(wrk_window(url, body, args))
        swapping.append(swapping_window(url, body, admin, args, swaps))
    times = [s["seconds"] for s in swaps if s["outcome"] == "switched"]
    during = combine(swapping)
    during.update(
        {
            "swaps": len(swaps),
            "swaps_switched": len(times),
            "swap_s_median": statistics.median(times) if times else None,
            "swap_s_p90": sorted(times)[int(0.9 * (len(times) - 1))] if times else None,
            "swap_s_max": max(times) if times else None,
            "swap_log": swaps,
        }
    )
    return {"steady": combine(steady), "swapping": during}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = CACHE / "swap"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "home"
    home.mkdir(parents=True)
    loadgen.ensure_wrk()
    push_versions(home)
    body = models.body_path(CACHE, "modelrunner", 1)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from modelrunner.runner.client import AdminClient

    server = start_server(home, port, args.workers)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "every_s": args.every,
            "rounds": args.rounds,
            "connections": args.connections,
            "workers": args.workers,
            "wrk_threads": loadgen.THREADS,
            "rows": 1,
        },
    }
    try:
        with AdminClient(url) as admin:
            wait_all_serving(admin, args.workers)
            predict = f"{url}/v1/endpoints/digits/predict"
            loadgen.run_wrk(predict, body, connections=args.connections, seconds=2)  # warm-up
            results.update(interleaved(predict, body, admin, args))
            results["rss_mb"] = {
                str(pid): round(procs.rss_kb(pid) / 1024, 1) for pid in procs.tree(server.pid)
            }
    finally:
        with_group(server, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            with_group(server, signal.SIGKILL)
    results["machine"]["loadavg_end"] = procs.loadavg()
    return results


def with_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def table(results: dict[str, Any]) -> str:
    s, w = results["steady"], results["swapping"]
    ratio = w["p99_ms"] / s["p99_ms"] if s["p99_ms"] else float("nan")
    lines = [
        "| phase | req/s | p50 ms | p99 ms | failed | swaps | swap time median / p90 / max (s) |",
        "|---|---|---|---|---|---|---|",
        f"| steady | {s['rps']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['failed']} | - | - |",
        f"| swap every {results['settings']['every_s']:g}s | {w['rps']:,.0f} | {w['p50_ms']:.2f} | "
        f"{w['p99_ms']:.2f} | {w['failed']} | {w['swaps_switched']}/{w['swaps']} | "
        f"{_s(w['swap_s_median'])} / {_s(w['swap_s_p90'])} / {_s(w['swap_s_max'])} |",
        "",
        f"p99 while swapping / steady: {ratio:.2f}x; load average at the end "
        f"{results['machine']['loadavg_end']:.1f} on {results['machine']['cores']} cores",
    ]
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    text = table(results)
    sys.stdout.write(text + "\n")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        data = json.dumps(results, indent=2)
        (RESULTS / f"swap_under_load-{stamp}.json").write_text(data)
        (RESULTS / "swap_under_load-latest.json").write_text(data)
        (RESULTS / "swap_under_load-latest.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
