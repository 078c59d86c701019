"""``serve``'s first worker, spawned before the supervisor has parsed its command line.

Most of a worker's start is imports (~0.5 s of CPU); the supervisor's own (typer, which builds a pydantic
adapter per option) take ~0.15 s before it knows what to spawn. So ``modelrunner serve`` spawns one worker at
once (:func:`begin`, from ``cli.entry``) with a control socket as its only argument: the worker imports what
it serves with, then waits on that socket (:func:`receive`). Once the command line is parsed and the sockets
bound, the supervisor adopts it as slot 0's first worker and sends it its arguments, its environment and the
descriptors it would have inherited (:meth:`Lead.hand_over`, ``SCM_RIGHTS``). A lead nobody adopts (``serve
--help``, a bad option, a port in use) is killed and its metrics folder removed (:func:`discard`); a lead
whose supervisor is gone reads end-of-file and exits.

The lead's environment is fixed at its spawn, and prometheus-client reads its multiprocess folder when it is
imported: so that folder is made here, before the spawn, and ``serve`` uses it (:attr:`Lead.metrics_dir`).
Everything else a worker reads from its environment (the settings, ``MODELRUNNER_WORKERS``) is read after the
hand-over, which replaces the lead's environment by the supervisor's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

FLAG = "--lead-control"
"""A lead worker's only arguments: ``FLAG <descriptor of its control socket>``."""
FD_OPTIONS = ("--fd", "--beat-fd")
"""The worker options whose values are descriptors: the hand-over sends them, the lead puts its own in."""
_HEADER = 4  # bytes of the payload's length, big-endian, before the JSON payload


@dataclass
class Lead:
    """A spawned lead worker, waiting on ``control`` for its arguments."""

    proc: subprocess.Popen[bytes]
    control: socket.socket
    metrics_dir: str
    entry: str  # the worker's module (``python -m``)
    handed_over: bool = False

    def hand_over(self, argv: Sequence[str], env: Mapping[str, str], fds: Sequence[int]) -> bool:
        """Send the worker its arguments (without ``python -m <entry>``), environment and descriptors: each
        value of a :data:`FD_OPTIONS` option in ``argv`` must be one of ``fds`` (this process's numbers).
        False if the worker is gone (the caller spawns a worker as usual)."""
        if self.proc.poll() is not None:
            return False
        payload = json.dumps({"argv": list(argv), "env": dict(env), "fds": [str(fd) for fd in fds]}).encode()
        try:
            socket.send_fds(self.control, [len(payload).to_bytes(_HEADER, "big") + payload], list(fds))
        except OSError as exc:
            log.debug("the lead worker (pid %d) took no arguments: %s", self.proc.pid, exc)
            return False
        finally:
            self.control.close()
        self.handed_over = True
        return True

    def close(self) -> None:
        """Kill the worker unless it was handed over (it waits for arguments: no state to lose)."""
        self.control.close()
        if not self.handed_over and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()

    def discard(self) -> None:
        """:meth:`close`, and remove the metrics folder (nobody serves with it)."""
        self.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


_pending: Lead | None = None


def begin(entry: str) -> None:
    """Spawn the lead worker ``python -m <entry> --lead-control N`` (at most one per process); it waits for
    :func:`take`'s caller. Nothing happens if it cannot be spawned: ``serve`` spawns its workers as usual."""
    global _pending
    if _pending is not None:
        return
    metrics_dir = tempfile.mkdtemp(prefix="modelrunner-metrics-")
    ours, theirs = socket.socketpair()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    try:
        argv = [sys.executable, "-m", entry, FLAG, str(theirs.fileno())]
        proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], env=env, process_group=0)
    except OSError:
        log.debug("spawning a lead worker failed", exc_info=True)
        ours.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        return
    finally:
        theirs.close()
    _pending = Lead(proc, ours, metrics_dir, entry)


def take(entry: str | None = None) -> Lead | None:
    """The waiting lead worker, now the caller's (it must :meth:`Lead.close` it), or None; with ``entry``,
    only a lead running that module (another is discarded)."""
    global _pending
    lead, _pending = _pending, None
    if lead is not None and entry is not None and lead.entry != entry:
        lead.discard()
        return None
    return lead


def discard() -> None:
    """Kill a lead worker nobody took, and remove its metrics folder."""
    lead = take()
    if lead is not None:
        lead.discard()


def receive(fd: int) -> list[str] | None:
    """In the lead worker: wait for the hand-over on the control socket ``fd``. Returns the worker's
    arguments with the received descriptors in place, after applying its environment; None if the socket
    closed first (the supervisor did not need this worker, or is gone)."""
    with socket.socket(fileno=fd) as sock:
        data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, len(FD_OPTIONS))
        while data and len(data) < _size(data):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    if not data or len(data) != _size(data):
        for received in fds:
            os.close(received)
        return None
    message = json.loads(data[_HEADER:])
    ours = dict(zip(message["fds"], (str(received) for received in fds), strict=True))
    argv: list[str] = list(message["argv"])
    for i, arg in enumerate(argv[:-1]):
        if arg in FD_OPTIONS:
            argv[i + 1] = ours[argv[i + 1]]
    os.environ.clear()
    os.environ.update(message["env"])
    return argv


def _size(data: bytes) -> int:
    """The whole message's length as far as ``data`` tells: the header's, until the header is complete."""
    return _HEADER + (int.from_bytes(data[:_HEADER], "big") if len(data) >= _HEADER else 0)
