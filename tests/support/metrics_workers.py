"""Child-process bodies for the multiprocess metrics test (importable by name for spawn)."""

from __future__ import annotations

from modelrunner.monitoring import metrics


def record_requests(requests: int, loaded: bool) -> None:
    """What a worker process does: count requests, hold one in flight, mark a version loaded."""
    for _ in range(requests):
        metrics.observe_request("digits", 2, "rest", 0.01)
    metrics.in_flight("digits").inc()
    if loaded:
        metrics.set_loaded("digits", 2, 1)
