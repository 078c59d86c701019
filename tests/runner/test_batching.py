"""Adaptive batching: merging, split-back, a bad row fails alone, no version mixing, latency, metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from modelrunner.errors import InvalidArgument, ValidationError
from modelrunner.monitoring import metrics
from modelrunner.runner.batching import BatchConfig, merge, split
from support.batching_fakes import RecordingPredictor, ThreadRecorder, endpoint, rows, run
from support.runner_fakes import deployment


def test_concurrent_requests_share_one_predict_and_get_their_own_rows_back() -> None:
    pred = RecordingPredictor(tag=1)

    async def main() -> list[Any]:
        ep = endpoint(pred)
        return await asyncio.gather(*(ep.predict(rows(i, i + 0.5) if i % 2 else rows(i)) for i in range(10)))

    answers = run(main())
    assert pred.calls == [15], "10 concurrent requests (15 rows) should be one predict call"
    for i, answer in enumerate(answers):
        expected = [1000 + i, 1000 + i] if i % 2 else [1000 + i]
        assert answer.columns["y"].tolist() == expected
        assert answer.version == 1


def test_batching_off_calls_predict_per_request() -> None:
    pred = RecordingPredictor()

    async def main() -> None:
        ep = endpoint(pred, size=1)
        assert not ep.batching.enabled
        await asyncio.gather(*(ep.predict(rows(i)) for i in range(4)))

    run(main())
    assert pred.calls == [1, 1, 1, 1]


def test_bad_row_fails_only_its_own_request() -> None:
    pred = RecordingPredictor()

    async def main() -> list[Any]:
        ep = endpoint(pred)
        requests = [rows(1), rows(-1), rows(2), {"x": np.zeros((1, 3))}, rows(3)]
        return await asyncio.gather(*(ep.predict(r) for r in requests), return_exceptions=True)

    ok1, bad, ok2, invalid, ok3 = run(main())
    assert isinstance(bad, ValueError) and "negative" in str(bad)
    assert isinstance(invalid, ValidationError), "a request that does not fit the contract fails alone"
    assert [a.columns["y"].tolist() for a in (ok1, ok2, ok3)] == [[1001], [1002], [1003]]
    assert pred.calls[0] == 4, "the merged call held the 4 valid requests"
    assert sorted(pred.calls[1:]) == [1, 1, 1, 1], "then each was retried alone"


def test_a_swap_never_mixes_versions_in_one_batch() -> None:
    gate = threading.Event()
    old, new = RecordingPredictor(tag=1, gate=gate), RecordingPredictor(tag=2)

    async def main() -> tuple[list[Any], list[Any]]:
        ep = endpoint(old, latency_ms=5_000)
        first = asyncio.create_task(ep.predict(rows(0)))
        await asyncio.to_thread(old.entered.wait, 5)
        queued_old = [asyncio.create_task(ep.predict(rows(i))) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        ep.swap(deployment(new))  # type: ignore[arg-type]
        on_new = await asyncio.gather(*(ep.predict(rows(i)) for i in (4, 5)))
        gate.set()
        return await asyncio.gather(first, *queued_old), on_new

    on_old, on_new = run(main())
    assert [a.version for a in on_old] == [1, 1, 1, 1] and [a.version for a in on_new] == [2, 2]
    assert [int(a.columns["y"][0]) for a in on_old] == [1000, 1001, 1002, 1003]
    assert [int(a.columns["y"][0]) for a in on_new] == [2004, 2005]
    assert old.calls == [1, 3], "requests pinned to the old version were flushed on it, together"
    assert new.calls == [2]


def test_max_latency_bounds_the_wait_while_a_batch_runs() -> None:
    gate = threading.Event()
    pred = RecordingPredictor(gate=gate)

    async def main() -> float:
        ep = endpoint(pred, latency_ms=40)
        first = asyncio.create_task(ep.predict(rows(0)))
        await asyncio.to_thread(pred.entered.wait, 5)
        t0 = time.monotonic()
        second = await ep.predict(rows(1))  # the first batch is still running (gate closed)
        waited = time.monotonic() - t0
        assert second.columns["y"].tolist() == [1001]
        gate.set()
        await first
        return pred.started[1] - t0 if len(pred.started) > 1 else waited

    started_after = run(main())
    assert 0.03 <= started_after < 0.5, f"flushed after {started_after * 1000:.0f} ms, bound is 40 ms"


def test_full_batch_is_flushed_without_waiting() -> None:
    gate = threading.Event()
    pred = RecordingPredictor(gate=gate)

    async def main() -> float:
        ep = endpoint(pred, size=4, latency_ms=5_000)
        first = asyncio.create_task(ep.predict(rows(0)))
        await asyncio.to_thread(pred.entered.wait, 5)
        t0 = time.monotonic()
        await asyncio.gather(*(ep.predict(rows(i)) for i in range(1, 5)))
        gate.set()
        await first
        return time.monotonic() - t0

    assert run(main()) < 2.0, "4 rows reach max_batch_size 4: no wait for the 5 s latency bound"
    assert pred.calls == [1, 4]


def test_a_lone_request_on_an_idle_endpoint_does_not_wait() -> None:
    pred = RecordingPredictor()

    async def main() -> float:
        ep = endpoint(pred, latency_ms=5_000)
        t0 = time.monotonic()
        await ep.predict(rows(1))
        return time.monotonic() - t0

    assert run(main()) < 1.0


def test_concurrent_requests_wait_one_turn_for_those_the_loop_reads_next() -> None:
    pred = RecordingPredictor()

    async def main() -> list[Any]:
        ep = endpoint(pred, latency_ms=5_000)
        tasks = [asyncio.create_task(ep.predict(rows(i))) for i in (0, 1)]  # two at once: clients are many
        for i in (2, 3):  # then one a turn of the loop, as a server reads what its clients sent
            await asyncio.sleep(0)
            tasks.append(asyncio.create_task(ep.predict(rows(i))))
        return await asyncio.gather(*tasks)

    answers = run(main())
    assert pred.calls == [3, 1], "the request of the next turn joined; the one after went on its own"
    assert [a.columns["y"].tolist() for a in answers] == [[1000], [1001], [1002], [1003]]


def test_a_lone_request_is_not_held_for_the_next_turn() -> None:
    pred = RecordingPredictor()

    async def main() -> None:
        ep = endpoint(pred, latency_ms=5_000)
        first = asyncio.create_task(ep.predict(rows(0)))
        await asyncio.sleep(0)
        second = asyncio.create_task(ep.predict(rows(1)))  # read a turn later: the first did not wait
        await asyncio.gather(first, second)

    run(main())
    assert pred.calls == [1, 1]


def test_requests_over_max_batch_size_are_split_across_calls() -> None:
    pred = RecordingPredictor()

    async def main() -> list[Any]:
        ep = endpoint(pred, size=3)
        requests = [rows(1, 2), rows(3, 4), rows(5, 6, 7, 8)]
        return await asyncio.gather(*(ep.predict(r) for r in requests))

    answers = run(main())
    expected = [[1001, 1002], [1003, 1004], [1005, 1006, 1007, 1008]]
    assert [a.columns["y"].tolist() for a in answers] == expected
    assert pred.calls == [2, 2, 4], "never more than max_batch_size rows merged; a big request runs alone"


def test_batch_sizes_are_exported_as_a_histogram(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch sizes go to the observer the endpoint is given: Prometheus here, as in a worker."""
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    metrics.reset()
    pred = RecordingPredictor()

    async def main() -> None:
        from modelrunner.monitoring.prometheus import PROMETHEUS

        ep = endpoint(pred, observer=PROMETHEUS)
        await asyncio.gather(*(ep.predict(rows(i)) for i in range(5)))

    try:
        run(main())
        text = metrics.render()[0].decode()
    finally:
        metrics.reset()
    assert 'modelrunner_batch_size_bucket{endpoint="ep",le="4.0"} 0.0' in text
    assert 'modelrunner_batch_size_bucket{endpoint="ep",le="8.0"} 1.0' in text
    assert 'modelrunner_batch_size_sum{endpoint="ep"} 5.0' in text


def test_config_is_checked_and_reconfiguring_keeps_the_model() -> None:
    assert BatchConfig().applies(batch_safe=True) and not BatchConfig().applies(batch_safe=False)
    assert BatchConfig(8, 5.0, "on").applies(batch_safe=False)
    assert not BatchConfig(1, 5.0, "off").applies(batch_safe=True)
    with pytest.raises(InvalidArgument, match="max_batch_size"):
        BatchConfig.from_config({"max_batch_size": "32"})
    with pytest.raises(InvalidArgument, match="max_latency_ms"):
        BatchConfig.from_config({"max_batch_size": 8, "max_latency_ms": -1})
    with pytest.raises(InvalidArgument, match="batch must be true, false or null"):
        BatchConfig.from_config({"batch": "yes"})
    with pytest.raises(InvalidArgument, match="batch: true needs max_batch_size over 1"):
        BatchConfig.from_config({"batch": True, "max_batch_size": 1})
    pred = RecordingPredictor()

    async def main() -> None:
        ep = endpoint(pred, size=1)
        dep = ep.current
        ep.configure({"max_batch_size": 16, "max_latency_ms": 2})
        assert ep.current is dep and ep.batching == BatchConfig(16, 2.0, "on")
        await asyncio.gather(*(ep.predict(rows(i)) for i in range(3)))
        ep.configure(None)
        assert ep.batching.mode == "auto"
        ep.configure({"batch": False})
        assert not ep.batching.enabled

    run(main())
    assert pred.calls == [3]


def test_merge_and_split() -> None:
    merged = merge([rows(1), rows(2, 3)])
    assert merged["x"][:, 0].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="different fields"):
        merge([rows(1), {"z": np.zeros((1, 2))}])
    parts = split({"y": np.arange(3)}, [1, 2], 3)
    assert [p["y"].tolist() for p in parts] == [[0], [1, 2]]
    with pytest.raises(ValueError, match="rows for a batch of 3"):
        split({"y": np.arange(2)}, [1, 2], 3)


def test_reconciler_applies_config_changes_without_reloading(reg, push, loader, tmp_home) -> None:
    from modelrunner.runner.runtime import Runtime
    from modelrunner.settings import Settings

    push("m", 1)
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        settings = Settings(home=tmp_home, poll_interval_s=0.02, heartbeat_s=0.1, drain_timeout_s=2.0)
        rt = Runtime(reg, settings, worker_id="test-w0", loader=loader)
        await rt.start()
        try:
            ep = rt.get("ep")
            assert ep.batching.mode == "auto" and not ep.current.batch_safe, "the test loader's model"
            reg.set_endpoint("ep", "m@1", config={"max_batch_size": 8, "max_latency_ms": 3})
            assert await rt.reconciler.poll()
            assert ep.batching == BatchConfig(8, 3.0, "on")
            out = await asyncio.gather(*(ep.predict({"x": np.zeros((1, 2))}) for _ in range(3)))
            assert [o.version for o in out] == [1, 1, 1]
            reg.set_endpoint("ep", "m@1", config={"max_batch_size": "lots"})
            assert await rt.reconciler.poll()
            assert ep.batching == BatchConfig(8, 3.0, "on"), "a bad config is ignored, the last good one kept"
        finally:
            await rt.stop()

    run(main())
    assert loader.loaded == ["m@1"], "config changes never reload the model"


@pytest.mark.parametrize("size", [1, 32])
def test_fast_models_run_on_the_loop_after_probing_and_slow_ones_in_threads(size: int) -> None:
    from modelrunner.runner.cost import PROBE_CALLS

    fast, waits, spins = ThreadRecorder(), ThreadRecorder(sleep_s=0.01), ThreadRecorder(spin_s=0.003)

    async def main() -> str:
        for pred in (fast, waits, spins):
            ep = endpoint(pred, size=size)
            for i in range(PROBE_CALLS + 3):
                assert (await ep.predict(rows(i))).columns["y"].tolist() == [1000 + i]
        return threading.current_thread().name

    loop_thread = run(main())
    assert all(t != loop_thread for t in fast.threads[:PROBE_CALLS]), "new deployments are probed in threads"
    assert all(t == loop_thread for t in fast.threads[PROBE_CALLS:]), "then a fast model runs inline"
    assert waits.threads.count(loop_thread) == 1, "a model that waits is tried on the loop once, then not"
    assert all(t != loop_thread for t in spins.threads), "a model using 3 ms of CPU never blocks the loop"


def test_each_request_size_is_probed_on_its_own_and_the_largest_run_in_a_thread() -> None:
    from modelrunner.runner.cost import INLINE_MAX_ROWS, PROBE_CALLS

    fast = ThreadRecorder()
    medium = {"x": np.zeros((100, 2))}  # the 17-128 row class: its own probes, then the loop
    big = {"x": np.zeros((INLINE_MAX_ROWS + 1, 2))}

    async def main() -> str:
        ep = endpoint(fast, size=1)  # batching off
        for i in range(PROBE_CALLS + 2):
            await ep.predict(rows(i))
        for _ in range(PROBE_CALLS + 2):
            await ep.predict(medium)
        await ep.predict(big)
        await ep.predict(rows(1.0))
        return threading.current_thread().name

    loop_thread = run(main())
    small_calls, medium_calls = fast.threads[: PROBE_CALLS + 2], fast.threads[PROBE_CALLS + 2 : -2]
    assert small_calls[PROBE_CALLS] == loop_thread, "small requests to a fast model run on the loop"
    assert all(t != loop_thread for t in medium_calls[:PROBE_CALLS]), "a new size is probed in threads"
    assert medium_calls[PROBE_CALLS:] == [loop_thread] * 2, "then 100-row requests to a fast model run inline"
    assert fast.threads[-2] != loop_thread, "a request over INLINE_MAX_ROWS rows never holds the loop"
    assert fast.threads[-1] == loop_thread
