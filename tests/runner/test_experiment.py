"""Experiments in one worker's runtime (real SQLite registry, in-test loader): routing, stickiness, shadow,
a failing candidate, the prediction log, stop and promotion."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np

from modelrunner.registry.types import Experiment
from modelrunner.runner.experiment import chooses_candidate, sticky_point
from modelrunner.runner.runtime import Runtime
from support.runner_fakes import _started, run

ZEROS = {"x": np.zeros((1, 2))}
ONES = {"x": np.ones((1, 2))}


def _experiment(percent: float, sticky: str | None = None) -> Experiment:
    from datetime import UTC, datetime

    return Experiment(
        id="exp-0123456789ab",
        endpoint="ep",
        mode="canary",
        candidate="m@2",
        candidate_ref="m@2",
        percent=percent,
        sticky_key=sticky,
        rules=(),
        min_labels=0,
        min_requests=0,
        then_action=None,
        state="running",
        decision=None,
        started_at=datetime.now(UTC),
        started_by="t",
    )


def test_sticky_points_are_pure_and_uniform() -> None:
    assert sticky_point("exp-a", "user-1") == sticky_point("exp-a", "user-1")
    assert sticky_point("exp-a", "user-1") != sticky_point("exp-b", "user-1")
    points = [sticky_point("exp-a", f"user-{i}") for i in range(3000)]
    assert all(0 <= p < 100 for p in points)
    share = sum(p < 10 for p in points) / len(points)
    assert 0.08 <= share <= 0.12, share
    exp = _experiment(30, sticky="user_id")
    assert all(chooses_candidate(exp, f"k{i}") == (sticky_point(exp.id, f"k{i}") < 30) for i in range(200))
    random.seed(7)
    loose = _experiment(10)
    share = sum(chooses_candidate(loose, None) for _ in range(3000)) / 3000
    assert 0.08 <= share <= 0.12, share


async def _until(predicate: Any, rt: Runtime, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await rt.reconciler.poll()
        await asyncio.sleep(0.01)


def test_canary_split_log_stop(reg, push, loader, tmp_home) -> None:
    push("m", 1, alias="production")
    push("m", 2)
    reg.set_endpoint("ep", "m@production")

    async def main() -> None:
        rt = await _started(reg, tmp_home, loader)
        try:
            ep = rt.get("ep")
            plain = await ep.predict(ZEROS, request_id="r-plain")
            assert (plain.variant, plain.request_id, plain.version) == ("production", "r-plain", 1)
            exp = reg.start_experiment("ep", "m@2", mode="canary", percent=10)
            await _until(lambda: ep.experiment is not None, rt)
            preds = [await ep.predict(ZEROS, request_id=f"r{i}") for i in range(3000)]
            assert all(
                (p.variant == "candidate") == (p.version == 2 == int(p.columns["y"][0])) for p in preds
            )
            share = sum(p.variant == "candidate" for p in preds) / len(preds)
            assert 0.08 <= share <= 0.12, share
            await rt.predictions.flush()
            rows = reg.prediction_rows("ep", experiment_id=exp.id)
            assert len(rows) == 3000 and {r.request_id for r in rows} == {f"r{i}" for i in range(3000)}
            assert all((r.variant == "candidate") == (r.version == 2) for r in rows)
            assert reg.prediction_rows("ep", experiment_id=None)[0].request_id == "r0", "r-plain: not logged"
            candidate = ep.experiment.candidate
            reg.end_experiment(exp.id, "stopped")
            await _until(lambda: ep.experiment is None, rt)
            await ep.wait_closed()
            assert candidate.closed and ep.current.version == 1
            assert (await ep.predict(ZEROS)).variant == "production"
            await rt.predictions.flush()
            assert len(reg.prediction_rows("ep")) == 3000, "nothing logged once the experiment ended"
        finally:
            await rt.stop()

    run(main())


def test_sticky_keys_agree_across_workers(reg, push, loader, tmp_home) -> None:
    push("m", 1, alias="production")
    push("m", 2)
    reg.set_endpoint("ep", "m@production")
    exp = reg.start_experiment("ep", "m@2", mode="ab", percent=50, sticky_key="user_id")

    async def main() -> None:
        one = await _started(reg, tmp_home, loader)
        two = await _started(reg, tmp_home, loader, worker="test-w1")
        try:
            keys = [f"user-{i}" for i in range(200)]
            first = [(await one.get("ep").predict(ZEROS, sticky=k)).variant for k in keys]
            second = [(await two.get("ep").predict(ZEROS, sticky=k)).variant for k in keys]
            again = [(await one.get("ep").predict(ZEROS, sticky=k)).variant for k in keys]
            assert first == second == again
            assert first == ["candidate" if sticky_point(exp.id, k) < 50 else "production" for k in keys]
            assert 60 < first.count("candidate") < 140
        finally:
            await one.stop()
            await two.stop()

    run(main())


def test_shadow_answers_from_production_and_a_failing_candidate_fails_nothing(
    reg, push, loader, tmp_home
) -> None:
    push("m", 1, alias="production")
    push("m", 2, mode="fails_on_data")
    push("m", 3)
    reg.set_endpoint("ep", "m@production")

    async def main() -> None:
        rt = await _started(reg, tmp_home, loader)
        try:
            ep = rt.get("ep")
            shadow = reg.start_experiment("ep", "m@2", mode="shadow")
            await _until(lambda: ep.experiment is not None, rt)
            preds = [await ep.predict(ONES, request_id=f"s{i}") for i in range(50)]
            assert {(p.variant, p.version) for p in preds} == {("production", 1)}
            await _until(lambda: ep.experiment.mirrored + ep.experiment.dropped == 50, rt)
            await rt.predictions.flush()
            rows = reg.prediction_rows("ep", experiment_id=shadow.id)
            mirrored = [r for r in rows if r.variant == "shadow"]
            assert len([r for r in rows if r.variant == "production"]) == 50
            assert mirrored and all(r.error and "exploded on real data" in r.error for r in mirrored)
            reg.end_experiment(shadow.id, "aborted")
            canary = reg.start_experiment("ep", "m@2", mode="canary", percent=100)
            await _until(lambda: ep.experiment is not None and ep.experiment.id == canary.id, rt)
            preds = [await ep.predict(ONES, request_id=f"c{i}") for i in range(20)]
            assert {(p.variant, p.version) for p in preds} == {("production", 1)}, "production stepped in"
            await rt.predictions.flush()
            rows = reg.prediction_rows("ep", experiment_id=canary.id)
            assert sorted({(r.variant, r.error is None) for r in rows}) == [
                ("candidate", False),
                ("production", True),
            ]
        finally:
            await rt.stop()

    run(main())


def test_promotion_reuses_the_loaded_candidate_and_bad_candidates_are_refused(
    reg, push, loader, tmp_home
) -> None:
    push("m", 1, alias="production")
    push("m", 2)
    push("m", 3, mode="load_error")
    reg.set_endpoint("ep", "m@production")

    async def main() -> None:
        rt = await _started(reg, tmp_home, loader)
        try:
            ep = rt.get("ep")
            bad = reg.start_experiment("ep", "m@3", mode="canary", percent=50)
            await _until(lambda: ep.experiment_error is not None, rt)
            assert "pickle data was truncated" in ep.experiment_error and ep.experiment is None
            assert (await ep.predict(ZEROS)).version == 1
            assert [e.after["id"] for e in reg.audit(action="experiment.load_failed")] == [bad.id]
            reg.end_experiment(bad.id, "aborted")
            good = reg.start_experiment("ep", "m@2", mode="canary", percent=50)
            await _until(lambda: ep.experiment is not None, rt)
            candidate = ep.experiment.candidate
            reg.end_experiment(good.id, "promoted")
            reg.set_alias("m", "production", 2)
            await _until(lambda: ep.current is candidate, rt)
            assert ep.experiment is None and loader.loaded.count("m@2") == 1, "no second load"
            assert (await ep.predict(ZEROS)).version == 2
        finally:
            await rt.stop()

    run(main())


def test_log_config_inputs_sampling_and_retention(reg, push, loader, tmp_home) -> None:
    from sqlalchemy import select

    from modelrunner.errors import InvalidArgument
    from modelrunner.registry.tables import predictions
    from modelrunner.runner.config import check_config
    from modelrunner.runner.predlog import LogConfig

    assert LogConfig.from_config({}) == LogConfig(None, 0.0, False)
    assert LogConfig.from_config({"log_predictions": True, "log_inputs": True}).inputs == 1.0
    for bad in ({"log_predictions": "yes"}, {"log_inputs": 2}, {"log_bytes_inputs": 1}):
        try:
            check_config(bad)
        except InvalidArgument as exc:
            assert exc.details["field"] == next(iter(bad))
        else:
            raise AssertionError(f"{bad} accepted")
    push("m", 1, alias="production")
    reg.set_endpoint("ep", "m@production", config={"log_predictions": True, "log_inputs": 1.0})

    async def main() -> None:
        rt = await _started(reg, tmp_home, loader, retention_rows=5, prune_s=0.0, flush_s=0.05)
        try:
            ep = rt.get("ep")
            assert ep.logging and ep.experiment is None
            for i in range(8):
                await ep.predict(ONES, request_id=f"l{i}")
            await _until(lambda: rt.predictions.written == 8, rt)
            await _until(lambda: len(reg.prediction_rows("ep")) == 5, rt)  # retention: the newest 5 kept
            with reg._read() as conn:
                inputs = [r[0] for r in conn.execute(select(predictions.c.inputs))]
            assert inputs == [{"x": [[1.0, 1.0]]}] * 5
        finally:
            await rt.stop()

    run(main())


def test_stopping_a_shadow_waits_for_the_copy_in_flight() -> None:
    import dataclasses
    import threading

    from modelrunner.runner.endpoint import Endpoint
    from modelrunner.runner.experiment import LiveExperiment
    from support.runner_fakes import TagPredictor, batch, deployment

    async def main() -> None:
        ep = Endpoint("ep", drain_timeout_s=5)
        ep.current = deployment(TagPredictor(1))
        gate = threading.Event()
        slow = TagPredictor(2, gate)
        candidate = deployment(slow)
        ep.set_experiment(LiveExperiment(dataclasses.replace(_experiment(100), mode="shadow"), candidate))
        pred = await ep.predict(batch(), request_id="r1")
        assert (pred.variant, pred.version, pred.request_id) == ("production", 1, "r1")
        assert await asyncio.to_thread(slow.entered.wait, 5), "the copy never reached the candidate"
        await ep.end_experiment()  # while the copy runs
        await asyncio.sleep(0.05)
        assert not candidate.closed and slow.closed == 0, "closed under a running call"
        gate.set()
        await ep.wait_closed()
        assert candidate.closed and slow.closed == 1
        assert (await ep.predict(batch())).variant == "production"
        await ep.close()

    run(main())


def test_a_shadow_copy_dropped_on_a_full_queue_is_reported_to_the_observer() -> None:
    import dataclasses
    import threading

    from modelrunner.monitoring.observer import RecordingObserver
    from modelrunner.runner.endpoint import Endpoint
    from modelrunner.runner.experiment import LiveExperiment
    from support.runner_fakes import TagPredictor, batch, deployment

    async def main() -> None:
        ep = Endpoint("ep", drain_timeout_s=5)
        ep.current = deployment(TagPredictor(1))
        gate = threading.Event()
        slow = TagPredictor(2, gate)
        observer = RecordingObserver()
        shadow = dataclasses.replace(_experiment(100), mode="shadow")
        live = LiveExperiment(shadow, deployment(slow), queue_size=1, observer=observer)
        ep.set_experiment(live)
        await ep.predict(batch(), request_id="r1")  # taken by the mirror, which blocks on the gate
        assert await asyncio.to_thread(slow.entered.wait, 5), "the copy never reached the candidate"
        await ep.predict(batch(), request_id="r2")  # queued
        await ep.predict(batch(), request_id="r3")  # the queue is full: dropped
        assert observer.named("shadow_dropped") == [(shadow.endpoint,)] and live.dropped == 1
        gate.set()
        await ep.end_experiment()
        await ep.close()

    run(main())
