"""runner/cost.py: a call on the loop that waited sends the deployment to threads; one only preempted not."""

from __future__ import annotations

import time

import pytest

from modelrunner.runner import cost
from modelrunner.runner.cost import PROBE_CALLS, RECHECK_CALLS, CallCost


def probed() -> CallCost:
    meter = CallCost()
    for _ in range(PROBE_CALLS):
        meter.timed(lambda: None)
    assert meter.inline
    return meter


def test_a_call_that_blocks_on_the_loop_sends_the_next_calls_to_threads() -> None:
    meter = probed()
    meter.on_loop(time.sleep, 0.02)  # sleeping is a voluntary context switch
    assert not meter.inline
    assert meter.threaded_until == meter.calls + RECHECK_CALLS


def test_a_call_only_preempted_stays_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine takes the CPU away (an involuntary switch): no thread would have spared that wait."""
    meter = probed()
    monkeypatch.setattr(cost, "voluntary_switches", lambda: 7)  # no blocking wait seen by the OS
    meter.on_loop(time.sleep, 0.02)
    assert meter.inline


def test_voluntary_switches_counts_blocking_waits() -> None:
    before = cost.voluntary_switches()
    if before < 0:
        pytest.skip("no per-thread rusage on this OS")
    time.sleep(0.01)
    assert cost.voluntary_switches() > before
    assert cost.waited(before)
    assert cost.waited(-1), "unknown: judged by the clocks alone, as before"
