"""Reconciler + Runtime against a real SQLite registry: load, swap, refuse, force, keep-previous, remove."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from modelrunner.errors import NotFound
from modelrunner.runner.runtime import Runtime
from modelrunner.settings import Settings
from support.runner_fakes import run, runtime, served, write_bundle


def test_first_load_then_swap_and_status_rows(reg, push, loader, tmp_home) -> None:
    push("m", 1)
    push("m", 2)
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        assert not rt.ready
        await rt.start()
        try:
            assert rt.ready and await served(rt) == 1
            state = reg.set_endpoint("ep", "m@2")
            assert await rt.reconciler.poll()
            assert await served(rt) == 2
            await rt.get("ep").wait_closed()
            assert loader.predictors[0].closed and not loader.predictors[1].closed
            await rt.report()
            (row,) = reg.workers(endpoint="ep")
            assert (row.runner_id, row.state, row.version, row.generation) == (
                "test-w0",
                "serving",
                2,
                state.generation,
            )
            assert not await rt.reconciler.poll(), "nothing changed: no new pass"
        finally:
            await rt.stop()
        assert reg.workers() == [], "a cleanly stopped worker removes its rows"

    run(main())


def test_alias_move_is_picked_up_by_the_poll_loop(reg, push, loader, tmp_home) -> None:
    push("m", 1, alias="production")
    push("m", 2)
    reg.set_endpoint("ep", "m@production")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            assert await served(rt) == 1
            reg.set_alias("m", "production", 2)
            deadline = time.monotonic() + 2.0
            while await served(rt) != 2:
                assert time.monotonic() < deadline, "alias move not picked up within 2 s"
                await asyncio.sleep(0.02)
            assert rt.get("ep").current.target == "m@production"
        finally:
            await rt.stop()

    run(main())


@pytest.mark.parametrize(
    ("mode", "inputs", "expected"),
    [
        ("load_error", ("x",), "loading m@2 failed: ValueError: pickle data was truncated"),
        ("warmup_error", ("x",), "warm-up of m@2 failed: RuntimeError: model exploded"),
        ("ok", ("x", "z"), "m@2 would break clients of endpoint 'ep'"),
    ],
)
def test_broken_target_is_refused_and_old_keeps_serving(
    reg, push, loader, tmp_home, mode, inputs, expected
) -> None:
    push("m", 1)
    push("m", 2, mode=mode, inputs=inputs)
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            state = reg.set_endpoint("ep", "m@2")
            await rt.reconciler.poll()
            ep = rt.get("ep")
            assert await served(rt) == 1 and ep.state == "failed" and expected in (ep.error or "")
            await rt.report()
            (row,) = reg.workers(endpoint="ep")
            assert row.state == "failed" and row.version == 1 and row.generation == state.generation
            assert expected in row.error
            audit = reg.audit(action="endpoint.swap_failed")
            assert len(audit) == 1 and expected in audit[0].after["error"]
            attempts = len(loader.loaded)
            reg.set_endpoint("other", "m@1")  # an unrelated change: the refused target is not retried
            await rt.reconciler.poll()
            assert len(loader.loaded) == attempts + 1  # only "other" loaded
            assert len(reg.audit(action="endpoint.swap_failed")) == 1
            assert ep.current is not None and ep.current.version == 1
            for p in loader.predictors:
                if p.mode == "warmup_error" or p.contract.inputs != loader.predictors[0].contract.inputs:
                    assert p.closed, "a refused predictor is closed"
        finally:
            await rt.stop()

    run(main())


def test_forced_incompatible_swap_is_audited(reg, push, loader, tmp_home) -> None:
    push("m", 1)
    push("m", 2, inputs=("x", "z"))
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            reg.set_endpoint("ep", "m@2", force=True)
            await rt.reconciler.poll()
            ep = rt.get("ep")
            assert ep.state == "serving" and ep.current.version == 2
            (entry,) = reg.audit(action="endpoint.forced_swap")
            assert entry.before == {"ref": "m@1"} and entry.after["ref"] == "m@2" and entry.after["reasons"]
        finally:
            await rt.stop()

    run(main())


def test_keep_previous_rolls_back_without_loading(reg, push, loader, tmp_home) -> None:
    push("m", 1)
    push("m", 2)
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader, keep_previous=True)
        await rt.start()
        try:
            reg.set_endpoint("ep", "m@2")
            await rt.reconciler.poll()
            reg.rollback_endpoint("ep")
            await rt.reconciler.poll()
            assert await served(rt) == 1
            assert loader.loaded == ["m@1", "m@2"], "rollback reused the kept version"
            assert not any(p.closed for p in loader.predictors)
            assert rt.status()[0]["previous"] == "m@2"
        finally:
            await rt.stop()
        assert all(p.closed for p in loader.predictors)

    run(main())


def _metrics() -> str:
    from modelrunner.monitoring import metrics

    return metrics.render()[0].decode()


def test_removed_endpoint_is_unloaded(reg, push, loader, tmp_home, monkeypatch) -> None:
    from modelrunner.monitoring import metrics

    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    metrics.reset()
    push("m", 1)
    reg.set_endpoint("ep", "m@1")
    reg.set_endpoint("keep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            gone, kept = rt.get("ep").current.predictor, rt.get("keep").current.predictor
            assert 'modelrunner_loaded_version{endpoint="ep",version="1"} 1.0' in _metrics()
            reg.delete_endpoint("ep")
            await rt.reconciler.poll()
            with pytest.raises(NotFound, match="no endpoint 'ep'"):
                rt.get("ep")
            assert gone.closed and not kept.closed and rt.ready
            text = _metrics()  # a deleted endpoint is no longer reported (as loaded, or at all)
            assert 'endpoint="ep"' not in text and 'endpoint="keep"' in text, text
            await rt.report()
            assert [w.endpoint for w in reg.workers()] == ["keep"]
        finally:
            await rt.stop()

    run(main())


def test_swaps_and_endpoints_are_reported_to_the_observer_given(reg, push, loader, tmp_home) -> None:
    from modelrunner.monitoring.observer import RecordingObserver

    push("m", 1)
    push("m", 2)
    push("m", 3, mode="load_error")
    reg.set_endpoint("ep", "m@1")
    observer = RecordingObserver()

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader, observer=observer)
        await rt.start()
        try:
            reg.set_endpoint("ep", "m@2")
            await rt.reconciler.poll()
            reg.set_endpoint("ep", "m@3")
            await rt.reconciler.poll()
            assert rt.get("ep").state == "failed" and await served(rt) == 2
            reg.delete_endpoint("ep")
            await rt.reconciler.poll()
        finally:
            await rt.stop()

    run(main())
    assert [c[0] for c in observer.calls] == [
        "endpoint_added",
        "swap_started",
        "swap_succeeded",
        "swap_started",
        "swap_succeeded",
        "swap_started",
        "swap_failed",
        "endpoint_removed",
    ]
    assert [(c[0], c[2], c[3]) for c in observer.named("swap_succeeded")] == [("ep", 1, None), ("ep", 2, 1)]
    assert observer.named("swap_failed") == [("ep", "failed_precondition")]  # SwapFailed's code


def test_unresolvable_target_is_reported_not_fatal(reg, push, loader, tmp_home) -> None:
    push("m", 1, alias="production")
    reg.set_endpoint("ep", "m@production")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            reg.delete_alias("m", "production")
            await rt.reconciler.poll()
            ep = rt.get("ep")
            assert ep.state == "failed" and "production" in (ep.error or "")
            assert await served(rt) == 1
        finally:
            await rt.stop()

    run(main())


def test_postgres_notify_wakes_the_reconciler_before_the_poll(
    pg_schema_url, tmp_home, tmp_path, loader
) -> None:
    from modelrunner.registry.registry import Registry

    settings = Settings(home=tmp_home, poll_interval_s=30.0, heartbeat_s=0.1)
    with Registry(settings, database_url=pg_schema_url) as pg:
        for tag in (1, 2):
            pg.push(write_bundle(tmp_path / f"b{tag}", "m", tag), alias="production" if tag == 1 else None)
        pg.set_endpoint("ep", "m@production")

        async def main() -> None:
            rt = Runtime(pg, settings, worker_id="pg-w0", loader=loader)
            await rt.start()
            try:
                assert await served(rt) == 1  # the first reconcile ran; the next poll is 30 s away
                moved = time.monotonic()
                await asyncio.to_thread(pg.set_alias, "m", "production", 2)
                while await served(rt) != 2:
                    assert time.monotonic() - moved < 3.0, "NOTIFY did not wake the reconciler"
                    await asyncio.sleep(0.02)
            finally:
                await rt.stop()

        run(main())


def test_expected_targets_are_waited_for_before_taking_traffic(reg, push, loader, tmp_home) -> None:
    """``serve --endpoint`` starts the workers while it writes the desired state: they wait for it."""
    push("m", 1)
    push("m", 2)
    reg.set_endpoint("ep", "m@1")  # an older desired state; serve is about to write m@2

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader, expect={"ep": "m@2", "new": "m@1"})
        starting = asyncio.ensure_future(rt.start())
        await asyncio.sleep(0.3)
        assert not starting.done() and not rt.ready
        await asyncio.to_thread(reg.set_endpoint, "ep", "m@2")
        await asyncio.to_thread(reg.set_endpoint, "new", "m@1")
        await starting
        try:
            assert rt.ready and await served(rt) == 2 and await served(rt, "new") == 1
        finally:
            await rt.stop()

    run(main())


def test_expected_targets_that_never_come_are_given_up_on(reg, push, loader, tmp_home, monkeypatch) -> None:
    from modelrunner.runner import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "EXPECT_TIMEOUT_S", 0.3)
    push("m", 1)
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader, expect={"ep": "m@9"})
        started = time.monotonic()
        await rt.start()
        try:
            assert 0.3 <= time.monotonic() - started < 3 and rt.ready and await served(rt) == 1
        finally:
            await rt.stop()

    run(main())


def test_a_registry_outage_keeps_serving_reports_stale_and_catches_up(
    reg, push, loader, tmp_home, monkeypatch
) -> None:
    """The database stops answering: the worker keeps serving, says it is stale (/readyz stays 200), and
    after the outage reads the desired state again and swaps to what changed meanwhile."""
    from modelrunner.errors import StorageError
    from modelrunner.runner import runtime as runtime_module
    from modelrunner.server.dataplane import DataPlane

    monkeypatch.setattr(runtime_module, "STALE_AFTER_S", 0.3)
    push("m", 1)
    push("m", 2)
    reg.set_endpoint("ep", "m@1")
    down = {"now": False}

    def guarded(method: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            if down["now"]:
                raise StorageError("database postgresql://db/x: connection timed out")
            return method(*args, **kw)

        return call

    for name in ("state_generation", "report_worker"):
        monkeypatch.setattr(reg, name, guarded(getattr(reg, name)))
    quick = reg.quick_generation  # the probe cannot say during the outage: the (failing) full read decides
    monkeypatch.setattr(reg, "quick_generation", lambda: None if down["now"] else quick())

    async def wait_for(check: Any, what: str) -> None:
        deadline = time.monotonic() + 5
        while not check():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            assert rt.registry_contact()["connected"]
            down["now"] = True
            await wait_for(lambda: not rt.registry_contact()["connected"], "stale never reported")
            status, body = DataPlane(rt).readiness()
            assert status == 200 and body["registry"]["stale"] is True and body["registry"]["stale_s"] >= 0.3
            down["now"] = False  # the write below goes around the worker's (guarded) view
            reg.set_endpoint("ep", "m@2")
            down["now"] = True
            await asyncio.sleep(0.2)
            assert await served(rt) == 1, "cut off, it serves what it loaded"
            down["now"] = False
            t0 = time.monotonic()
            await wait_for(lambda: rt.get("ep").current.version == 2, "no catch-up after the outage")
            assert time.monotonic() - t0 < 2.0 and await served(rt) == 2
            await wait_for(lambda: rt.registry_contact()["connected"], "still stale after the outage")
            status, body = DataPlane(rt).readiness()
            assert status == 200 and body["registry"]["connected"] and "stale" not in body["registry"]
        finally:
            down["now"] = False
            await rt.stop()

    run(main())


def test_an_unchanged_generation_is_polled_without_the_full_read(
    reg, push, loader, tmp_home, monkeypatch
) -> None:
    """On a SQLite file the poll asks ``quick_generation`` on the loop; the full read (a thread, a pooled
    transaction) runs only when the generation moved."""
    push("m", 1)
    push("m", 2)
    reg.set_endpoint("ep", "m@1")
    full_reads: list[int] = []
    state_generation = reg.state_generation
    monkeypatch.setattr(reg, "state_generation", lambda: full_reads.append(1) or state_generation())

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)  # polls every 20 ms
        await rt.start()
        try:
            full_reads.clear()
            await asyncio.sleep(0.5)
            assert len(full_reads) == 0, f"{len(full_reads)} full reads while nothing changed"
            reg.set_endpoint("ep", "m@2")
            deadline = time.monotonic() + 2.0
            while await served(rt) != 2:
                assert time.monotonic() < deadline, "the change was not picked up"
                await asyncio.sleep(0.02)
            assert len(full_reads) >= 1
        finally:
            await rt.stop()

    run(main())
