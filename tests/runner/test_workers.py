"""Supervision through a real ``modelrunner serve --workers 2``: a worker whose event loop stops (its
heartbeat pipe falls silent) is killed and replaced within the liveness timeout, and the server answers on.
The first worker writes the ``--endpoint`` targets and reports to the supervisor."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelrunner.errors import DeadlineExceeded, FailedPrecondition, NotFound, Unavailable
from modelrunner.registry.registry import Registry
from modelrunner.runner.supervisor import HUNG_GRACE_S, Slot, Supervisor
from modelrunner.runner.workers import _await_report, write_expected
from modelrunner.settings import Settings
from support.runner_server import Load, Server, save_toy

LIVENESS_S = 4.0  # short for the test; long enough that a busy machine does not starve a healthy loop


@pytest.mark.slow
def test_a_hung_worker_is_killed_and_replaced_and_the_server_answers_on(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "v1", 1), name="toy")
    env = {"MODELRUNNER_LIVENESS_TIMEOUT_S": str(LIVENESS_S)}
    with Server(home, "--endpoint", "toy=toy@1", env=env) as server, Load(server.url) as load:
        load.wait_for(50)
        before = server.worker_pids()
        assert len(before) == 2
        os.kill(before[0], signal.SIGSTOP)  # its event loop stops: no beats, no answers, no exit
        stopped_at = time.monotonic()
        while before[0] in server.worker_pids():
            assert time.monotonic() - stopped_at < LIVENESS_S + HUNG_GRACE_S + 5, "the hung worker was kept"
            time.sleep(0.05)
        killed = time.monotonic() - stopped_at
        rows: list[dict[str, object]] = []
        while len(rows) != 2:  # its replacement starts (a cold start: slow on a busy machine) and serves
            assert time.monotonic() - stopped_at < 90, "the hung worker was not replaced"
            time.sleep(0.1)
            pids = server.worker_pids()
            try:
                rows = [w for w in server.workers(alive_within_s=1.5) if w["pid"] in pids]
            except (Unavailable, DeadlineExceeded):  # the admin connection may have been on the killed
                rows = []  # worker, or wait in its slot's backlog for the replacement
        replaced = time.monotonic()
        assert all(w["state"] == "serving" and w["version"] == 1 for w in rows)
        load.wait_for(200)
    stderr = server.stderr()
    assert f"(pid {before[0]}) is hung: no heartbeat from its event loop" in stderr, stderr[-2000:]
    assert before[1] in pids, "the healthy worker was left alone"
    failed = load.failures()
    print(
        f"\nSIGSTOP of one of 2 workers: killed after {killed:.1f}s, replacement serving after "
        f"{replaced - stopped_at:.1f}s; {len(failed)} of {len(load.results)} requests failed"
    )
    assert all(not f.error.startswith("HTTP") and f.ended >= stopped_at for f in failed), failed[:3]
    assert not [r for r in load.results if r.started > replaced and r.error]
    during = [r for r in load.results if stopped_at < r.started and r.ended < replaced and r.error is None]
    assert during, "the healthy worker answered while the other one hung"


def test_the_first_worker_writes_the_targets_and_reports_errors_the_supervisor_raises(tmp_path: Path) -> None:
    """``serve``'s first worker writes the --endpoint targets (``write_expected``); the supervisor waits for
    its report and raises its error as its own, or says when the worker died before it reported."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    lead = Supervisor([], [], {}, entry="unused")
    lead.slots = [Slot(0, socket.socket())]
    lead.slots[0].proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with Registry(settings) as reg:
            reg.push(save_toy(tmp_path / "v1", 1), name="toy")
            report = tmp_path / "ok.json"
            assert write_expected(settings, reg, {"toy": "toy@1"}, report)
            _await_report(lead, report)  # returns: written
            assert reg.endpoint("toy").target == "toy@1"
            bad = tmp_path / "bad.json"
            assert not write_expected(settings, reg, {"toy": "nosuchmodel@3"}, bad)
            assert reg.endpoint("toy").target == "toy@1"  # nothing written
        with pytest.raises(NotFound, match="nosuchmodel"):
            _await_report(lead, bad)
    finally:
        lead.slots[0].proc.kill()
        lead.slots[0].proc.wait()
        lead.slots[0].sock.close()
    lead.slots[0].proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(FailedPrecondition, match=r"worker 0 exited \(code 3\) before it wrote"):
        _await_report(lead, tmp_path / "never.json")
    lead.signalled = True  # a stop signal: the wait ends, the caller stops the workers
    _await_report(lead, tmp_path / "never.json")
