"""wait_for_rollout against real worker status rows in a SQLite registry."""

from __future__ import annotations

import asyncio
from typing import Any

from modelrunner.registry.types import WorkerStatus
from modelrunner.runner.waiting import wait_for_rollout


def row(
    runner: str,
    endpoint: str,
    generation: int,
    state: str = "serving",
    version: int = 2,
    error: str | None = None,
) -> WorkerStatus:
    return WorkerStatus(
        runner_id=runner,
        endpoint=endpoint,
        state=state,
        model="m",  # type: ignore[arg-type]
        version=version,
        generation=generation,
        error=error,
        pid=1,
        host="h",
    )


def wait(reg: Any, state: Any, timeout: float = 0.3) -> Any:
    return asyncio.run(wait_for_rollout(reg, state, timeout_s=timeout, poll_s=0.01))


def test_switched_once_every_live_worker_took_the_generation(reg, push) -> None:
    push("m", 1)
    push("m", 2)
    state = reg.set_endpoint("ep", "m@2")
    reg.report_worker(row("w0", "ep", state.generation))
    reg.report_worker(row("w1", "other", state.generation))  # live, but has not reported "ep" yet
    assert wait(reg, state).outcome == "timeout"
    reg.report_worker(row("w1", "ep", state.generation + 1))
    result = wait(reg, state)
    assert result.outcome == "switched" and result.ok and result.message == "2 worker(s) serve m@2"
    assert sorted(w["runner_id"] for w in result.workers) == ["w0", "w1"]


def test_one_refusal_is_the_answer(reg, push) -> None:
    push("m", 1)
    state = reg.set_endpoint("ep", "m@1")
    reg.report_worker(row("w0", "ep", state.generation - 1, version=1))  # still catching up
    reg.report_worker(row("w1", "ep", state.generation, state="failed", version=1, error="warm-up failed"))
    result = wait(reg, state)
    assert result.outcome == "refused" and result.message == "worker w1 refused: warm-up failed"


def test_timeout_names_the_workers_behind(reg, push) -> None:
    push("m", 1)
    state = reg.set_endpoint("ep", "m@1")
    reg.report_worker(row("w0", "ep", state.generation - 1, version=1))
    result = wait(reg, state, timeout=0.2)
    assert result.outcome == "timeout" and "(w0)" in result.message and result.elapsed_s >= 0.2


def test_no_live_worker_times_out(reg, push) -> None:
    push("m", 1)
    state = reg.set_endpoint("ep", "m@1")
    result = wait(reg, state, timeout=0.1)
    assert result.outcome == "timeout" and "no live worker reported" in result.message
