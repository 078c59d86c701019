"""``serve``'s lead worker (runner/lead.py): spawned before the command line is parsed, handed its arguments,
environment and descriptors later over a control socket; killed when nobody adopts it. Real processes."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrunner.runner import lead

# The lead's stand-in: what the real worker does before its arguments (runner.child.run), then it writes what
# it received to the descriptors and a file named in its new environment.
HELPER = """
import json, os, sys
from modelrunner.runner import lead
argv = lead.receive(int(sys.argv[2]))
if argv is None:
    sys.exit(3)
fd = int(argv[argv.index("--fd") + 1])
beat = int(argv[argv.index("--beat-fd") + 1])
os.write(fd, b"on the socket's descriptor")
os.write(beat, b".")
with open(os.environ["LEAD_OUT"], "w") as fh:
    env = os.environ
    json.dump({"argv": argv, "old": env.get("LEAD_OLD"), "workers": env.get("MODELRUNNER_WORKERS"),
               "metrics": env.get("PROMETHEUS_MULTIPROC_DIR")}, fh)
"""


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module the lead runs (``python -m``), on the path its environment gives it."""
    (tmp_path / "lead_helper.py").write_text(textwrap.dedent(HELPER))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    monkeypatch.setenv("LEAD_OLD", "spawn-time only")
    yield "lead_helper"
    lead.discard()


def test_the_hand_over_gives_arguments_environment_and_descriptors(entry: str, tmp_path: Path) -> None:
    lead.begin(entry)
    taken = lead.take(entry)
    assert taken is not None and lead.take() is None  # one taker
    assert Path(taken.metrics_dir).is_dir()
    sock_r, sock_w = os.pipe()
    beat_r, beat_w = os.pipe()
    out = tmp_path / "out.json"
    argv = ["--fd", str(sock_w), "--slot", "0", "--beat-fd", str(beat_w), "--port", "9"]
    env = {**os.environ, "LEAD_OUT": str(out), "MODELRUNNER_WORKERS": "2"}
    env.pop("LEAD_OLD")
    env["PROMETHEUS_MULTIPROC_DIR"] = taken.metrics_dir
    try:
        assert taken.hand_over(argv, env, [sock_w, beat_w])
    finally:
        os.close(sock_w)
        os.close(beat_w)
    assert taken.proc.wait(30) == 0
    taken.close()  # handed over: not killed (it exited by itself here)
    assert os.read(sock_r, 100) == b"on the socket's descriptor" and os.read(beat_r, 10) == b"."
    got = json.loads(out.read_text())
    assert got["argv"][2:4] == ["--slot", "0"] and got["argv"][6:] == ["--port", "9"]
    assert got["old"] is None and got["workers"] == "2"  # its environment is the supervisor's
    assert got["metrics"] == taken.metrics_dir
    for fd in (sock_r, beat_r):
        os.close(fd)


def test_a_lead_nobody_adopts_is_killed_and_its_folder_removed(entry: str) -> None:
    lead.begin(entry)
    pending = lead._pending
    assert pending is not None and pending.proc.poll() is None
    lead.discard()
    assert pending.proc.returncode is not None and not Path(pending.metrics_dir).exists()
    lead.begin(entry)
    assert lead.take("modelrunner.server.worker") is None  # another module: discarded, not handed out
    assert lead._pending is None


def test_a_lead_exits_when_its_control_socket_closes(entry: str) -> None:
    lead.begin(entry)
    taken = lead.take()
    assert taken is not None
    taken.control.close()  # the supervisor went away before it needed the worker
    assert taken.proc.wait(30) == 3  # receive() said None
    assert not taken.hand_over(["--fd", "1"], {}, [1])  # it is gone: the caller spawns a worker instead
    taken.close()
    os.rmdir(taken.metrics_dir)
