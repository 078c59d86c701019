"""The services of the multi-host test, each started inside a :mod:`netlab` namespace: PostgreSQL (initdb +
pg_ctl, as the ``postgres`` user), an S3 endpoint (moto in server mode) and ``modelrunner serve`` runners;
plus a load generator spreading requests over the runners."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelrunner.registry.registry import Registry
from support.netlab import Host, NetLab

PG_PORT = 5432
S3_PORT = 5000
HTTP_PORT = 8080
BUCKET = "models"
BODY = {"instances": [{"x": [0.5, 0.25, 0.0, 1.0]}]}


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class Postgres:
    """A throw-away PostgreSQL cluster listening on the lab's service address (trust auth on the lab net)."""

    def __init__(self, lab: NetLab) -> None:
        self.lab = lab
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{lab.tag}-pg-"))
        self.url = f"postgresql+psycopg://postgres@{lab.svc_ip}:{PG_PORT}/postgres"

    def _as_postgres(self, *argv: str) -> list[str]:
        if os.geteuid() != 0:
            return list(argv)
        return ["runuser", "-u", "postgres", "--", *argv]

    def start(self) -> Postgres:
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = self.dir / "data"
        subprocess.run(
            self._as_postgres(
                str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with open(data / "pg_hba.conf", "a") as fh:
            fh.write(f"host all all 10.{self.lab.octet}.0.0/16 trust\n")
        opts = (
            f"-c listen_addresses={self.lab.svc_ip} -p {PG_PORT} -c unix_socket_directories={self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self.lab.svc_argv(
                *self._as_postgres(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    opts,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        return self

    def stop(self) -> None:
        subprocess.run(
            self._as_postgres(
                str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Server:
    """moto in server mode on the lab's service address; its request log names each client's address."""

    def __init__(self, lab: NetLab, log_dir: Path) -> None:
        self.lab = lab
        self.url = f"http://{lab.store_ip}:{S3_PORT}"
        self.log_path = log_dir / "s3.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> S3Server:
        """Start the server (``start`` waits for it: PostgreSQL can start meanwhile)."""
        log = open(self.log_path, "wb")  # noqa: SIM115 - the server writes it until stop()
        self.proc = subprocess.Popen(
            self.lab.svc_argv(
                sys.executable, "-m", "moto.server", "-H", self.lab.store_ip, "-p", str(S3_PORT)
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def start(self) -> S3Server:
        if self.proc is None:
            self.launch()
        wait_until(self._answers, 60, "the S3 endpoint")
        httpx.put(f"{self.url}/{BUCKET}", timeout=10).raise_for_status()
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"moto exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/", timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    def gets(self, sha: str) -> dict[str, int]:
        """GET requests of the artifact ``sha`` per client address, from the server's request log."""
        counts: dict[str, int] = {}
        key = re.compile(r'(\S+) .*"GET /' + BUCKET + r"/sha256/[0-9a-f]{2}/" + sha + r"\.tar\.gz HTTP")
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = key.match(re.sub(r"\x1b\[[0-9;]*m", "", line))  # without the log's colours
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fleet_env(lab: NetLab, pg: Postgres, s3: S3Server, home: Path) -> dict[str, str]:
    """The environment every runner (and the operator) uses: one registry, one bucket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "AWS_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "MODELRUNNER_HOME": str(home),
            "MODELRUNNER_DATABASE_URL": pg.url,
            "MODELRUNNER_STORE_URL": f"s3://{BUCKET}/",
            "MODELRUNNER_HEARTBEAT_S": "0.5",
            "MODELRUNNER_DRAIN_TIMEOUT_S": "10",
            "MODELRUNNER_ADMIN_TOKEN": "fleet-test-admin",
            "AWS_ENDPOINT_URL": s3.url,
            "AWS_ACCESS_KEY_ID": "fleet",
            "AWS_SECRET_ACCESS_KEY": "fleet",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
    )
    return env


class Runner:
    """``modelrunner serve`` on one lab host, bound to its front address."""

    def __init__(self, host: Host, env: dict[str, str], home: Path, *args: str, workers: int = 1) -> None:
        self.host = host
        self.url = f"http://{host.front_ip}:{HTTP_PORT}"
        self.env = {**env, "MODELRUNNER_HOME": str(home / host.name)}
        # --trust-pickle: the test's toy bundles are pickles, and a runner bound beyond loopback loads a
        # pickle only with a trust decision or this flag (docs/security.md)
        self.argv = host.exec_argv(
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--host",
            host.front_ip,
            "--port",
            str(HTTP_PORT),
            "--workers",
            str(workers),
            "--trust-pickle",
            *args,
        )
        self.log_path = home / f"{host.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Runner:
        log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.host.name} exited {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout, f"runner {self.host.name} ready", 0.1)

    def readyz(self) -> tuple[int, dict[str, Any]]:
        r = httpx.get(f"{self.url}/readyz", timeout=5)
        return r.status_code, r.json()

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL every process of the host (server and workers), as a machine losing power would."""
        pids = subprocess.run(
            ["ip", "netns", "pids", self.host.netns], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@dataclass
class Answer:
    host: str
    started: float
    ended: float
    version: int | None
    error: str | None


@dataclass
class FleetLoad:
    """Client threads (``per_host`` per runner, keep-alive) sending predictions, recording every answer."""

    runners: list[Runner]
    per_host: int = 2
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> FleetLoad:
        for runner in self.runners:
            for _ in range(self.per_host):
                t = threading.Thread(target=self._run, args=(runner,), daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _run(self, runner: Runner) -> None:
        client = httpx.Client(base_url=runner.url, timeout=10)
        name = runner.host.name
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                r = client.post("/v1/endpoints/toy/predict", json=BODY)
                ok = r.status_code == 200
                self.answers.append(
                    Answer(
                        name,
                        t0,
                        time.monotonic(),
                        r.json()["version"] if ok else None,
                        None if ok else f"HTTP {r.status_code}: {r.text[:300]}",
                    )
                )
            except httpx.HTTPError as exc:
                self.answers.append(Answer(name, t0, time.monotonic(), None, f"{type(exc).__name__}: {exc}"))
                client.close()
                client = httpx.Client(base_url=runner.url, timeout=10)
        client.close()

    def failures(self, host: str | None = None) -> list[Answer]:
        return [a for a in self.answers if a.error is not None and host in (None, a.host)]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        start = len(self.answers)
        wait_until(lambda: len(self.answers) >= start + count, timeout, f"{count} answers")

    def first_answer(self, host: str, version: int, after: float) -> float | None:
        """When ``host`` first answered with ``version`` for a request started after ``after``."""
        times = [
            a.ended
            for a in list(self.answers)
            if a.host == host and a.version == version and a.started >= after
        ]
        return min(times) if times else None

    def since(self, host: str, after: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.host == host and a.started >= after]


@dataclass
class Fleet:
    lab: NetLab
    pg: Postgres
    s3: S3Server
    env: dict[str, str]
    home: Path
    registry: Registry
    runners: list[Runner]
    versions: dict[int, int]  # toy tag -> registry version
