"""swap / rollback / endpoints: against the registry when no server answers, and against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.cli_helpers import Cli


@pytest.fixture
def two_versions(cli: Cli, iris_bundle: Path) -> None:
    assert cli("push", iris_bundle, "--alias", "production").code == 0
    assert cli("push", iris_bundle).code == 0


def test_swap_without_server_writes_desired_state(cli: Cli, two_versions: None, free_url: str) -> None:
    from modelrunner import Registry

    first = cli("endpoint", "create", "iris", "iris@production", "--url", free_url)
    assert first.code == 0, first.err
    assert f"no server answers at {free_url}" in first.out
    assert "iris -> iris@production" in first.out
    second = cli("swap", "iris", "iris@2", "--url", free_url, "--wait", "--timeout", "1")
    assert "was iris@production" in second.out
    assert "no live worker serves iris" in second.out
    with Registry.from_env() as registry:
        state = registry.endpoint("iris")
    assert (state.target, state.previous_target) == ("iris@2", "iris@production")

    back = cli("rollback", "iris", "--url", free_url)
    assert back.code == 0, back.err
    assert "iris -> iris@production" in back.out

    table = cli("endpoints", "--url", free_url)
    assert table.code == 0, table.err
    row = next(line for line in table.out.splitlines() if "iris@production" in line)
    assert "no live worker" in row


def test_endpoints_without_server_shows_worker_rows(cli: Cli, two_versions: None, free_url: str) -> None:
    from modelrunner import Registry
    from modelrunner.registry import WorkerStatus

    cli("endpoint", "create", "iris", "iris@1", "--url", free_url)
    with Registry.from_env() as registry:
        registry.report_worker(
            WorkerStatus(
                runner_id="r1",
                endpoint="iris",
                state="serving",
                target="iris@1",
                model="iris",
                version=1,
                pid=4242,
                load_ms=12,
            )
        )
    out = cli("endpoints", "--url", free_url).out
    row = next(line for line in out.splitlines() if "pid 4242" in line)
    assert "iris@1" in row and "serving" in row and "12" in row


def test_swap_refuses_an_unknown_endpoint_without_server(cli: Cli, two_versions: None, free_url: str) -> None:
    from modelrunner import Registry

    assert cli("endpoint", "create", "iris", "iris@production", "--url", free_url).code == 0
    typo = cli("swap", "irsi", "iris@2", "--url", free_url)
    assert typo.code == 2, typo.out
    lines = typo.err.strip().splitlines()
    assert len(lines) == 1 and "unknown endpoint 'irsi' (endpoints: iris)" in lines[0], typo.err
    assert "modelrunner endpoint create irsi iris@2" in lines[0]
    again = cli("endpoint", "create", "iris", "iris@2", "--url", free_url)
    assert again.code == 2 and "already exists" in again.err and "swap iris" in again.err
    with Registry.from_env() as registry:
        assert [(e.name, e.target) for e in registry.endpoints()] == [("iris", "iris@production")]
    deleted = cli("endpoint", "delete", "iris", "--url", free_url)
    assert deleted.code == 0 and "deleted endpoint iris" in deleted.out, deleted.err
    gone = cli("endpoint", "delete", "iris", "--url", free_url)
    assert gone.code == 2 and "unknown endpoint 'iris'" in gone.err
    with Registry.from_env() as registry:
        assert registry.endpoints() == []
        assert [a.action for a in registry.audit(subject="endpoint:iris")][:2] == [
            "endpoint.delete",
            "endpoint.set",
        ]


def test_swap_without_server_bad_input(cli: Cli, two_versions: None, free_url: str) -> None:
    for args, needle in (
        (("swap", "iris", "iris@9"), "9"),
        (("swap", "iris", "nosuchmodel@production"), "nosuchmodel"),
        (("rollback", "nosuchendpoint"), "nosuchendpoint"),
    ):
        result = cli(*args, "--url", free_url)
        assert result.code == 2, (args, result.out, result.err)
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.err
    assert "no endpoints yet" in cli("endpoints", "--url", free_url).err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(two_versions: None, tmp_home: Path, tmp_path: Path) -> Iterator[str]:
    """``modelrunner serve`` (one worker) serving iris=iris@production on a free loopback port."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home)}
    cmd = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "--endpoint",
        "iris=iris@production",
    ]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("server not ready in 60 s")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_swap_rollback_endpoints_against_a_server(cli: Cli, server: str, tmp_path: Path) -> None:
    swapped = cli("swap", "iris", "iris@2", "--wait", "--url", server)
    assert swapped.code == 0, swapped.err
    assert "switched" in swapped.out
    worker = next(line for line in swapped.out.splitlines() if "iris@2" in line and "serving" in line)
    assert str(os.getpid()) not in worker  # the worker's own pid, not ours

    table = cli("endpoints", "--url", server)
    assert table.code == 0, table.err
    assert any("iris@2" in line and "pid " in line for line in table.out.splitlines()), table.out

    back = cli("rollback", "iris", "--wait", "--url", server)
    assert back.code == 0, back.err
    assert "iris -> iris@production" in back.out and "iris@1" in back.out

    moved = cli("alias", "set", "iris@2", "production")  # the runner follows the alias by itself
    assert moved.code == 0, moved.err
    deadline = time.monotonic() + 30
    while "iris@2" not in cli("endpoints", "--url", server).out:
        assert time.monotonic() < deadline, "the runner did not follow the alias"
        time.sleep(0.2)

    unknown = cli("swap", "iris", "nosuchmodel@1", "--url", server)
    assert unknown.code == 2
    assert "nosuchmodel" in unknown.err and len(unknown.err.strip().splitlines()) == 1

    _typo_is_refused_create_and_delete(cli, server)
    _incompatible_swap_is_refused_unless_forced(cli, server, tmp_path)


def _metrics_endpoints(server: str) -> set[str]:
    text = httpx.get(f"{server}/metrics", timeout=10).text
    return {
        line.split('endpoint="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("modelrunner_loaded_version{")
    }


def _typo_is_refused_create_and_delete(cli: Cli, server: str) -> None:
    """(Part of the test above.) swap never creates; endpoint create / delete do, and /metrics follows."""
    typo = cli("swap", "irsi", "iris@2", "--wait", "--url", server)
    assert typo.code == 2, typo.out
    assert "unknown endpoint 'irsi' (endpoints: iris)" in typo.err and "endpoint create irsi" in typo.err
    assert [e["name"] for e in httpx.get(f"{server}/admin/endpoints").json()] == ["iris"]

    created = cli("endpoint", "create", "irsi", "iris@2", "--wait", "--url", server)
    assert created.code == 0 and "switched" in created.out, created.err
    assert _metrics_endpoints(server) == {"iris", "irsi"}
    deleted = cli("endpoint", "delete", "irsi", "--url", server)
    assert deleted.code == 0 and "deleted endpoint irsi" in deleted.out, deleted.err
    deadline = time.monotonic() + 30
    while "irsi" in _metrics_endpoints(server):  # every worker drops it at its next poll
        assert time.monotonic() < deadline, "/metrics still reports the deleted endpoint"
        time.sleep(0.1)
    assert _metrics_endpoints(server) == {"iris"}


def _incompatible_swap_is_refused_unless_forced(cli: Cli, server: str, tmp_path: Path) -> None:
    """(Part of the test above: one server start is the slow part.)"""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelrunner import save_model

    x, y = load_iris(return_X_y=True)
    narrow = LogisticRegression(max_iter=500).fit(x[:, :3], y)  # 3 inputs instead of 4: breaks clients
    save_model(narrow, tmp_path / "narrow", name="narrow", sample=x[:3, :3], license="MIT")
    assert cli("push", tmp_path / "narrow").code == 0

    refused = cli("swap", "iris", "narrow@1", "--wait", "--timeout", "30", "--url", server)
    assert refused.code == 2, refused.out
    lines = refused.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in refused.err

    forced = cli("swap", "iris", "narrow@1", "--wait", "--force", "--url", server)
    assert forced.code == 0, forced.err
    assert "switched" in forced.out and "narrow@1" in forced.out
