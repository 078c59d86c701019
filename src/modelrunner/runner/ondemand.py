"""On-demand endpoints: pattern endpoints loaded on their first request, least recently used evicted.

``serve --endpoint 'tenant-*=tenant-*@production' --max-loaded 100 --memory-budget 2GB`` serves every
endpoint name the glob matches (``runner/demand_config.py``), resolved against the registry at request time:
a model registered after the start is served on its first request, no restart. Per worker process:

* an endpoint not loaded is loaded on its first request; concurrent first requests wait for that one load;
* at most ``max_loaded`` on-demand models (loaded or loading) and ``memory_budget`` bytes of them (each
  estimated by :func:`footprint`) are held; to load one more, the least recently used ones are evicted,
  never one with a request in flight (a load waits up to ``room_timeout_s`` for one to end, then 503s);
* endpoints of the desired state (``--endpoint NAME=TARGET``, the admin API, V2 ``repository/.../load``)
  are pinned: the reconciler serves them, never evicted and outside both limits, even when a pattern
  matches their name (a V2 load of an on-demand endpoint pins it; its unload makes it on-demand again);
* after each reconciler pass (a desired-state generation: alias moves too), loaded ones whose target now
  resolves to another version are swapped to it in the background (as the reconciler would).

The data plane brackets every request with :meth:`OnDemand.enter` / :meth:`OnDemand.exit`. Everything here
runs on the worker's event loop; loads run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from modelrunner.errors import FailedPrecondition, ModelrunnerError, NotFound, Unavailable
from modelrunner.monitoring.demand_metrics import DemandObserver, NullDemandObserver
from modelrunner.runner.aio import wait_event
from modelrunner.runner.demand_config import DemandConfig
from modelrunner.runner.endpoint import Endpoint
from modelrunner.runner.loading import Loader, build_deployment, load_bundle
from modelrunner.runner.memory import ThrottledRelease, footprint

if TYPE_CHECKING:
    from modelrunner.pipelines.targets import ResolvedTarget
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)

ROOM_TIMEOUT_S = 30.0
"""How long a load waits for a loaded model to have no request in flight (every one busy) before a 503."""


class OnDemand:
    """The on-demand endpoints of one worker (see the module docstring). ``endpoints`` is the runtime's dict
    (loaded on-demand endpoints are put there, so status, metrics and drift see them); ``make_endpoint``
    builds an empty one; ``pinned`` says which names the desired state has; ``forget`` is told the names
    evicted (the heartbeat drops their status rows)."""

    def __init__(
        self,
        config: DemandConfig,
        registry: Registry,
        endpoints: dict[str, Endpoint],
        make_endpoint: Callable[[str], Endpoint],
        *,
        pinned: Callable[[], Collection[str]] = frozenset,
        loader: Loader = load_bundle,
        observer: DemandObserver | None = None,
        forget: Callable[[str], None] | None = None,
        room_timeout_s: float = ROOM_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.registry = registry
        self.endpoints = endpoints
        self.make_endpoint = make_endpoint
        self.pinned = pinned
        self.loader = loader
        self.observer: DemandObserver = observer if observer is not None else NullDemandObserver()
        self.forget = forget
        self.room_timeout_s = room_timeout_s
        self.lru: OrderedDict[str, Endpoint] = OrderedDict()  # loaded and owned here, least recent first
        self.sizes: dict[str, int] = {}
        self.peak_loaded = 0  # the most held at once (loaded + loading), for tests and the bench
        self._reserved: dict[str, int] = {}  # loads under way: their estimated bytes
        self._loads: dict[str, asyncio.Future[Endpoint]] = {}
        self._users: Counter[str] = Counter()  # requests between enter and exit, by endpoint
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._release = ThrottledRelease()

    # ---- what is held ----------------------------------------------------------------------------------

    @property
    def held(self) -> int:
        """On-demand models loaded or loading now."""
        return len(self.lru) + len(self._reserved)

    @property
    def held_bytes(self) -> int:
        return sum(self.sizes.values()) + sum(self._reserved.values())

    def owns(self, name: str) -> bool:
        """``name`` is an on-demand endpoint loaded (or loading) here: the reconciler leaves it alone."""
        return name in self.lru or name in self._loads

    def endpoint(self, name: str) -> Endpoint | None:
        """What ``Runtime.get`` answers for a name it does not serve: the endpoint loaded here on demand (V2
        metadata and ready see its version), a stand-in with nothing loaded when a pattern matches ``name``
        (:meth:`enter` loads the real one), else None."""
        loaded = self.lru.get(name)
        if loaded is not None:
            return loaded
        return self.make_endpoint(name) if self.loads(name) else None

    def loads(self, name: str) -> bool:
        """A request to ``name`` would load it here (a pattern matches it, it is not pinned)."""
        return self.config.target_for(name) is not None and name not in self.pinned()

    # ---- requests --------------------------------------------------------------------------------------

    async def enter(self, endpoint: Endpoint) -> Endpoint | None:
        """A request to ``endpoint`` starts: the loaded endpoint to serve it (loaded now if needed: NotFound
        when no registered model matches), or None when it is not an on-demand endpoint. A non-None answer
        is paired with one :meth:`exit`."""
        name = endpoint.name
        loaded = self.lru.get(name)
        if loaded is not None:
            self.lru.move_to_end(name)
            self._users[name] += 1
            self.observer.lookup(True)
            return loaded
        if name in self.endpoints or not self.loads(name):
            return None
        self._users[name] += 1
        self.observer.lookup(False)
        try:
            return await asyncio.shield(self._load_once(name))
        except BaseException:
            self.exit(name)
            raise

    def exit(self, name: str) -> None:
        """A request :meth:`enter` let in has ended."""
        left = self._users[name] - 1
        if left > 0:
            self._users[name] = left
        else:
            self._users.pop(name, None)
            self._room.set()

    def _load_once(self, name: str) -> asyncio.Future[Endpoint]:
        future = self._loads.get(name)
        if future is None:
            future = self._loads[name] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self._spawn(self._load(name, future))
        return future

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self, name: str, future: asyncio.Future[Endpoint]) -> None:
        try:
            ep = await self._load_endpoint(name)
        except asyncio.CancelledError:
            future.set_exception(Unavailable(f"endpoint {name!r}: the worker is stopping"))
            raise
        except BaseException as exc:  # noqa: BLE001 - every waiter gets the load's error
            future.set_exception(exc)
        else:
            future.set_result(ep)
        finally:
            self._loads.pop(name, None)

    async def _load_endpoint(self, name: str) -> Endpoint:
        target = self.config.target_for(name) or ""
        t0 = time.perf_counter()
        mv, size = await asyncio.to_thread(self._resolve, name, target)
        await self._make_room(name, size)
        try:
            dep = await asyncio.to_thread(build_deployment, name, target, mv, self.registry, self.loader)
        finally:
            self._reserved.pop(name, None)
        existing = self.endpoints.get(name)
        if existing is not None:  # pinned meanwhile (a V2 repository load): the reconciler's serves
            await asyncio.to_thread(dep.close)
            self._room.set()
            return existing
        ep = self.make_endpoint(name)
        ep.release = self._release
        ep.swap(dep)
        ep.settle("serving", None)
        self.endpoints[name] = ep
        self.lru[name] = ep
        self.sizes[name] = size
        self.observer.loaded(time.perf_counter() - t0)
        self._report()
        log.info("endpoint %s: loaded %s on demand (%d held)", name, dep.ref, self.held)
        return ep

    def _resolve(self, name: str, target: str) -> tuple[ResolvedTarget, int]:
        from modelrunner.pipelines.targets import resolve_target

        try:
            mv = resolve_target(self.registry, target)
        except NotFound as exc:
            raise NotFound(f"no endpoint {name!r}: {target} is not in the registry ({exc})") from exc
        return mv, footprint(self.registry, mv)

    # ---- room: the limits and eviction -----------------------------------------------------------------

    def _over(self, size: int) -> str | None:
        """Which limit one more model of ``size`` bytes would break, else None."""
        if self.config.max_loaded and self.held + 1 > self.config.max_loaded:
            return "max_loaded"
        if self.config.memory_budget and self.held_bytes + size > self.config.memory_budget:
            return "memory_budget"
        return None

    async def _make_room(self, name: str, size: int) -> None:
        """Evict until a model of ``size`` bytes fits, then reserve its place (no await in between)."""
        budget = self.config.memory_budget
        if budget and size > budget:
            raise FailedPrecondition(
                f"endpoint {name!r} needs ~{size} bytes, more than the memory budget ({budget} bytes)"
            )
        deadline = time.monotonic() + self.room_timeout_s
        while (reason := self._over(size)) is not None:
            victim = self._victim()
            if victim is not None:
                await self.evict(victim, reason)
                continue
            left = deadline - time.monotonic()
            if left <= 0 or (not self.lru and not self._reserved):
                raise Unavailable(
                    f"endpoint {name!r}: no room to load it, all {self.held} on-demand models in use "
                    f"for {self.room_timeout_s:g}s (--max-loaded / --memory-budget); retry",
                    retry_after_s=1,
                )
            self._room.clear()
            await wait_event(self._room, min(left, 0.5))
        self._reserved[name] = size
        self.peak_loaded = max(self.peak_loaded, self.held)

    def _victim(self) -> str | None:
        """The least recently used on-demand endpoint with no request in flight, else None."""
        for name, ep in self.lru.items():
            dep = ep.current
            if self._users.get(name, 0) == 0 and (dep is None or dep.inflight == 0):
                return name
        return None

    async def evict(self, name: str, reason: str) -> None:
        """Unload on-demand endpoint ``name`` now (the caller made sure no request uses it)."""
        ep = self.lru.pop(name)
        self.sizes.pop(name, None)
        if self.endpoints.get(name) is ep:
            del self.endpoints[name]
        self.observer.evicted(reason)
        self._report()
        if self.forget is not None:
            self.forget(name)
        log.info("endpoint %s: evicted (%s)", name, reason)
        await ep.close()
        self._room.set()

    async def unload(self, name: str, timeout_s: float) -> bool:
        """Evict ``name`` once no request uses it (V2 ``repository/.../unload``); False if not loaded here."""
        deadline = time.monotonic() + timeout_s
        while name in self.lru:
            if self._victim_ok(name):
                await self.evict(name, "unload")
                return True
            if time.monotonic() >= deadline:
                raise Unavailable(f"endpoint {name!r} still has requests in flight after {timeout_s:g}s")
            self._room.clear()
            await wait_event(self._room, 0.05)
        return False

    def _victim_ok(self, name: str) -> bool:
        dep = self.lru[name].current
        return self._users.get(name, 0) == 0 and (dep is None or dep.inflight == 0)

    def _report(self) -> None:
        self.observer.holding(len(self.lru), sum(self.sizes.values()))

    # ---- desired-state changes (after each reconciler pass) --------------------------------------------

    async def refresh(self) -> None:
        """After a reconciler pass: hand names now in the desired state over to the reconciler, and swap
        loaded ones whose target resolves to another version (in the background)."""
        pinned = self.pinned()
        for name in [n for n in self.lru if n in pinned]:
            self.lru.pop(name)
            self.sizes.pop(name, None)
            self._report()
        if self.lru:
            self._spawn(self._follow_targets(list(self.lru)))

    async def _follow_targets(self, names: list[str]) -> None:
        for name in names:
            ep = self.lru.get(name)
            dep = ep.current if ep is not None else None
            if ep is None or dep is None:
                continue
            try:
                mv, size = await asyncio.to_thread(self._resolve, name, dep.target)
                if dep.same_version(mv.name, mv.version, mv.sha256):
                    continue
                new = await asyncio.to_thread(
                    build_deployment, name, dep.target, mv, self.registry, self.loader
                )
            except NotFound:
                if self.lru.get(name) is ep and self._victim_ok(name):
                    await self.evict(name, "removed")
                continue
            except ModelrunnerError as exc:
                log.warning("endpoint %s: keeping %s, its new version failed to load: %s", name, dep.ref, exc)
                continue
            if self.lru.get(name) is not ep:
                await asyncio.to_thread(new.close)
                continue
            ep.swap(new)
            self.sizes[name] = size
            self._report()
            log.info("endpoint %s: now serving %s (was %s)", name, new.ref, dep.ref)

    async def stop(self) -> None:
        """Stop loading (the runtime closes the loaded endpoints with the others)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.lru.clear()
        self.sizes.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "patterns": [str(p) for p in self.config.patterns],
            "max_loaded": self.config.max_loaded,
            "memory_budget": self.config.memory_budget,
            "loaded": list(self.lru),
            "loading": list(self._reserved),
            "bytes": self.held_bytes,
        }


def _retrieve(future: asyncio.Future[Any]) -> None:
    """No 'exception never retrieved' warning when every waiter of a failed load was cancelled."""
    if not future.cancelled():
        future.exception()


def make_on_demand(runtime: Any, loader: Loader) -> OnDemand | None:
    """The on-demand endpoints of a runtime, from its settings (``endpoint_patterns``, ``max_loaded``,
    ``memory_budget``: ``serve`` exports them); None when no pattern is set."""
    settings = runtime.settings
    if not settings.endpoint_patterns:
        return None
    from modelrunner.monitoring.demand_metrics import PROMETHEUS_DEMAND
    from modelrunner.monitoring.prometheus import PROMETHEUS

    config = DemandConfig.build(settings.endpoint_patterns, settings.max_loaded, settings.memory_budget)
    return OnDemand(
        config,
        runtime.registry,
        runtime.endpoints,
        runtime.new_endpoint,
        pinned=lambda: runtime.reconciler.desired,
        loader=loader,
        observer=PROMETHEUS_DEMAND if runtime.observer is PROMETHEUS else None,
        forget=lambda name: runtime._removed.add(name),  # noqa: SLF001 - the heartbeat drops their rows
    )
