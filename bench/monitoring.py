"""The cost of drift monitoring: single-row req/s of ``modelrunner serve`` with and without it.

    python bench/monitoring.py [--rounds 5] [--seconds 8] [--connections 8]

Pushes digits@1 (LogisticRegression, 64 float features -> label + 10 probabilities) saved *with* its
training data, so the served version has a reference profile and every request is sketched (64 input
features + the predicted label, plus the confidence). Starts two servers (one worker each), one with
``MODELRUNNER_DRIFT_MONITORING=0``; then, round after round, loads each in turn with wrk (single-row JSON
requests), so both see the same machine noise. Prints the per-round req/s and the medians, and the hook's
in-process cost (``Recorder.observe`` per request; the flush thread's count per row). Writes
bench/results/monitoring-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench import loadgen  # noqa: E402
from bench.protocols import _free_port  # noqa: E402
from bench.protocols import stop_server as stop  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def prepare(home: Path) -> np.ndarray:
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import modelrunner as mr
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=200).fit(x, y)
    mr.save_model(
        model,
        home / "bundle",
        name="digits",
        sample=x[:2],
        license="MIT",
        training_data={"input": x, "label": y},
    )
    with Registry(Settings(home=home)) as registry:
        registry.push(home / "bundle")
    return np.asarray(x, dtype=np.float64)


def start(home: Path, monitoring: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "MODELRUNNER_HOME": str(home),
        "MODELRUNNER_DRIFT_MONITORING": str(int(monitoring)),
        "OMP_NUM_THREADS": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "-e",
        "digits=digits@1",
    ]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"modelrunner serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("modelrunner serve was not ready in 180s")


def hook_cost(bundle_path: Path, x: np.ndarray) -> dict[str, float]:
    """In-process: microseconds per ``observe`` (the request's share) and per row counted at flush."""
    from modelrunner.bundle.bundle import open_bundle
    from modelrunner.monitoring.sketch import Recorder

    bundle = open_bundle(bundle_path)
    profile, predictor = bundle.profile(), bundle.load()
    rec = Recorder("digits", "digits", 1, profile.binner(), max_pending=10**9)
    batches = [({"input": x[i : i + 1]}, predictor.predict({"input": x[i : i + 1]})) for i in range(len(x))]
    t0 = time.perf_counter()
    for inputs, outputs in batches:
        rec.observe(inputs, outputs)
    t1 = time.perf_counter()
    rec.fold()
    t2 = time.perf_counter()
    return {"observe_us": (t1 - t0) / len(batches) * 1e6, "fold_us_per_row": (t2 - t1) / len(batches) * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/monitoring.py")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--connections", type=int, default=8)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        x = prepare(home)
        body = Path(tmp) / "body.json"
        body.write_bytes(json.dumps({"instances": [{"input": [float(v) for v in x[0]]}]}).encode())
        cost = hook_cost(home / "bundle", x)
        servers = {mode: start(home, mode == "on") for mode in ("off", "on")}
        rps: dict[str, list[float]] = {"off": [], "on": []}
        try:
            for _, url in servers.values():  # warm-up
                loadgen.run_wrk(
                    f"{url}/v1/endpoints/digits/predict", body, connections=args.connections, seconds=2
                )
            for r in range(args.rounds):
                for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    url = servers[mode][1]
                    res = loadgen.run_wrk(
                        f"{url}/v1/endpoints/digits/predict",
                        body,
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                    rps[mode].append(res.rps)
                    print(
                        f"round {r + 1} monitoring {mode}: {res.rps:.0f} req/s, p99 {res.p99_ms:.1f} ms, "
                        f"failed {res.failed}"
                    )  # noqa: T201
        finally:
            for proc, _ in servers.values():
                stop(proc)
    return report(rps, cost, args)


def report(rps: dict[str, list[float]], cost: dict[str, float], args: argparse.Namespace) -> int:
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    overhead = (off - on) / off * 100
    row = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "connections": args.connections,
        "rps_off": rps["off"],
        "rps_on": rps["on"],
        "median_off": off,
        "median_on": on,
        "overhead_pct": overhead,
        "load": os.getloadavg()[0],
        **cost,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "monitoring-latest.json").write_text(json.dumps(row, indent=2) + "\n")
    md = (
        "| single-row req/s, 1 worker | monitoring off | monitoring on | cost | observe() per request | "
        "count per row (flush thread) |\n|---|---|---|---|---|---|\n"
        f"| median of {args.rounds} x {args.seconds:g} s (wrk -c{args.connections}) | {off:.0f} | {on:.0f} "
        f"| {overhead:.1f} % | {cost.get('observe_us', 0):.1f} us "
        f"| {cost.get('fold_us_per_row', 0):.1f} us |\n"
    )
    (RESULTS / "monitoring-latest.md").write_text(md)
    print(md)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
