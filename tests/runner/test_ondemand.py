"""On-demand endpoints (runner/ondemand.py) with real loads of tiny scikit-learn bundles from a real SQLite
registry: one load for concurrent first requests, LRU eviction under --max-loaded and --memory-budget, never
of a model in use, new models and alias moves without a restart, and the runtime's hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.errors import FailedPrecondition, NotFound
from modelrunner.runner.demand_config import DemandConfig
from modelrunner.runner.endpoint import Endpoint
from modelrunner.runner.memory import footprint
from modelrunner.runner.ondemand import OnDemand
from modelrunner.runner.runtime import Runtime
from modelrunner.settings import Settings
from support.many_models import register_many, save_tiny

X = {"x": np.array([[0.5, 0.25, 0.0, 1.0]])}
PATTERN = "tenant-*=tenant-*@production"


def run(coro: Any) -> Any:
    """``asyncio.run`` failing after 60 s (a hang) rather than at pytest's timeout."""

    async def guarded() -> Any:
        async with asyncio.timeout(60):
            return await coro

    return asyncio.run(guarded())


class Recorder:
    """A DemandObserver keeping what it was told."""

    def __init__(self) -> None:
        self.hits = self.misses = 0
        self.loads: list[float] = []
        self.evictions: list[str] = []
        self.holding_seen: list[tuple[int, int]] = []

    def lookup(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def loaded(self, seconds: float) -> None:
        self.loads.append(seconds)

    def evicted(self, reason: str) -> None:
        self.evictions.append(reason)

    def holding(self, count: int, nbytes: int) -> None:
        self.holding_seen.append((count, nbytes))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "bundle")


@pytest.fixture
def tenants(reg: Any, tiny: Path) -> list[str]:
    names = [f"tenant-{i}" for i in range(8)]
    register_many(reg, tiny, names)
    return names


def manager(reg: Any, max_loaded: int = 0, budget: int = 0, **kw: Any) -> tuple[OnDemand, Recorder]:
    recorder = Recorder()
    config = DemandConfig.build([PATTERN], max_loaded, budget)
    return OnDemand(config, reg, {}, Endpoint, observer=recorder, **kw), recorder


async def call(od: OnDemand, name: str, hold: asyncio.Event | None = None) -> int:
    """One request as the data plane makes it: enter, predict, (wait for ``hold``), exit."""
    ep = await od.enter(Endpoint(name))
    assert ep is not None
    try:
        pred = await ep.predict(X)
        if hold is not None:
            await hold.wait()
        return int(pred.columns["label"][0])
    finally:
        od.exit(name)


async def closed(od: OnDemand) -> None:
    await od.stop()
    for ep in list(od.endpoints.values()):
        await ep.close()


def test_concurrent_first_requests_share_one_load(reg: Any, tenants: list[str]) -> None:
    od, seen = manager(reg)

    async def main() -> None:
        answers = await asyncio.gather(*(call(od, "tenant-3") for _ in range(20)))
        assert len(set(answers)) == 1 and len(seen.loads) == 1  # one load, twenty answers
        assert seen.misses == 20 and list(od.lru) == ["tenant-3"]
        await call(od, "tenant-3")
        assert seen.hits == 1 and od.endpoints["tenant-3"].current is not None
        await closed(od)

    run(main())


def test_least_recently_used_is_evicted_under_max_loaded(reg: Any, tenants: list[str]) -> None:
    od, seen = manager(reg, max_loaded=3)

    async def main() -> None:
        for name in ("tenant-0", "tenant-1", "tenant-2", "tenant-0", "tenant-3"):
            await call(od, name)
        assert list(od.lru) == ["tenant-2", "tenant-0", "tenant-3"]  # tenant-1 was least recently used
        assert "tenant-1" not in od.endpoints and seen.evictions == ["max_loaded"]
        await asyncio.gather(*(call(od, n) for n in tenants))
        assert od.held <= 3 and od.peak_loaded == 3
        await closed(od)

    run(main())


def test_a_model_in_use_is_never_evicted(reg: Any, tenants: list[str]) -> None:
    od, seen = manager(reg, max_loaded=1)

    async def main() -> None:
        hold = asyncio.Event()
        first = asyncio.ensure_future(call(od, "tenant-0", hold))
        while "tenant-0" not in od.lru:
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(call(od, "tenant-1"))
        await asyncio.sleep(0.3)
        assert not second.done() and list(od.lru) == ["tenant-0"]  # waits for room: tenant-0 is busy
        hold.set()
        await asyncio.gather(first, second)
        assert list(od.lru) == ["tenant-1"] and seen.evictions == ["max_loaded"]
        await closed(od)

    run(main())


def test_memory_budget_bounds_the_estimated_footprint(reg: Any, tenants: list[str]) -> None:
    size = footprint(reg, reg.resolve("tenant-0@production"))
    od, seen = manager(reg, budget=int(size * 2.5))

    async def main() -> None:
        for name in tenants:
            await call(od, name)
            assert od.held_bytes <= od.config.memory_budget
        assert len(od.lru) == 2 and set(seen.evictions) == {"memory_budget"}
        assert seen.holding_seen[-1] == (2, 2 * size)
        await closed(od)

    run(main())


def test_a_model_larger_than_the_budget_is_refused(reg: Any, tenants: list[str]) -> None:
    od, _ = manager(reg, budget=10)

    async def main() -> None:
        with pytest.raises(FailedPrecondition, match="more than the memory budget"):
            await call(od, "tenant-0")
        assert not od.lru and not od._users  # noqa: SLF001 - the failed request was released
        await closed(od)

    run(main())


def test_unknown_and_new_models(reg: Any, tiny: Path, tenants: list[str]) -> None:
    od, _ = manager(reg)

    async def main() -> None:
        with pytest.raises(NotFound, match="no endpoint 'tenant-99'"):
            await call(od, "tenant-99")
        assert od.endpoint("other") is None and od.endpoint("tenant-99") is not None
        register_many(reg, tiny, ["tenant-99"])  # registered after the start: served, no restart
        assert await call(od, "tenant-99") in (0, 1)
        await closed(od)

    run(main())


def test_alias_move_swaps_a_loaded_model(reg: Any, tiny: Path, tenants: list[str]) -> None:
    od, _ = manager(reg)

    async def main() -> None:
        await call(od, "tenant-2")
        reg.push(tiny, name="tenant-2", alias="production")  # version 2
        await od.refresh()
        for _ in range(200):
            dep = od.endpoints["tenant-2"].current
            if dep is not None and dep.version == 2:
                break
            await asyncio.sleep(0.02)
        assert od.endpoints["tenant-2"].current.version == 2  # type: ignore[union-attr]
        await od.endpoints["tenant-2"].wait_closed()  # the old version drained and closed
        await closed(od)

    run(main())


def test_runtime_serves_patterns_and_pins_desired_endpoints(
    reg: Any, tmp_home: Path, tenants: list[str]
) -> None:
    reg.set_endpoint("tenant-5", "tenant-5@production")  # pinned: the reconciler serves it
    settings = Settings(
        home=tmp_home, poll_interval_s=0.02, heartbeat_s=0.1, endpoint_patterns=[PATTERN], max_loaded=2
    )
    rt = Runtime(reg, settings, worker_id="test-w0")
    assert rt.demand is not None

    async def main() -> None:
        await rt.start()
        try:
            assert rt.demand is not None
            for name in ("tenant-0", "tenant-1", "tenant-2"):
                await call(rt.demand, name)
            await rt.reconciler.poll()
            await rt.reconciler.reconcile_once()  # the reconciler leaves on-demand endpoints alone
            assert set(rt.endpoints) == {"tenant-5", "tenant-1", "tenant-2"}
            assert rt.demand.endpoint("tenant-5") is None and "tenant-5" not in rt.demand.lru
            with pytest.raises(NotFound):
                rt.get("nope")
            reg.set_endpoint("tenant-1", "tenant-1@production")  # a V2 load: now pinned
            await rt.reconciler.reconcile_once()
            assert "tenant-1" not in rt.demand.lru and rt.endpoints["tenant-1"].current is not None
            await rt.report()
            assert {w.endpoint for w in reg.workers()} == {"tenant-5", "tenant-1", "tenant-2"}
        finally:
            await rt.stop()

    run(main())
