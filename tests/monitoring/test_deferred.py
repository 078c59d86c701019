"""Multiprocess values written in batches: what reaches the files, when, and that nothing is lost."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import multiprocess as mp

from modelrunner.monitoring import deferred, metrics

REQUESTS = "modelrunner_requests_total"


def in_files(path: Path) -> str:
    """What another process reading the files sees (no flush of this one's changes)."""
    registry = CollectorRegistry()
    registry.register(mp.MultiProcessCollector(None, path=str(path)))
    return generate_latest(registry).decode()


def requests(text: str, endpoint: str) -> float:
    for line in text.splitlines():
        if line.startswith(REQUESTS + "{") and f'endpoint="{endpoint}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    metrics.reset()
    path = metrics.setup_multiprocess(tmp_path / "prom")
    try:
        yield path
    finally:
        deferred.flush()
        os.environ.pop(metrics.ENV_VAR, None)  # setup_multiprocess exported it
        metrics.reset()


def test_on_an_event_loop_the_files_get_the_changes_together_within_flush_s(files: Path) -> None:
    async def serve() -> tuple[float, float, float]:
        for _ in range(50):
            metrics.observe_request("loop", 1, "rest", 0.001)
            metrics.in_flight("loop").inc()
            metrics.in_flight("loop").dec()
        before = requests(in_files(files), "loop")
        await asyncio.sleep(3 * deferred.FLUSH_S)
        after = requests(in_files(files), "loop")
        metrics.observe_request("loop", 1, "rest", 0.001)
        return before, after, requests(metrics.render()[0].decode(), "loop")

    before, after, rendered = asyncio.run(serve())
    assert before == 0  # nothing written while the loop was busy
    assert after == 50  # one flush wrote them all
    assert rendered == 51  # /metrics flushes its own process first
    text = in_files(files)
    assert 'modelrunner_request_duration_seconds_count{endpoint="loop",version="1"} 51.0' in text


def test_without_an_event_loop_every_change_is_written_at_once(files: Path) -> None:
    metrics.observe_request("plain", 1, "rest", 0.001)
    assert requests(in_files(files), "plain") == 1


def test_a_stopped_loop_does_not_hold_later_changes(files: Path) -> None:
    """The flush posted on a loop that ended before it ran is posted again on the next loop."""

    async def once() -> None:
        metrics.observe_request("short", 1, "rest", 0.001)

    asyncio.run(once())  # ends before its flush is due

    async def later() -> float:
        metrics.observe_request("short", 1, "rest", 0.001)
        await asyncio.sleep(3 * deferred.FLUSH_S)
        return requests(in_files(files), "short")

    assert asyncio.run(later()) == 2


def test_threads_lose_no_increment(files: Path) -> None:
    async def serve() -> None:
        def work() -> None:
            for _ in range(2000):
                metrics.observe_request("threads", 1, "rest", 0.001)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(2000):
            metrics.observe_request("threads", 1, "rest", 0.001)
            if _ % 100 == 0:
                await asyncio.sleep(0)
        for t in threads:
            t.join()
        await asyncio.sleep(3 * deferred.FLUSH_S)

    asyncio.run(serve())
    assert requests(in_files(files), "threads") == 10_000


def _samples(text: str, prefix: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def test_the_fast_recording_writes_what_prometheus_client_writes(files: Path) -> None:
    """A request recorded through ``deferred.add`` (counter, histogram sum and bucket, in-flight gauge in one
    lock) lands in the files exactly as prometheus_client's own ``inc``/``observe`` would write it."""
    latencies = [0.0004, 0.001, 0.0025, 0.004, 0.03, 0.2, 1.5, 40.0]

    async def serve() -> None:
        for seconds in latencies:
            metrics.in_flight_add("fast", 1)
            metrics.observe_request("fast", 1, "rest", seconds)
        metrics.in_flight_add("fast", -1)

    asyncio.run(serve())
    deferred.flush()
    fast = in_files(files)
    for seconds in latencies:  # the same through prometheus_client's API, under another endpoint
        metrics.in_flight("slow").inc()
        c = metrics._get()
        c.requests.labels("slow", "1", "rest").inc()
        c.latency.labels("slow", "1").observe(seconds)
    metrics.in_flight("slow").dec()
    slow = in_files(files)
    for prefix in ("modelrunner_request_duration_seconds", REQUESTS, "modelrunner_requests_in_flight"):
        ours = {k.replace('"fast"', '"?"'): v for k, v in _samples(fast, prefix).items() if '"fast"' in k}
        theirs = {k.replace('"slow"', '"?"'): v for k, v in _samples(slow, prefix).items() if '"slow"' in k}
        assert ours and ours == theirs, prefix
    assert _samples(fast, "modelrunner_request_duration_seconds_count")  # the histogram was written
