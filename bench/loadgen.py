"""The load generator: wrk (Debian's package) with a Lua script that POSTs a JSON body; output parsed."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench.loadgen")

LUA = Path(__file__).resolve().parent / "post.lua"
THREADS = 2


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    log.info("installing wrk (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers + socket errors (connect, read, write, timeout)


def run_wrk(
    url: str,
    body: Path,
    *,
    connections: int,
    seconds: float,
    timeout_s: float = 5.0,
    content_type: str = "application/json",
) -> WrkResult:
    """wrk posting ``body`` on ``connections`` keep-alive connections (2 threads; 1 for one connection)."""
    wrk = ensure_wrk()
    argv = [
        wrk,
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=dict(os.environ, WRK_BODY=str(body), WRK_CONTENT_TYPE=content_type),
        check=False,
        timeout=seconds + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")
    return parse(out.stdout)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(text: str) -> WrkResult:
    """Read wrk's ``--latency`` report."""
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    failed = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        failed += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        failed += sum(int(g) for g in sock.groups())
    return WrkResult(requests, rps, p50, p99, failed)
