"""Batching by default: on for batch-safe flavors, opt-out and explicit settings, a lone client unqueued."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from modelrunner.runner.batching import BatchConfig
from modelrunner.runner.endpoint import Endpoint
from support.batching_fakes import RecordingPredictor, ThreadRecorder, rows, run
from support.runner_fakes import deployment


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, BatchConfig(64, 5.0, "auto")),
        (None, BatchConfig(64, 5.0, "auto")),
        ({"batch": None, "max_batch_size": None, "max_latency_ms": None}, BatchConfig(64, 5.0, "auto")),
        ({"batch": False}, BatchConfig(1, 5.0, "off")),
        ({"batch": False, "max_batch_size": 32}, BatchConfig(1, 5.0, "off")),
        ({"max_batch_size": 0}, BatchConfig(1, 5.0, "off")),
        ({"max_batch_size": 1, "max_latency_ms": 2}, BatchConfig(1, 2.0, "off")),
        ({"max_batch_size": 16}, BatchConfig(16, 5.0, "on")),
        ({"batch": True}, BatchConfig(64, 5.0, "on")),
        ({"batch": True, "max_batch_size": 8, "max_latency_ms": 1}, BatchConfig(8, 1.0, "on")),
    ],
)
def test_batching_is_auto_by_default_and_explicit_settings_win(
    config: dict[str, Any] | None, expected: BatchConfig
) -> None:
    assert BatchConfig.from_config(config) == expected


def safe_endpoint(
    pred: RecordingPredictor, batch_safe: bool, config: dict[str, Any] | None = None
) -> Endpoint:
    ep = Endpoint("ep")
    ep.configure(config)
    dep = deployment(pred)  # type: ignore[arg-type]
    dep.batch_safe = batch_safe
    ep.swap(dep)
    return ep


@pytest.mark.parametrize(
    ("batch_safe", "config", "merged"),
    [
        (True, None, True),
        (False, None, False),
        (True, {"batch": False}, False),
        (False, {"batch": True}, True),
        (False, {"max_batch_size": 8}, True),
    ],
)
def test_default_batches_batch_safe_deployments_only(
    batch_safe: bool, config: dict[str, Any] | None, merged: bool
) -> None:
    pred = RecordingPredictor()

    async def main() -> list[Any]:
        ep = safe_endpoint(pred, batch_safe, config)
        return await asyncio.gather(*(ep.predict(rows(i)) for i in range(6)))

    answers = run(main())
    assert [a.columns["y"].tolist() for a in answers] == [[1000 + i] for i in range(6)]
    if merged:
        assert sum(pred.calls) == 6 and len(pred.calls) < 6, f"concurrent requests merged: {pred.calls}"
    else:
        assert pred.calls == [1] * 6


def test_a_lone_client_skips_the_queue_and_concurrent_ones_are_merged() -> None:
    """Sequential requests (one client) each run alone, as with batching off; a concurrent burst is merged,
    with every request getting its own rows back, and a bad one failing alone."""
    from modelrunner.runner.cost import PROBE_CALLS

    fast = ThreadRecorder()

    async def main() -> tuple[str, list[Any]]:
        ep = safe_endpoint(fast, batch_safe=True)
        for i in range(PROBE_CALLS + 4):
            assert (await ep.predict(rows(i))).columns["y"].tolist() == [1000 + i]
            await asyncio.sleep(0)  # the next request of a lone client comes in a later loop iteration
        burst = [rows(10 + i) if i != 3 else rows(-1) for i in range(8)]
        answers = await asyncio.gather(*(ep.predict(r) for r in burst), return_exceptions=True)
        return threading.current_thread().name, answers

    loop_thread, answers = run(main())
    lone = PROBE_CALLS + 4
    assert fast.calls[:lone] == [1] * lone, "a lone client's requests are never held for a batch"
    assert all(t != loop_thread for t in fast.threads[:PROBE_CALLS]), "probed in threads first"
    assert all(t == loop_thread for t in fast.threads[PROBE_CALLS:lone]), "then run on the loop, unqueued"
    assert max(fast.calls[lone:]) > 1, f"the burst was merged: {fast.calls[lone:]}"
    assert isinstance(answers[3], ValueError)
    assert [a.columns["y"].tolist() for i, a in enumerate(answers) if i != 3] == [
        [1010 + i] for i in range(8) if i != 3
    ]


def test_requests_arriving_while_a_lone_call_runs_in_a_thread_wait_for_it_and_go_together() -> None:
    gate = threading.Event()
    pred = RecordingPredictor(gate=gate)

    async def main() -> list[Any]:
        ep = safe_endpoint(pred, batch_safe=True)
        first = asyncio.create_task(ep.predict(rows(0)))
        await asyncio.to_thread(pred.entered.wait, 5)  # the lone request runs in a thread (probing)
        later = [asyncio.create_task(ep.predict(rows(i))) for i in (1, 2, 3)]
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(first, *later)

    answers = run(main())
    assert [a.columns["y"].tolist() for a in answers] == [[1000], [1001], [1002], [1003]]
    assert pred.calls == [1, 3], "the lone call ran at once; the 3 arriving meanwhile merged after it"
