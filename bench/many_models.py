"""Many models per runner: cold loads, hit rate and hot-model latency of pattern endpoints, against a
single-model baseline.

Registers ``--models`` tiny scikit-learn models (``tenant-0`` ... , one shared artifact: see
``tests/support/many_models.py``) in a fresh registry (``bench/.cache/many_models``), then runs two servers
of 1 worker each, one after the other, with the same client threads (``--clients``, keep-alive, 1-row
requests):

1. baseline: ``serve --endpoint tenant-0=tenant-0@production``, every request to ``tenant-0``;
2. many: ``serve --endpoint tenant-0=... --endpoint 'tenant-*=tenant-*@production' --max-loaded N``
   (tenant-0 pinned so both servers import scikit-learn before traffic):
   * cold: ``--cold`` requests, one after another, to models never loaded: their latency is a cold load's;
   * skewed: ``--seconds`` of requests to Zipf-like random tenants (a few hot, a long tail): hit rate from
     the server's ``modelrunner_ondemand_requests_total``, p50/p99 of the 10 hottest models' requests.

Prints one table (cold-load p50/p99, hit rate, hot p50/p99 vs the baseline's p50/p99, loaded at the end).

    python bench/many_models.py [--models 1000] [--max-loaded 100] [--seconds 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bench.run_all import free_port  # noqa: E402
from support.many_models import BODY, register_many, save_tiny  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "many_models"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/many_models.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--max-loaded", type=int, default=100)
    p.add_argument("--seconds", type=float, default=20.0, help="length of the skewed and baseline phases")
    p.add_argument("--cold", type=int, default=50, help="sequential requests to models never loaded")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument(
        "--skew", type=float, default=1.1, help="Pareto shape of the tenant choice (lower: flatter)"
    )
    return p.parse_args(argv)


def prepare(models: int) -> Path:
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    shutil.rmtree(CACHE, ignore_errors=True)
    home = CACHE / "home"
    registry = Registry(Settings(home=home))
    try:
        register_many(registry, save_tiny(CACHE / "tiny"), [f"tenant-{i}" for i in range(models)])
    finally:
        registry.close()
    return home


class Serve:
    """``python -m modelrunner serve`` (1 worker) on a free port, until it answers ``tenant-0``."""

    def __init__(self, home: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MODELRUNNER_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
        for var in ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "PROMETHEUS_MULTIPROC_DIR"):
            env.pop(var, None)
        argv = [sys.executable, "-m", "modelrunner", "serve", "--port", str(self.port), "--workers", "1"]
        argv += ["--endpoint", "tenant-0=tenant-0@production", *args]
        self.log = (CACHE / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Serve:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{self.url}/v1/endpoints/tenant-0/predict", json=BODY).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in time (see {self.log.name})")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def hammer(url: str, pick: Any, seconds: float, clients: int) -> tuple[list[tuple[str, float]], int]:
    """``clients`` threads posting to ``pick(rng)`` for ``seconds``: ``([(endpoint, seconds)], failures)``."""
    out: list[tuple[str, float]] = []
    failed = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[tuple[str, float]] = []
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.monotonic() < stop:
                name = pick(rng)
                t0 = time.perf_counter()
                ok = c.post(f"/v1/endpoints/{name}/predict", json=BODY).status_code == 200
                mine.append((name, time.perf_counter() - t0))
                if not ok:
                    with lock:
                        failed[0] += 1
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, failed[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def metric(url: str, pattern: str) -> float:
    match = re.search(pattern, httpx.get(f"{url}/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = prepare(args.models)
    with Serve(home) as base:
        baseline, base_failed = hammer(base.url, lambda rng: "tenant-0", args.seconds, args.clients)
    pattern = ("--endpoint", "tenant-*=tenant-*@production", "--max-loaded", str(args.max_loaded))
    with Serve(home, *pattern) as many:
        cold = []
        with httpx.Client(base_url=many.url, timeout=60) as c:
            for i in range(args.models - args.cold, args.models):
                t0 = time.perf_counter()
                c.post(f"/v1/endpoints/tenant-{i}/predict", json=BODY).raise_for_status()
                cold.append(time.perf_counter() - t0)
        hits0 = metric(many.url, r'^modelrunner_ondemand_requests_total\{result="hit"\} (\S+)$')
        miss0 = metric(many.url, r'^modelrunner_ondemand_requests_total\{result="miss"\} (\S+)$')

        def skewed(rng: random.Random) -> str:
            return f"tenant-{min(int(rng.paretovariate(args.skew)), args.models - 1)}"

        mixed, failed = hammer(many.url, skewed, args.seconds, args.clients)
        hits = metric(many.url, r'^modelrunner_ondemand_requests_total\{result="hit"\} (\S+)$') - hits0
        miss = metric(many.url, r'^modelrunner_ondemand_requests_total\{result="miss"\} (\S+)$') - miss0
        loaded = metric(many.url, r"^modelrunner_ondemand_loaded (\S+)$")
    hot_names = {name for name, _ in Counter(n for n, _ in mixed).most_common(10)}
    hot = [s for n, s in mixed if n in hot_names]
    base_s = [s for _, s in baseline]
    rows = [
        ("models registered / max loaded", f"{args.models} / {args.max_loaded}"),
        ("cold load p50 / p99 ms (client, sequential)", f"{pct(cold, 0.5):.1f} / {pct(cold, 0.99):.1f}"),
        (
            "skewed: requests / failed / distinct models",
            f"{len(mixed)} / {failed} / {len({n for n, _ in mixed})}",
        ),
        (
            "hit rate (server counters)",
            f"{hits / max(1.0, hits + miss):.3f} ({int(hits)} hit, {int(miss)} miss)",
        ),
        ("hot 10 models p50 / p99 ms", f"{pct(hot, 0.5):.2f} / {pct(hot, 0.99):.2f}"),
        ("baseline, 1 model: p50 / p99 ms", f"{pct(base_s, 0.5):.2f} / {pct(base_s, 0.99):.2f}"),
        ("hot p99 / baseline p99", f"{pct(hot, 0.99) / pct(base_s, 0.99):.2f}x"),
        ("baseline requests / failed", f"{len(baseline)} / {base_failed}"),
        ("on-demand models loaded at the end", f"{int(loaded)}"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f}"),
        ("median request, all skewed ms", f"{statistics.median(s for _, s in mixed) * 1000:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0 if failed == 0 and base_failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
