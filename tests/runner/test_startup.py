"""Start-up timings (runner/startup.py): phases and steps of one process's start, logged once; and
``serve --timings`` logging one line per process (the supervisor and each worker)."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from modelrunner.registry.registry import Registry
from modelrunner.runner import startup
from modelrunner.runner.startup import StartupTimer
from modelrunner.settings import Settings
from support.runner_server import Server, save_toy

SPAN = r"{} \d+\.\d{{3}}/\d+\.\d{{3}}s"


def test_phases_close_in_order_and_steps_add_up_across_threads() -> None:
    timer = StartupTimer()
    time.sleep(0.02)
    timer.mark("imports")

    def work() -> None:
        with timer.step("load"):
            time.sleep(0.01)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    timer.mark("runtime")
    assert [name for name, _, _ in timer.phases] == ["spawn", "imports", "runtime"]
    assert timer.phases[1][1] >= 0.02 and timer.phases[0][1] >= 0.0
    assert timer.steps["load"][0] >= 0.02, "two steps of one name add up"
    line = timer.line("w3")
    assert re.fullmatch(
        rf"startup w3: {SPAN.format('spawn')} \| {SPAN.format('imports')} \| {SPAN.format('runtime')}"
        rf" = {SPAN.format('')[1:]}; steps: {SPAN.format('load')}",
        line,
    ), line


def test_report_logs_once_at_debug_unless_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(startup.ENV, raising=False)
    caplog.set_level(logging.DEBUG, logger="modelrunner.runner.startup")
    timer = StartupTimer()
    timer.report("w0", "bind")
    timer.report("w0", "bind")
    timer.mark("later")  # after the report: ignored
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG and record.getMessage().startswith("startup w0: spawn")
    assert [name for name, _, _ in timer.phases] == ["spawn", "bind"]
    caplog.clear()
    monkeypatch.setenv(startup.ENV, "1")
    StartupTimer().report("supervisor", "desired state")
    (record,) = caplog.records
    assert record.levelno == logging.INFO and "desired state" in record.getMessage()


def test_serve_timings_logs_every_process_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "v1", 1), name="toy")
    server = Server(home, "--endpoint", "toy=toy@1", "--timings", workers=1)
    with server:
        pass
    lines = [ln[ln.index("startup ") :] for ln in server.stderr().splitlines() if "startup " in ln]
    supervisor = [ln for ln in lines if ln.startswith("startup supervisor: ")]
    worker = [ln for ln in lines if ln.startswith("startup w0: ")]
    assert len(supervisor) == 1 and len(worker) == 1, lines
    for phase in ("spawn", "imports", "bind", "spawn workers", "desired state"):
        assert re.search(SPAN.format(phase), supervisor[0]), supervisor[0]
    for phase in ("spawn", "imports", "registry", "app", "runtime", "bind", "load", "warmup"):
        assert re.search(SPAN.format(phase), worker[0]), worker[0]
    # w0 was spawned before the command line was parsed, then handed its arguments (runner/lead.py)
    assert re.search(rf"imports [\d.]+/[\d.]+s \| {SPAN.format('arguments')} \| ", worker[0]), worker[0]
