"""BackgroundTask and PeriodicTask (modelrunner/background.py) on a real event loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from modelrunner.background import BackgroundTask, PeriodicTask, wait_event


def test_a_periodic_task_steps_every_interval_until_stopped() -> None:
    async def main() -> tuple[int, int, bool]:
        steps: list[float] = []

        async def step() -> None:
            steps.append(asyncio.get_running_loop().time())

        task = PeriodicTask(step, 0.01, name="ticker")
        task.start()
        await asyncio.sleep(0.2)
        await task.stop()
        after_stop = len(steps)
        await asyncio.sleep(0.05)
        return after_stop, len(steps), task.running

    after_stop, later, running = asyncio.run(main())
    assert after_stop >= 3
    assert later == after_stop  # no step after stop()
    assert not running


def test_wake_runs_the_next_step_at_once() -> None:
    async def main() -> int:
        ran = asyncio.Event()
        calls = 0

        async def step() -> None:
            nonlocal calls
            calls += 1
            ran.set()

        task = PeriodicTask(step, 3600.0, name="woken")
        task.start()
        await asyncio.sleep(0)
        assert not ran.is_set()  # the first step waits for the interval
        task.wake()
        assert await wait_event(ran, 5.0)
        await task.stop()
        return calls

    assert asyncio.run(main()) == 1


def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.background")

    async def main() -> int:
        calls = 0

        async def step() -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError(f"boom {calls}")

        task = PeriodicTask(step, 0.01, name="flaky", failure="flaky step failed", logger=logger)
        task.start()
        while calls < 3:
            await asyncio.sleep(0.01)
        await task.stop()
        return calls

    with caplog.at_level(logging.ERROR, logger="test.background"):
        calls = asyncio.run(main())
    failures = [r for r in caplog.records if r.getMessage() == "flaky step failed"]
    assert len(failures) >= 3 and calls >= 3
    assert failures[0].exc_info is not None and "boom 1" in str(failures[0].exc_info[1])


def test_the_interval_is_read_before_each_wait() -> None:
    async def main() -> int:
        interval = [3600.0]
        calls = 0

        async def step() -> None:
            nonlocal calls
            calls += 1

        task = PeriodicTask(step, lambda: interval[0], name="tunable")
        interval[0] = 0.01  # changed before the loop reads it
        task.start()
        await asyncio.sleep(0.2)
        await task.stop()
        return calls

    assert asyncio.run(main()) >= 3


def test_stop_cancels_a_running_coroutine_and_start_again_restarts_it() -> None:
    async def main() -> list[str]:
        events: list[str] = []

        async def run() -> None:
            events.append("started")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        task = BackgroundTask(run, name="sleeper")
        await task.stop()  # never started: nothing to do
        task.start()
        task.start()  # already running: still one task
        await asyncio.sleep(0)
        assert task.running
        names = [t.get_name() for t in asyncio.all_tasks() if t.get_name() == "sleeper"]
        assert names == ["sleeper"]
        await task.stop()
        task.start()
        await asyncio.sleep(0)
        await task.stop()
        return events

    assert asyncio.run(main()) == ["started", "cancelled", "started", "cancelled"]
