"""``modelrunner serve``: exposure check, desired state from --endpoint, the admin client against a real
server (token, errors), TCP_NODELAY (no 40 ms Nagle stalls), graceful SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelrunner.errors import NotFound, Unauthenticated
from modelrunner.registry.registry import Registry
from modelrunner.runner.client import AdminClient
from modelrunner.runner.sockets import is_loopback, url_host
from modelrunner.runner.workers import check_exposure
from modelrunner.settings import Settings
from support.runner_server import BODY, Server, child_pids, save_toy


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MODELRUNNER_HOME": str(home), **(env or {})}
    full.pop("MODELRUNNER_ADMIN_TOKEN", None) if not env or "MODELRUNNER_ADMIN_TOKEN" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "modelrunner", *args], env=full, capture_output=True, text=True, timeout=60
    )


def test_non_loopback_host_needs_a_token(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "MODELRUNNER_ADMIN_TOKEN" in lines[0], out.stderr


def test_a_whitespace_admin_token_is_refused_at_start(tmp_path: Path) -> None:
    out = run_cli(
        tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", env={"MODELRUNNER_ADMIN_TOKEN": "  \t "}
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "MODELRUNNER_ADMIN_TOKEN" in lines[0] and "whitespace" in lines[0], out.stderr


@pytest.mark.parametrize("host", ["::1", "[::1]", "[::1] ", "LOCALHOST", "127.0.0.1"])
def test_loopback_hosts_are_parsed_alike(host: str) -> None:
    assert is_loopback(host)
    check_exposure(host, Settings(admin_token=None))  # no token needed on loopback, however it is written
    assert url_host(host) in ("[::1]", "localhost", "127.0.0.1")


def test_bad_endpoint_option_is_one_line(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "serve", "--port", "0", "--endpoint", "toy")
    assert out.returncode == 2 and "expected NAME=TARGET" in out.stderr
    out = run_cli(tmp_path, "serve", "--port", "0", "--endpoint", "toy=nosuchmodel@3")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "nosuchmodel" in out.stderr


def _processes_with(home: Path) -> list[int]:
    """Live processes whose environment names ``home`` (a lead worker left behind would)."""
    found, needle = [], f"MODELRUNNER_HOME={home}\0".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_a_refused_serve_leaves_no_lead_worker_behind(tmp_path: Path) -> None:
    """``serve`` spawns its first worker before it parses its command line (runner/lead.py): a usage error,
    an exposure refused, a port in use each kill it and remove its metrics folder."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        for args in (
            ("--port", "0", "--workers", "zero"),
            ("--host", "0.0.0.0", "--port", "0"),
            ("--port", str(taken.getsockname()[1])),
        ):
            out = run_cli(tmp_path, "serve", *args, env=env)
            assert out.returncode == 2, out.stderr
            assert not _processes_with(tmp_path) and not list(temp.iterdir()), (args, out.stderr)
    finally:
        taken.close()
    assert run_cli(tmp_path, "serve", "--help", env=env).returncode == 0


def test_admin_client_nodelay_and_graceful_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "v1", 1), name="toy")
        reg.push(save_toy(tmp_path / "v2", 2), name="toy")
    env = {"MODELRUNNER_ADMIN_TOKEN": "s3cret"}
    server = Server(home, "--endpoint", "toy=toy@1", env=env)
    server.admin.close()
    server.admin = AdminClient(server.url, token="s3cret")
    with server:
        with Registry(Settings(home=home)) as reg:
            assert reg.endpoint("toy").target == "toy@1", "--endpoint wrote the desired state"
        with AdminClient(server.url) as anonymous, pytest.raises(Unauthenticated):
            anonymous.endpoints()
        with pytest.raises(NotFound, match="nosuchmodel"):
            server.admin.swap("toy", "nosuchmodel@1", wait=True, timeout=5)
        assert server.admin.swap("toy", "toy@2", wait=True, timeout=20)["outcome"] == "switched"
        back = server.admin.rollback("toy", wait=True, timeout=20)
        assert back["outcome"] == "switched" and {w["version"] for w in back["workers"]} == {1}
        (ep,) = server.admin.endpoints()
        assert ep["name"] == "toy" and ep["target"] == "toy@1"
        with httpx.Client(base_url=server.url, timeout=5) as client:  # one keep-alive connection
            # their latency (Nagle's algorithm off) is measured by bench/keepalive.py
            for _ in range(20):
                assert client.post("/v1/endpoints/toy/predict", json=BODY).status_code == 200
        workers = server.worker_pids()
        assert len(workers) == 2
        assert server.stop() == 0
    assert child_pids(server.proc.pid) == [] and not any(os.path.exists(f"/proc/{p}") for p in workers)


def test_served_workers_refuse_cross_site_requests_and_foreign_hosts(tmp_path: Path) -> None:
    """The worker processes of ``serve`` (loopback, no token) run the checks of server/guard.py with the bound
    address; the CLI's client and plain predictions are unaffected."""
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "v1", 1), name="toy")
        reg.push(save_toy(tmp_path / "v2", 2), name="toy")
    with (
        Server(home, "--endpoint", "toy=toy@1", workers=1) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        r = http.get("/admin/endpoints", headers={"host": "evil.example"})
        assert r.status_code == 421 and "evil.example" in r.text
        form = {"content-type": "text/plain"}
        r = http.post("/v2/repository/models/toy/unload", content=b"{}", headers=form)
        assert r.status_code == 415
        r = http.post("/admin/endpoints/toy/rollback", json={}, headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and "https://evil.example" in r.text
        r = http.post("/v1/endpoints/toy/predict", json=BODY, headers={"host": "evil.example"})
        assert r.status_code == 200, r.text  # inference is not host-checked (the hot path)
        assert server.admin.swap("toy", "toy@2", wait=True, timeout=20)["outcome"] == "switched"
        assert server.admin.rollback("toy", wait=True, timeout=20)["outcome"] == "switched"


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "v1", 1), name="toy")
    server = Server(home, "--endpoint", "toy=toy@1", workers=1)
    with server:
        (worker,) = server.worker_pids()
        assert server.proc is not None
        server.proc.kill()  # SIGKILL: no chance to stop its workers
        server.proc.wait()
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{worker}") and _state(worker) != "Z":
            assert time.monotonic() < deadline, "an orphaned worker kept running"
            time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_serve_start_removes_what_killed_pushes_left(tmp_path: Path) -> None:
    """Orphans past MODELRUNNER_ORPHAN_GRACE_S go at serve start (even a failing one); young ones stay."""
    old, young = tmp_path / "cache" / ".push-old", tmp_path / "cache" / ".push-young"
    part = tmp_path / "artifacts" / "tmp" / "push-old-0123.part"
    for folder in (old, young, part.parent):
        folder.mkdir(parents=True)
    for path in (old / "bundle.tar.gz", young / "bundle.tar.gz", part):
        path.write_bytes(b"\0" * 4096)
    hour_ago = time.time() - 3600
    for path in (old / "bundle.tar.gz", old, part):
        os.utime(path, (hour_ago, hour_ago))
    out = run_cli(
        tmp_path,
        "serve",
        "--port",
        "0",
        "--endpoint",
        "toy=nosuchmodel@3",
        env={"MODELRUNNER_ORPHAN_GRACE_S": "600"},
    )
    assert out.returncode == 2 and "nosuchmodel" in out.stderr
    assert not old.exists() and not part.exists()
    assert young.is_dir()
