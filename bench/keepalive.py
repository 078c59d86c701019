"""Sequential requests on one keep-alive connection to ``modelrunner serve``: the median round trip, in ms.

Moved here from tests/runner/test_serve.py (tests check correctness, benchmarks measure speed). A median
near 40 ms means Nagle's algorithm is on (the client's delayed ACK stalls each small response); with
TCP_NODELAY a local round trip of a tiny model takes a few ms. The budget it was held to: 25 ms.

    python bench/keepalive.py [--requests 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

BUDGET_MS = 25.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_iris(home: Path, work: Path) -> None:
    """A logistic regression on iris (bundled with scikit-learn), pushed as iris@1."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelrunner import save_model
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    x, y = load_iris(return_X_y=True)
    save_model(
        LogisticRegression(max_iter=500).fit(x, y), work / "iris", name="iris", sample=x[:2], license="MIT"
    )
    with Registry(Settings(home=home)) as reg:
        reg.push(work / "iris")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("serve did not become ready")


def measure(url: str, requests: int) -> list[float]:
    body = {"instances": [{"input": np.zeros(4).tolist()}]}
    times = []
    with httpx.Client(base_url=url, timeout=10) as client:  # one keep-alive connection
        for _ in range(requests):
            t0 = time.perf_counter()
            r = client.post("/v1/endpoints/iris/predict", json=body)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
    return times[10:]  # the first requests warm the connection and the worker up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        push_iris(home, Path(tmp))
        env = {**os.environ, "MODELRUNNER_HOME": str(home)}
        argv = [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--endpoint",
            "iris=iris@1",
        ]
        url = f"http://127.0.0.1:{port}"
        with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
            try:
                wait_ready(url, proc)
                times = measure(url, max(args.requests, 11))
            finally:
                proc.terminate()
                proc.wait(30)
    ms = sorted(t * 1000 for t in times)
    print(
        f"sequential keep-alive requests: median {statistics.median(ms):.1f} ms, "
        f"p90 {ms[int(len(ms) * 0.9)]:.1f} ms, budget {BUDGET_MS:.0f} ms (median)"
    )


if __name__ == "__main__":
    main()
