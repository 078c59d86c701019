"""Load errors: transient ones (an import race, memory, I/O) are retried with back-off and shown while
they are; errors about the bundle are refused for good. Readiness counts a refused endpoint as settled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from modelrunner.errors import SwapFailed, Unavailable
from modelrunner.runner.loading import build_deployment, transient_cause
from modelrunner.server.dataplane import DataPlane
from support.runner_fakes import run, runtime, served


def _raising(exc: BaseException) -> Any:
    def loader(registry: Any, mv: Any) -> Any:
        raise exc

    return loader


class _Mv:
    ref, name, version, sha256, contract = "m@1", "m", 1, "sha", None


@pytest.mark.parametrize(
    "exc",
    [
        ImportError("cannot import name 'BaseLibSVM' from partially initialized"),
        MemoryError(),
        OSError(24, "Too many open files"),
    ],
)
def test_errors_about_this_process_are_transient(exc: BaseException) -> None:
    with pytest.raises(Unavailable, match="loading m@1 failed"):
        build_deployment("ep", "m@1", _Mv(), None, _raising(exc))


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("pickle data was truncated"),
        ModuleNotFoundError("no 'x'"),
        FileNotFoundError(2, "No such file", "model.joblib"),
    ],
)
def test_errors_about_the_bundle_are_refusals(exc: BaseException) -> None:
    with pytest.raises(SwapFailed, match="loading m@1 failed"):
        build_deployment("ep", "m@1", _Mv(), None, _raising(exc))


def test_transient_cause_looks_through_wrapping_errors() -> None:
    try:
        try:
            raise ImportError("partially initialized module")
        except ImportError as inner:
            raise RuntimeError("cannot load the sklearn model") from inner
    except RuntimeError as outer:
        assert isinstance(transient_cause(outer), ImportError)
    assert transient_cause(ValueError("bad")) is None
    deadlock = type("_DeadlockError", (RuntimeError,), {})  # importlib._bootstrap's, seen in the same race
    assert isinstance(
        transient_cause(deadlock("deadlock detected by _ModuleLock('sklearn.svm._base')")), RuntimeError
    )


def test_a_transient_load_error_is_retried_shown_meanwhile_and_then_served(
    reg, push, loader, tmp_home
) -> None:
    push("m", 1, mode="import_race_once")
    reg.set_endpoint("ep", "m@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            ep = rt.get("ep")
            assert (ep.state, ep.ready, rt.ready) == ("loading", False, False)
            assert "retrying after a transient error: loading m@1 failed: ImportError" in (ep.error or "")
            await rt.report()
            (row,) = reg.workers(endpoint="ep")
            assert row.state == "loading" and "BaseLibSVM" in (row.error or "")
            status, body = DataPlane(rt).readiness()
            assert status == 503 and body["waiting_for"] == ["ep"]
            assert "BaseLibSVM" in body["not_serving"]["ep"]["error"]
            deadline = time.monotonic() + 5  # the first retry comes after a 1 s back-off
            while not ep.ready and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert await served(rt) == 1 and (ep.state, ep.error) == ("serving", None) and rt.ready
            assert loader.loaded == ["m@1", "m@1"]
            status, body = DataPlane(rt).readiness()
            assert (status, body["status"], body["registry"]["connected"]) == (200, "ready", True)
            assert "not_serving" not in body
        finally:
            await rt.stop()

    run(main())


def test_a_refused_endpoint_does_not_hold_readiness_and_is_named(reg, push, loader, tmp_home) -> None:
    push("good", 1)
    push("bad", 2, mode="load_error")
    reg.set_endpoint("ok", "good@1")
    reg.set_endpoint("broken", "bad@1")

    async def main() -> None:
        rt = runtime(reg, tmp_home, loader)
        await rt.start()
        try:
            assert await served(rt, "ok") == 1 and rt.get("broken").state == "failed"
            status, body = DataPlane(rt).readiness()
            assert status == 200 and rt.ready, body
            assert body["not_serving"] == {
                "broken": {
                    "state": "failed",
                    "error": "loading bad@1 failed: ValueError: pickle data was truncated",
                }
            }
            assert not await rt.reconciler.poll(), "a refusal is not retried until something changes"
            assert loader.loaded.count("bad@1") == 1
        finally:
            await rt.stop()

    run(main())


@pytest.mark.parametrize("batch_safe", [True, False])
def test_a_deployment_is_batch_safe_when_its_predictor_is(batch_safe: bool) -> None:
    from support.runner_fakes import TagPredictor

    predictor = TagPredictor(1)
    predictor.batch_safe = batch_safe

    def loader(registry: Any, mv: Any) -> Any:
        return predictor, None

    assert build_deployment("ep", "m@1", _Mv(), None, loader).batch_safe is batch_safe
