"""Glue between the admin API and ``runner.waiting``: wake the local reconciler, wait, map the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelrunner.server.admin.schemas import WorkerResultOut

STATUS = {"switched": 200, "pending": 200, "refused": 409, "timeout": 504}
"""HTTP status of a rollout outcome: all switched, not waited, a worker refused, time ran out."""


@dataclass
class RolloutResult:
    outcome: str
    message: str = ""
    workers: list[WorkerResultOut] = field(default_factory=list)


def wake(runtime: Any) -> None:
    """Let this worker's reconciler look at the desired state now rather than at its next poll."""
    wake_fn = getattr(runtime, "wake", None)
    if wake_fn is not None:
        wake_fn()


async def wait(runtime: Any, state: Any, timeout_s: float) -> RolloutResult:
    """Wait until every live worker serves ``state`` (or one refuses, or ``timeout_s`` passes)."""
    from modelrunner.runner.waiting import wait_for_rollout

    result = await wait_for_rollout(runtime.registry, state, timeout_s=timeout_s)
    return _convert(result)


def _convert(result: Any) -> RolloutResult:
    workers = [_worker(w) for w in getattr(result, "workers", [])]
    return RolloutResult(
        outcome=str(result.outcome), message=str(getattr(result, "message", "") or ""), workers=workers
    )


def _worker(w: Any) -> WorkerResultOut:
    data = (
        w
        if isinstance(w, dict)
        else {k: getattr(w, k) for k in WorkerResultOut.model_fields if hasattr(w, k)}
    )
    return WorkerResultOut.model_validate(data)
