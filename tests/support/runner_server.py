"""Integration helpers: bundles of toy models, a ``modelrunner serve`` subprocess, a load generator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from modelrunner.runner.client import AdminClient

BODY = {"instances": [{"x": [0.5, 0.25, 0.0, 1.0]}]}


def save_toy(
    path: Path, tag: int, *, size_mb: int = 0, fail: str | None = None, inputs: tuple[str, ...] = ("x",)
) -> Path:
    """A python-flavor bundle of ``toy_models.Tagged``."""
    from modelrunner.bundle import save_model
    from support.toy_models import Tagged

    sample = {name: np.zeros((2, 4)) for name in inputs}
    save_model(Tagged(tag, size_mb=size_mb, fail=fail), path, name="toy", sample=sample, license="MIT")
    return path


def save_sleepy(path: Path) -> Path:
    """A python-flavor bundle of ``toy_models.Sleepy`` (sleeps ``x[0][0]`` seconds per call)."""
    from modelrunner.bundle import save_model
    from support.toy_models import Sleepy

    save_model(Sleepy(), path, name="sleepy", sample={"x": np.zeros((2, 4))}, license="MIT")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return sorted(out)


class Server:
    """``python -m modelrunner serve`` on a free port with ``home`` as MODELRUNNER_HOME."""

    def __init__(self, home: Path, *args: str, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.count = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MODELRUNNER_HOME": str(home),
            "MODELRUNNER_HEARTBEAT_S": "0.5",
            "MODELRUNNER_DRAIN_TIMEOUT_S": "10",
            "TOY_FAILURES": "armed",
            **(env or {}),
        }
        for var in (
            "MODELRUNNER_DATABASE_URL",
            "MODELRUNNER_STORE_URL",
            "MODELRUNNER_CACHE_DIR",
            "PROMETHEUS_MULTIPROC_DIR",
        ):
            self.env.pop(var, None)
        self.argv = [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin = AdminClient(self.url)

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._err: list[bytes] = []
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True)
        self._reader.start()  # read as it comes: a full pipe would block the server's logging
        self.wait_ready()
        return self

    def _read_stderr(self, pipe: Any) -> None:
        """Until the server and its workers have closed their stderr; then the pipe is closed."""
        with pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                self._err.append(chunk)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.admin.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200 and self._all_serving():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("server not ready in time")

    def _all_serving(self) -> bool:
        """/readyz answers from one worker; wait until every worker has loaded what it should serve."""
        rows = self.workers()
        return len({w["runner_id"] for w in rows if w["state"] == "serving"}) == self.count

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stderr(self) -> str:
        """What the server wrote to stderr, once it has exited (its workers may outlive it: 10 s at most)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            return ""
        self._reader.join(10)
        return b"".join(self._err).decode(errors="replace")

    def workers(self, alive_within_s: float = 3.0) -> list[dict[str, Any]]:
        return self.admin.status(alive_within_s=alive_within_s)

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return child_pids(self.proc.pid)


@dataclass
class Result:
    started: float
    ended: float
    version: int | None
    error: str | None


@dataclass
class Load:
    """Client threads sending single-row predictions continuously (keep-alive), recording every answer."""

    url: str
    clients: int = 4
    results: list[Result] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self) -> None:
        path = "/v1/endpoints/toy/predict"
        client = httpx.Client(base_url=self.url, timeout=10)
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                r = client.post(path, json=BODY)
                if r.status_code == 200:
                    self.results.append(Result(t0, time.monotonic(), r.json()["version"], None))
                else:
                    self.results.append(Result(t0, time.monotonic(), None, f"HTTP {r.status_code}: {r.text}"))
            except httpx.HTTPError as exc:
                self.results.append(Result(t0, time.monotonic(), None, f"{type(exc).__name__}: {exc}"))
                client.close()
                client = httpx.Client(base_url=self.url, timeout=10)
        client.close()

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.error is not None]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.results)
        while len(self.results) < start + count:
            assert time.monotonic() < deadline, "the load generator made no progress"
            time.sleep(0.01)
