"""Server processes: start a launch, time it to its first answered prediction, measure memory, stop it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.peers.servers import Launch

log = logging.getLogger("bench.procs")


class Server:
    """A running server's process tree (its own process group)."""

    def __init__(self, launch: Launch, log_path: Path) -> None:
        self.launch = launch
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.launch.argv,
            cwd=self.launch.cwd,
            env=self.launch.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_ready(self, body: bytes, timeout_s: float = 180.0) -> float:
        """Seconds from start until a prediction answered 200 (the cold start)."""
        assert self.proc is not None
        deadline = self.started + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            if post(self.launch.url, body, timeout=2.0)[0] == 200:
                return time.monotonic() - self.started
            time.sleep(0.02)
        raise RuntimeError(f"server not ready after {timeout_s:.0f}s; see {self.log_path}")

    def pids(self) -> list[int]:
        assert self.proc is not None
        return tree(self.proc.pid)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the live processes of the tree."""
        return sum(cpu_s(pid) for pid in self.pids())

    def rss_mb(self) -> float:
        """Resident memory of the whole process tree, in MB."""
        return sum(rss_kb(pid) for pid in self.pids()) / 1024.0

    def rss_by_pid(self) -> dict[int, float]:
        return {pid: rss_kb(pid) / 1024.0 for pid in self.pids()}

    def cpu_by_pid(self) -> dict[int, float]:
        return {pid: cpu_s(pid) for pid in self.pids()}

    def stop(self, grace_s: float = 20.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # stragglers of the group (workers that outlived their parent)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def post(url: str, body: bytes, timeout: float = 10.0, method: str = "POST") -> tuple[int, bytes]:
    """One HTTP request; (status, body), status 0 when nothing answered."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, b""


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (``/proc/stat``'s first line)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_busy(window_s: float = 0.5) -> float:
    """The fraction of the machine's CPU time spent busy over the next ``window_s`` seconds (all cores)."""
    busy0, total0 = _cpu_ticks()
    time.sleep(window_s)
    busy1, total1 = _cpu_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_quiet(max_busy: float = 0.1, window_s: float = 0.5, timeout_s: float = 20.0) -> float:
    """Wait until the machine is quiet -- at most ``max_busy`` of its CPU busy over ``window_s`` -- or
    ``timeout_s`` passed; the busy fraction last seen. A server's start is timed from a quiet machine: the
    previous server's processes exiting (some peers take seconds) or files still being written must not be
    counted in the next one's start."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = cpu_busy(window_s)
        if busy <= max_busy or time.monotonic() >= deadline:
            return busy


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def loadavg() -> float:
    return os.getloadavg()[0]


def free_port() -> int:
    """A port with the next two also free (MLServer listens on port+1 and port+2)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000 and all(_free(port + i) for i in (1, 2)):
            return port
    raise RuntimeError("no free port")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def load_cell(
    url: str, body: Path, server: Server, connections: int, duration: float, warmup: float
) -> dict[str, Any]:
    """One cell: wrk posting ``body`` for ``warmup`` seconds (not counted), then ``duration`` seconds; its
    req/s, latencies, failures, the load average when it started and ``server``'s CPU per request."""
    if warmup:
        loadgen.run_wrk(url, body, connections=connections, seconds=warmup)
    load, cpu0 = loadavg(), server.cpu_s()
    res = loadgen.run_wrk(url, body, connections=connections, seconds=duration)
    cpu_us = (server.cpu_s() - cpu0) / max(res.requests, 1) * 1e6
    return {
        "rps": round(res.rps, 1),
        "p50_ms": round(res.p50_ms, 2),
        "p99_ms": round(res.p99_ms, 2),
        "failed": res.failed,
        "requests": res.requests,
        "loadavg": round(load, 2),
        "server_cpu_us_per_request": round(cpu_us, 1),
    }


def set_batching(admin_url: str, endpoint: str, config: dict[str, Any]) -> None:
    """PATCH a modelrunner endpoint's batching config (``{"batch": False}``: off) and give every worker time
    to apply it (they poll every 100 ms)."""
    status, body = post(
        f"{admin_url}/admin/endpoints/{endpoint}/config", json.dumps(config).encode(), method="PATCH"
    )
    if status != 200:
        raise RuntimeError(f"could not set batching {config}: HTTP {status} {body[:200]!r}")
    time.sleep(1.0)
