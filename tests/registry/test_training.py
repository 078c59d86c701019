"""The training lock in the registry: one running run per model, a second refused with one line naming the
holder, concurrent starts (one wins), a stale lease taken over, audit rows."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from modelrunner.errors import FailedPrecondition


def test_a_second_run_is_refused_until_the_first_ends(registry: Any) -> None:
    first = registry.start_training("digits", trigger="manual", parent_version=1, actor="alice")
    with pytest.raises(FailedPrecondition) as err:
        registry.start_training("digits", trigger="labels>=500")
    message = str(err.value)
    assert first.id in message and "alice" in message and "\n" not in message
    other = registry.start_training("iris", trigger="manual")  # another model is not locked
    ended = registry.finish_training(first.id, "succeeded", new_version=2)
    assert ended.state == "succeeded" and ended.new_version == 2 and ended.ended_at is not None
    second = registry.start_training("digits", trigger="labels>=500")
    assert second.running and registry.training_runs("digits")[0].id == second.id
    registry.finish_training(other.id, "failed", error="boom")
    actions = [e.action for e in registry.audit(subject="digits")]
    assert actions.count("training.start") == 2 and "training.succeeded" in actions


def test_concurrent_starts_one_wins(registry: Any) -> None:
    barrier = threading.Barrier(4)
    results: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            registry.start_training("digits", trigger="manual")
            results.append("won")
        except FailedPrecondition:
            results.append("refused")

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["refused"] * 3 + ["won"]


def test_a_stale_lease_is_taken_over_and_its_run_cannot_finish(registry: Any) -> None:
    stale = registry.start_training("digits", trigger="manual", lease_s=0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait past the lease (database clock)
        try:
            fresh = registry.start_training("digits", trigger="every=1h")
            break
        except FailedPrecondition:
            time.sleep(0.05)
    else:
        pytest.fail("the expired lease was never taken over")
    runs = {r.id: r for r in registry.training_runs("digits")}
    assert runs[stale.id].state == "failed" and "lease expired" in (runs[stale.id].error or "")
    assert runs[fresh.id].running
    assert not registry.renew_training(stale.id)
    with pytest.raises(FailedPrecondition, match="already ended"):
        registry.finish_training(stale.id, "succeeded")
    assert registry.audit(subject="digits", action="training.lease_expired")


def test_refused_is_audited_as_refused_gates(registry: Any) -> None:
    run = registry.start_training("digits", trigger="manual")
    registry.finish_training(
        run.id, "refused", new_version=3, error="gates failed: accuracy>=0.99", detail={"gates": []}
    )
    entry = registry.audit(subject="digits", action="training.refused_gates")[0]
    assert entry.after["new_version"] == 3 and "accuracy" in entry.after["error"]
