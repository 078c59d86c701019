"""The worker supervisor: one child process per slot, restarted when it dies or hangs, stopped gracefully.

Each worker is a fresh interpreter (``python -m <entry>``) that inherits its slot's listening socket and a
heartbeat pipe: its event loop writes a byte every ``beat_interval`` (``child.beat``); one silent for longer
than ``liveness_timeout_s`` gets SIGTERM, SIGKILL ``HUNG_GRACE_S`` later, and is replaced. A worker that
exits is restarted on the same socket (backing off when it keeps crashing at start). ``runner.workers.serve``
drives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrunner.runner.lead import Lead

log = logging.getLogger(__name__)

GRACE_S = 20.0
MAX_RESTART_DELAY_S = 30.0
HUNG_GRACE_S = 3.0
"""How long a worker that stopped beating gets to exit on SIGTERM before SIGKILL (its loop may never run)."""
STARTUP_ALLOWANCE_S = 60.0
"""Added to the liveness timeout until a new worker's first beat: its imports run before its event loop."""
LIVENESS_TIMEOUT_S = 30.0
"""The liveness timeout until the caller sets the settings' own (``Settings.liveness_timeout_s``)."""


def beat_interval(liveness_timeout_s: float) -> float:
    """How often a worker's event loop beats: five beats per liveness timeout, at least one a second."""
    return min(1.0, liveness_timeout_s / 5)


@dataclass
class Slot:
    """One worker position: its socket, its current process, how often it restarted."""

    index: int
    sock: socket.socket
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    crashes_in_a_row: int = 0
    next_start: float = 0.0
    argv: list[str] = field(default_factory=list)
    beats: int | None = None  # read end of the worker's heartbeat pipe
    last_beat: float = 0.0
    beaten: bool = False
    kill_at: float | None = None  # set once a silent worker got SIGTERM


class Supervisor:
    """Starts one child per slot, restarts dead ones (backing off when they crash at start), stops all."""

    def __init__(
        self,
        sockets: list[socket.socket],
        child_argv: list[str],
        env: dict[str, str],
        first_argv: list[str] | None = None,
        lead_argv: list[str] | None = None,
        liveness_timeout_s: float | None = None,
        *,
        entry: str,
        lead: Lead | None = None,
    ) -> None:
        self.slots = [Slot(i, s) for i, s in enumerate(sockets)]
        self.entry = entry  # the worker's module, run with ``python -m`` (runner.child.run inside)
        # None: not read yet (``serve`` spawns the first workers before it reads the settings); they derive
        # their beat interval from the same settings, and the caller sets this before the first check().
        self.liveness_timeout_s = liveness_timeout_s
        self.grace_s = GRACE_S  # how long stop() waits for the workers (the caller's drain timeout)
        self.child_argv = child_argv
        # For the first workers only (``--expect``): a restarted one serves what is desired when it starts,
        # which may have moved on since ``serve`` wrote its ``--endpoint`` targets.
        self.first_argv = first_argv or []
        self.lead_argv = lead_argv or []  # for slot 0's first worker only (``--write-expected``)
        self.lead = lead  # spawned before the command line was parsed: slot 0's first worker (runner/lead.py)
        self.env = env
        self.stopping = False
        self.signalled = False  # a stop signal arrived (set by the caller's handler)

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot, self.first_argv + (self.lead_argv if slot.index == 0 else []))

    def _spawn(self, slot: Slot, extra: list[str] | None = None) -> None:
        fd = slot.sock.fileno()
        self._close_beats(slot)
        beats, beat_w = os.pipe()
        os.set_blocking(beats, False)
        interval = [] if self.liveness_timeout_s is None else ["--beat-interval", f"{self._interval():g}"]
        argv = [
            sys.executable,
            "-m",
            self.entry,
            "--fd",
            str(fd),
            "--slot",
            str(slot.index),
            "--beat-fd",
            str(beat_w),
            *interval,
            *self.child_argv,
            *(extra or []),
        ]
        lead, self.lead = (self.lead, None) if slot.index == 0 else (None, self.lead)
        try:
            if lead is not None and lead.hand_over(argv[3:], self.env, [fd, beat_w]):
                slot.proc = lead.proc
            else:
                if lead is not None:
                    lead.close()
                slot.proc = subprocess.Popen(argv, pass_fds=[fd, beat_w], env=self.env, process_group=0)
        finally:
            os.close(beat_w)
        slot.beats, slot.beaten, slot.kill_at = beats, False, None
        slot.started_at = slot.last_beat = time.monotonic()
        log.debug("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def check(self) -> None:
        """Restart workers that exited (not while stopping)."""
        now = time.monotonic()
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                self._reap(slot, proc, now)
            elif proc is not None and not self.stopping:
                self._check_alive(slot, proc, now)
            if slot.proc is None and not self.stopping and now >= slot.next_start:
                slot.restarts += 1
                self._spawn(slot)

    def _check_alive(self, slot: Slot, proc: subprocess.Popen[bytes], now: float) -> None:
        """Note its beats; SIGTERM a worker silent past the liveness timeout, SIGKILL it a grace later."""
        if _drain(slot.beats):
            slot.last_beat, slot.beaten = now, True
        if slot.kill_at is not None:
            if now >= slot.kill_at:
                _signal(proc, signal.SIGKILL)
                slot.kill_at = float("inf")  # once; the exit is reaped by check()
            return
        liveness = self.liveness_timeout_s or LIVENESS_TIMEOUT_S
        limit = liveness + (0.0 if slot.beaten else STARTUP_ALLOWANCE_S)
        silent = now - slot.last_beat
        if silent > limit:
            log.warning(
                "worker %d (pid %d) is hung: no heartbeat from its event loop for %.1fs (liveness "
                "timeout %gs); killing and restarting it",
                slot.index,
                proc.pid,
                silent,
                liveness,
            )
            _signal(proc, signal.SIGTERM)
            slot.kill_at = now + HUNG_GRACE_S

    def _interval(self) -> float:
        return beat_interval(self.liveness_timeout_s or LIVENESS_TIMEOUT_S)

    def _close_beats(self, slot: Slot) -> None:
        if slot.beats is not None:
            os.close(slot.beats)
            slot.beats = None

    def _reap(self, slot: Slot, proc: subprocess.Popen[bytes], now: float) -> None:
        from modelrunner.monitoring import metrics

        metrics.mark_process_dead(proc.pid)
        slot.proc = None
        self._close_beats(slot)
        if self.stopping:
            return
        quick = now - slot.started_at < 10.0
        slot.crashes_in_a_row = slot.crashes_in_a_row + 1 if quick else 0
        crashes = slot.crashes_in_a_row
        delay = min(2.0 ** (crashes - 1), MAX_RESTART_DELAY_S) if crashes > 1 else 0.0
        slot.next_start = now + delay
        log.warning(
            "worker %d (pid %d) exited with %s; restarting%s",
            slot.index,
            proc.pid,
            proc.returncode,
            f" in {delay:.0f}s" if delay else "",
        )

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every worker, wait up to ``grace_s``, SIGKILL what is left."""
        self.stopping = True
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        # Our copies of the listening sockets go now: the workers close theirs as they stop accepting, and
        # while ours stayed open the kernel kept completing handshakes into a backlog nobody would accept,
        # so new connections hung until the last worker exited. Now they are refused at once.
        for slot in self.slots:
            slot.sock.close()
        deadline = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in %.0fs; killing it", proc.pid, grace_s)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        for slot in self.slots:
            self._close_beats(slot)

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None]


def _drain(fd: int | None) -> bool:
    """Read every pending heartbeat byte (non-blocking); True if there was at least one."""
    got = False
    while fd is not None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:  # the worker closed its end (it is exiting)
            break
        got = True
    return got


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
