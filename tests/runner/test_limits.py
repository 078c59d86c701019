"""Per-endpoint limits on a real server (``modelrunner serve``, one worker, two endpoints): a saturated slow
endpoint neither slows a fast one nor queues without bound, and answers 504 naming itself past its timeout."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelrunner.errors import DeadlineExceeded, InvalidArgument, Unavailable
from modelrunner.registry.registry import Registry
from modelrunner.runner.endpoint import Endpoint
from modelrunner.runner.limits import Lane, LimitConfig
from modelrunner.settings import Settings
from support.runner_fakes import TagPredictor, batch, deployment
from support.runner_server import Server, save_sleepy, save_toy

SLOW = {"max_concurrency": 2, "max_queue": 2, "timeout_s": 3}
FAST_BODY = {"instances": [{"x": [0.0, 0.0, 0.0, 0.0]}] * 1025}  # > INLINE_MAX_ROWS: always a predict thread


def slow_body(seconds: float) -> dict[str, object]:
    return {"instances": [{"x": [seconds, 0.0, 0.0, 0.0]}]}


def in_flight(url: str, endpoint: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(rf'^modelrunner_requests_in_flight{{endpoint="{endpoint}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp_path / "fast", 7), name="fast")
        reg.push(save_sleepy(tmp_path / "slow"), name="slow")
        reg.set_endpoint("fast", "fast@1")
        reg.set_endpoint("slow", "slow@1", config=SLOW)
    return home


def test_a_saturated_slow_endpoint_neither_starves_a_fast_one_nor_queues_forever(home: Path) -> None:
    with Server(home, workers=1) as server, ThreadPoolExecutor(8) as pool:
        slow_url = f"{server.url}/v1/endpoints/slow/predict"
        # 2 calls of 2 s run (its max_concurrency), 2 wait (its max_queue) and would end at 4 s: past 3 s
        slow = [pool.submit(httpx.post, slow_url, json=slow_body(2.0), timeout=30) for _ in range(4)]
        wait_until(lambda: in_flight(server.url, "slow") == 4)
        full = pool.submit(httpx.post, slow_url, json=slow_body(0.1), timeout=30)
        latencies = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not latencies or not all(f.done() for f in slow):  # the fast one while the slow one is full
                t1 = time.monotonic()
                r = client.post("/v1/endpoints/fast/predict", json=FAST_BODY)
                latencies.append(time.monotonic() - t1)
                assert r.status_code == 200 and r.json()["predictions"][0]["y"] == 7, r.text
        print(
            f"\nfast endpoint while slow saturated: {len(latencies)} requests, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
        assert len(latencies) > 20 and max(latencies) < 1.0, "the slow endpoint held the fast one's threads"
        refused = full.result()
        assert refused.status_code == 503, refused.text
        assert "'slow' is overloaded" in refused.json()["error"]["message"]
        assert refused.headers["retry-after"] == "1" and refused.elapsed.total_seconds() < 1.0
        answers = sorted((f.result().status_code, f.result().text) for f in slow)
        assert [status for status, _ in answers] == [200, 200, 504, 504], answers
        for _, text in answers[2:]:
            assert "endpoint 'slow' did not answer within 3s" in text
        changed_live(server)


def changed_live(server: Server) -> None:
    """The limits are checked first, then changed live through the admin API (no reload)."""
    with pytest.raises(InvalidArgument, match="max_queue"):
        server.admin.configure("slow", max_queue=-1)
    state = server.admin.configure("slow", timeout_s=0.5)
    assert state["config"] == {**SLOW, "timeout_s": 0.5}
    url = f"{server.url}/v1/endpoints/slow/predict"
    deadline = time.monotonic() + 10
    while (r := httpx.post(url, json=slow_body(1.0), timeout=30)).status_code != 504:
        assert r.status_code == 200 and time.monotonic() < deadline, r.text
    assert r.json()["error"] == {
        "code": "deadline_exceeded",
        "field": None,
        "endpoint": "slow",
        "timeout_s": 0.5,
        "message": "endpoint 'slow' did not answer within 0.5s (its timeout_s)",
    }


def test_limits_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="max_concurrency"):
        LimitConfig.from_config({"max_concurrency": 0})
    with pytest.raises(InvalidArgument, match="timeout_s"):
        LimitConfig.from_config({"timeout_s": "soon"})
    with pytest.raises(InvalidArgument, match="max_queue"):
        LimitConfig.from_config({"max_queue": 1.5})
    assert LimitConfig.from_config({"max_batch_size": 8}, concurrency=3) == LimitConfig(3, 256, 60.0)


def test_a_timed_out_call_keeps_its_thread_and_pins_its_version() -> None:
    class Pin:
        held = 0

        def acquire(self) -> None:
            self.held += 1

        def release(self) -> None:
            self.held -= 1

    async def main() -> None:
        lane = Lane("slow", LimitConfig(max_concurrency=1, max_queue=1, timeout_s=0.2))
        pin, started = Pin(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def sleep(seconds: float) -> float:
            loop.call_soon_threadsafe(started.set)
            time.sleep(seconds)
            return seconds

        running = asyncio.ensure_future(lane.submit(pin, sleep, 0.6))
        await started.wait()
        queued = asyncio.ensure_future(lane.submit(pin, sleep, 0.0))
        await asyncio.sleep(0)
        assert lane.pending == 2
        with pytest.raises(Unavailable, match="overloaded"):
            await lane.submit(pin, sleep, 0.0)
        for task in (running, queued):
            with pytest.raises(DeadlineExceeded, match="within 0.2s"):
                await task
        assert pin.held == 1, "the running call still holds its deployment"
        while pin.held:
            await asyncio.sleep(0.01)
        assert await lane.submit(pin, lambda: np.float64(3.0)) == 3.0
        lane.close()

    asyncio.run(main())


def test_batched_requests_are_bounded_and_time_out_and_the_batch_keeps_its_version() -> None:
    async def main() -> None:
        gate = threading.Event()
        model = TagPredictor(1, gate=gate)
        ep = Endpoint("ep")
        ep.swap(deployment(model))
        ep.configure(
            {"max_batch_size": 4, "max_latency_ms": 1, "max_concurrency": 1, "max_queue": 2, "timeout_s": 0.3}
        )
        first = asyncio.ensure_future(ep.predict(batch(), validated=True))
        await asyncio.to_thread(model.entered.wait, 5)  # one batch runs (its one thread) and blocks
        rest = [asyncio.ensure_future(ep.predict(batch(), validated=True)) for _ in range(5)]
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="'ep' is overloaded"):  # 1 thread x 4 rows + 2 queued
            await ep.predict(batch(), validated=True)
        for task in (first, *rest):
            with pytest.raises(DeadlineExceeded, match="'ep' did not answer within 0.3s"):
                await task
        dep = ep.current
        assert dep is not None and dep.inflight >= 1, "the batches still pin their version"
        gate.set()
        while dep.inflight:
            await asyncio.sleep(0.01)
        assert (await ep.predict(batch(2), validated=True)).columns["y"].tolist() == [1, 1]
        await ep.close()

    asyncio.run(main())
