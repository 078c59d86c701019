"""Wait for a rollout: until every live worker serves an endpoint's new desired state, or one refuses it.

A worker is live when its heartbeat is recent (``alive_within_s``). It has taken generation ``G`` of an
endpoint when its status row for that endpoint carries a generation ``>= G``: state ``serving`` means it
switched (or already served the target), ``failed`` means it refused and keeps serving the old version.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

ALIVE_WITHIN_S = 3.0


@dataclass
class Rollout:
    """``outcome``: ``switched`` (every live worker serves it), ``refused`` (a worker failed), ``timeout``."""

    outcome: str
    message: str = ""
    workers: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "switched"


def worker_result(row: Any) -> dict[str, Any]:
    """One worker status row as the admin API reports it."""
    ref = f"{row.model}@{row.version}" if row.model and row.version is not None else None
    return {
        "runner_id": row.runner_id,
        "pid": row.pid,
        "host": row.host,
        "state": row.state,
        "model": row.model,
        "version": row.version,
        "ref": ref,
        "generation": row.generation,
        "load_ms": row.load_ms,
        "warmup_ms": getattr(row, "warmup_ms", None),
        "error": row.error,
    }


def assess(rows: list[Any], endpoint: str, generation: int) -> Rollout | None:
    """The outcome if every live worker has answered for ``generation``; None while some are pending."""
    runners = sorted({r.runner_id for r in rows})
    mine = {r.runner_id: r for r in rows if r.endpoint == endpoint}
    if not runners:
        return None
    results, pending, failed = [], [], []
    for runner in runners:
        row = mine.get(runner)
        if row is None or row.generation is None or row.generation < generation:
            pending.append(runner)
            continue
        results.append(worker_result(row))
        if row.state == "failed":
            failed.append(row)
    if failed:
        first = failed[0]
        return Rollout("refused", f"worker {first.runner_id} refused: {first.error}", results)
    if pending:
        return None
    refs = sorted({r["ref"] for r in results if r["ref"]})
    return Rollout("switched", f"{len(results)} worker(s) serve {', '.join(refs)}", results)


async def wait_for_rollout(
    registry: Any,
    state: Any,
    *,
    timeout_s: float = 30.0,
    alive_within_s: float = ALIVE_WITHIN_S,
    poll_s: float = 0.05,
) -> Rollout:
    """Poll the worker status rows until every live worker took ``state.generation`` (or one refused)."""
    started = time.monotonic()
    deadline = started + timeout_s
    rows: list[Any] = []
    while True:
        rows = await asyncio.to_thread(registry.workers, alive_within_s=alive_within_s)
        result = assess(rows, state.name, state.generation)
        if result is not None:
            result.elapsed_s = time.monotonic() - started
            return result
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll_s)
    pending = [r for r in rows if r.endpoint == state.name and (r.generation or 0) < state.generation]
    waiting = ", ".join(sorted({r.runner_id for r in pending})) or "no live worker reported"
    return Rollout(
        "timeout",
        f"not every worker took generation {state.generation} within {timeout_s:g}s ({waiting})",
        [worker_result(r) for r in rows if r.endpoint == state.name],
        time.monotonic() - started,
    )
