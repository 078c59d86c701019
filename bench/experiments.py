"""What online experiments cost on the request path: single-row req/s and p99 of ``serve --workers 2``.

    python bench/experiments.py [--seconds 15] [--rounds 2] [--connections 16]

One server (the digits logistic regression of bench/models.py as ``digits@1``, a second fit as ``digits@2``),
four states applied through the registry between runs, each measured with wrk (single-row JSON body):

- ``nothing``: plain serving, prediction log off (``log_predictions: false``);
- ``logging``: every request logged (``log_predictions: true``: buffered per worker, batched inserts);
- ``shadow``: a shadow experiment, every request mirrored to ``digits@2`` after its answer (and both logged);
- ``canary 10%``: a canary experiment, 10 % of requests answered by ``digits@2`` (all logged).

States run in rounds (A B C D, A B C D, ...); each state's best round is reported (the one least disturbed
by other work on the machine). On 2 cores the server's two workers, wrk and, in shadow mode, the mirrored
candidate calls all compete for the same CPU: the shadow overhead here is CPU, not waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench import models  # noqa: E402
from bench.loadgen import WrkResult, run_wrk  # noqa: E402
from bench.peers import envs  # noqa: E402
from bench.peers.servers import Launch  # noqa: E402
from bench.procs import Server, loadavg  # noqa: E402

STATES = ("nothing", "logging", "shadow", "canary 10%")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(home: Path, cache: Path) -> None:
    """digits@1 (the bench's LR) and digits@2 (another fit of it) in a fresh registry; the request bodies."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from modelrunner import save_model
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64)
    models.write_bodies(cache / "models" / "bodies", x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: speed is measured here, not accuracy
        fits = [LogisticRegression(max_iter=300, C=c).fit(x, y) for c in (1.0, 0.5)]
    with Registry(Settings(home=home)) as registry:
        for version, model in enumerate(fits, 1):
            folder = home.parent / "bundles" / f"digits-{version}"
            save_model(model, folder, name="digits", sample=x[:2], license="MIT")
            registry.push(folder)
        registry.set_endpoint("digits", "digits@1", config={"log_predictions": False})


def apply(home: Path, state: str, server: Server) -> None:
    """Put the registry in ``state``; wait until both workers run it."""
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    with Registry(Settings(home=home)) as registry:
        running = registry.experiment("digits")
        if running is not None:
            registry.end_experiment(running.id, "stopped", actor="bench")
        log = {"nothing": False, "logging": True}.get(state)
        registry.set_endpoint("digits", "digits@1", config={"log_predictions": log})
        if state == "shadow":
            registry.start_experiment("digits", "digits@2", mode="shadow", actor="bench")
        elif state.startswith("canary"):
            registry.start_experiment("digits", "digits@2", mode="canary", percent=10, actor="bench")
        generation = registry.state_generation()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = registry.workers("digits", alive_within_s=5)
            if len(rows) == 2 and all(w.generation >= generation and w.state == "serving" for w in rows):
                return
            time.sleep(0.1)
    raise RuntimeError(f"the workers did not apply {state!r}")


@dataclass
class Run:
    """One wrk run and the server's CPU time (all its processes) per answered request, in µs."""

    wrk: WrkResult
    cpu_us: float


def measure(args: argparse.Namespace, home: Path, cache: Path) -> dict[str, list[Run]]:
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}/v1/endpoints/digits/predict"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "PROMETHEUS_"))}
    env.update(MODELRUNNER_HOME=str(home), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    argv = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
        "--endpoint",
        "digits=digits@1",
    ]
    server = Server(
        Launch(argv=argv, url=url, body_form="modelrunner", cwd=ROOT, env=env),
        cache / "experiments-server.log",
    )
    body = models.body_path(cache, "modelrunner", 1)
    results: dict[str, list[Run]] = {s: [] for s in STATES}
    server.start()
    try:
        server.wait_ready(body.read_bytes())
        for _ in range(args.rounds):
            for state in STATES:
                apply(home, state, server)
                run_wrk(url, body, connections=args.connections, seconds=2)  # warm-up
                cpu = server.cpu_s()
                result = run_wrk(url, body, connections=args.connections, seconds=args.seconds)
                cpu_us = (server.cpu_s() - cpu) / max(result.requests, 1) * 1e6
                results[state].append(Run(result, cpu_us))
                print(
                    f"{state:12s} {result.rps:8.0f} req/s  p99 {result.p99_ms:6.2f} ms  "
                    f"{cpu_us:6.0f} µs CPU/req  failed {result.failed}  (load {loadavg():.1f})",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    return results


def table(results: dict[str, list[Run]]) -> str:
    """Each state's best round (req/s); CPU per request: the lowest round (least disturbed)."""
    best = {s: max(r, key=lambda run: run.wrk.rps).wrk for s, r in results.items()}
    cpu = {s: min(run.cpu_us for run in r) for s, r in results.items()}
    base = best["nothing"]
    lines = [
        "| state | req/s | vs nothing | p50 ms | p99 ms | p99 vs nothing | server CPU µs/request "
        "| vs nothing | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for state, r in best.items():
        lines.append(
            f"| {state} | {r.rps:,.0f} | {r.rps / base.rps - 1:+.1%} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.p99_ms / base.p99_ms:.2f}x | {cpu[state]:,.0f} | "
            f"{cpu[state] / cpu['nothing'] - 1:+.1%} | {r.failed} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    cache = envs.CACHE
    with tempfile.TemporaryDirectory(prefix="mr-bench-exp-") as tmp:
        home = Path(tmp) / "home"
        setup(home, cache)
        results = measure(args, home, cache)
    print(table(results))
    if args.json:
        raw: dict[str, Any] = {
            s: [{**vars(r.wrk), "cpu_us": r.cpu_us} for r in rs] for s, rs in results.items()
        }
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "results": raw}, indent=2))


if __name__ == "__main__":
    main()
