"""One runtime per worker process: its endpoints, its reconciler, and its heartbeat (worker status rows)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelrunner.background import PeriodicTask
from modelrunner.errors import ModelrunnerError, NotFound
from modelrunner.monitoring.observer import Observer
from modelrunner.monitoring.prometheus import PROMETHEUS
from modelrunner.runner.endpoint import Endpoint, ServingState
from modelrunner.runner.listen import ChangeWatcher, supports_listen
from modelrunner.runner.loading import Loader, load_bundle
from modelrunner.runner.memory import freeze_startup_heap
from modelrunner.runner.ondemand import make_on_demand
from modelrunner.runner.predlog import PredictionLog
from modelrunner.runner.reconciler import Reconciler
from modelrunner.settings import Settings

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import WorkerState, WorkerStatus

log = logging.getLogger(__name__)

EXPECT_TIMEOUT_S = 30.0
STALE_AFTER_S = 3.0
FRESHNESS_S = 0.5
"""How often the registry contact (connected, seconds stale) goes to the observer."""
"""The registry counts as unreachable once neither a poll nor a heartbeat reached it for this long (or three
heartbeats, if longer)."""


def _monitor(registry: Any, worker_id: str, settings: Settings, endpoints: dict[str, Endpoint]) -> Any:
    """Drift monitoring of this worker (``monitoring.monitor``), unless turned off, or the registry is not
    one it can store sketches in (a test double)."""
    if not settings.drift_monitoring or not hasattr(registry, "add_sketch"):
        return None
    from modelrunner.monitoring.monitor import Monitor

    return Monitor(registry, worker_id, settings, endpoints)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Runtime:
    """What one worker serves. The server's lifespan calls ``start()``/``stop()``; handlers call ``get()``.

    Swaps, endpoints coming and going and merged batches are reported to ``observer`` (Prometheus unless
    given; the worker's composition root passes the one its data plane reports requests to)."""

    def __init__(
        self,
        registry: Registry | None = None,
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
        keep_previous: bool = False,
        loader: Loader = load_bundle,
        predict_threads: int | None = None,
        freeze_heap: bool = False,
        expect: Mapping[str, str] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.expect = dict(expect or {})
        if registry is None:
            from modelrunner.registry.registry import Registry

            registry = Registry(self.settings)
        self.registry: Registry = registry
        self.observer: Observer = observer if observer is not None else PROMETHEUS
        self.worker_id = worker_id or default_worker_id()
        self.keep_previous = keep_previous
        self.freeze_heap = freeze_heap
        self.endpoints: dict[str, Endpoint] = {}
        self.predict_threads = predict_threads  # per endpoint, unless its config says max_concurrency
        self.predictions = PredictionLog.from_settings(registry, self.settings)
        self.monitor = _monitor(registry, self.worker_id, self.settings, self.endpoints)
        self.demand = make_on_demand(self, loader)  # pattern endpoints (None without any): runner/ondemand.py
        self.reconciler = Reconciler(
            registry,
            self.endpoints,
            self._add_endpoint,
            self._remove_endpoint,
            worker_id=self.worker_id,
            poll_interval_s=self.settings.poll_interval_s,
            loader=loader,
            on_change=self._changed,
            observer=self.observer,
            shadow_queue=self.settings.shadow_queue,
            drift_hook_for=self.monitor.drift_hook_for if self.monitor else None,
            keeps=self.demand.owns if self.demand else None,
            on_pass=self.demand.refresh if self.demand else None,
        )
        self._started = False
        self._removed: set[str] = set()
        self._heartbeat = PeriodicTask(
            self.report,
            lambda: self.settings.heartbeat_s,
            name="heartbeat",
            failure="heartbeat failed",
            logger=log,
        )
        self._watcher: ChangeWatcher | None = None
        self._beat_contact = 0.0  # when a heartbeat write last reached the registry (monotonic)
        # its own task: the poll and the heartbeat may hang on an unreachable database
        self._freshness = PeriodicTask(self._report_freshness, FRESHNESS_S, name="freshness", logger=log)
        self._decider: asyncio.Task[None] | None = None
        self._decider_stop = asyncio.Event()

    def _add_endpoint(self, name: str) -> Endpoint:
        """A new endpoint ``name`` (the reconciler found it in the desired state)."""
        ep = self.endpoints[name] = self.new_endpoint(name)
        return ep

    def new_endpoint(self, name: str) -> Endpoint:
        """An endpoint ``name`` with nothing loaded, with this worker's options (not registered)."""
        return Endpoint(
            name,
            drain_timeout_s=self.settings.drain_timeout_s,
            keep_previous=self.keep_previous,
            concurrency=self.predict_threads,
            recorder=self.predictions,
            observer=self.observer,
        )

    def _remove_endpoint(self, name: str) -> Endpoint:
        """Endpoint ``name`` is no longer desired: no request finds it from now on (the caller closes it)."""
        return self.endpoints.pop(name)

    def get(self, name: str) -> Endpoint:
        """The endpoint called ``name`` (NotFound when no such endpoint is desired)."""
        ep = self.endpoints.get(name)
        if ep is None and self.demand is not None:
            ep = self.demand.endpoint(name)
        if ep is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise NotFound(f"no endpoint {name!r} (serving: {known})")
        return ep

    @property
    def ready(self) -> bool:
        """Every desired endpoint has settled: it serves a version, or its load failed for good (a bad
        bundle, an incompatible contract: retrying would not help). One still loading, or retrying after a
        transient error, keeps the worker unready; ``/readyz`` names them (``DataPlane.readiness`` in
        server/dataplane.py)."""
        if not self._started:
            return False
        eps = self.endpoints
        return all(
            name in eps and (eps[name].ready or eps[name].state == "failed")
            for name in self.reconciler.desired
        )

    async def start(self) -> None:
        """Reconcile once (load what is desired, after ``expect`` is in the desired state), then poll and
        heartbeat in the background."""
        try:
            await self.reconciler.reconcile_once()
            await self._await_expected()
        except ModelrunnerError as exc:
            log.error("first reconcile failed (%s); retrying in the background", exc)
        if self.freeze_heap:  # before taking traffic: later swaps' gc.collect() skips all of this
            await asyncio.to_thread(freeze_startup_heap, count=False)  # counting them: ~25 ms of the start
        await self._catch_up()
        await self.reconciler.start_polling()
        await self.predictions.start()
        if supports_listen(self.registry):
            loop = asyncio.get_running_loop()
            self._watcher = ChangeWatcher(self.registry, lambda: loop.call_soon_threadsafe(self.wake))
            self._watcher.start(self.reconciler.seen_generation or 0)
        self._started = True
        self._heartbeat.start()
        self._heartbeat.wake()  # the heartbeat writes the status rows at once, while traffic starts
        if self.monitor is not None:
            self.monitor.start()
        self._freshness.start()
        self._freshness.wake()
        from modelrunner.experiments.loop import run_decider  # online experiments: promote / abort

        self._decider_stop = asyncio.Event()
        self._decider = asyncio.get_running_loop().create_task(
            run_decider(
                self.registry,
                lambda: list(self.endpoints),
                self._decider_stop,
                worker_id=self.worker_id,
                observer=self.observer,
            ),
            name="decider",
        )

    async def _catch_up(self) -> None:
        """One more (cheap) pass if the desired state moved while the first one loaded: an experiment started
        meanwhile applies before this worker takes traffic, not at its first poll (until then its answers
        would not be logged; ``experiment start --wait`` cannot wait for a worker not yet listed)."""
        try:
            await self.reconciler.poll()
        except Exception:  # noqa: BLE001 - the worker serves what it loaded; the polling task retries
            log.warning("catching up with the desired state failed; the next poll retries", exc_info=True)

    def registry_contact(self) -> dict[str, Any]:
        """Whether the registry answers (a poll or heartbeat reached it lately) and seconds since it last
        did. A worker cut off keeps serving what it loaded: ``/readyz`` stays 200 and says it is stale."""
        last = max(self.reconciler.last_contact, self._beat_contact)
        stale = max(0.0, time.monotonic() - last)
        limit = max(STALE_AFTER_S, 3 * self.settings.heartbeat_s)
        return {"connected": stale < limit, "stale_s": round(stale, 3)}

    async def _report_freshness(self) -> None:
        contact = self.registry_contact()
        self.observer.registry_contact(contact["connected"], contact["stale_s"])

    async def _await_expected(self) -> None:
        """Until the desired state has every ``expect`` name -> target (``serve --endpoint`` writes them
        while the workers start), poll it; give up after ``EXPECT_TIMEOUT_S`` and serve what is desired."""
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while (missing := self._missing_expected()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            await self.reconciler.poll()
        if missing:
            log.warning(
                "the desired state still lacks %s after %.0fs; serving what it has",
                ", ".join(f"{n}={t}" for n, t in missing.items()),
                EXPECT_TIMEOUT_S,
            )

    def _missing_expected(self) -> dict[str, str]:
        targets = self.reconciler.targets
        return {name: target for name, target in self.expect.items() if targets.get(name) != target}

    async def stop(self) -> None:
        """Stop polling, unload every endpoint (in-flight requests drain first), free the threads."""
        if self._decider is not None:
            self._decider_stop.set()
            await self._decider
            self._decider = None
        await self._heartbeat.stop()
        await self._freshness.stop()
        await self.reconciler.stop()
        if self.demand is not None:
            await self.demand.stop()
        if self.monitor is not None:
            await self.monitor.stop()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)
            self._watcher = None
        for ep in list(self.endpoints.values()):
            await ep.close()
        self.endpoints.clear()
        await self.predictions.stop()  # what was answered is logged, after the last request ended
        try:  # a stopped worker is no longer one a rollout waits for
            await asyncio.to_thread(self.registry.remove_worker, self.worker_id)
        except ModelrunnerError as exc:
            log.warning("could not remove this worker's status rows: %s", exc)
        self._started = False

    def wake(self) -> None:
        """Look at the desired state now (after this process changed it) instead of at the next poll."""
        self.reconciler.wake()

    def _changed(self, ep: Endpoint) -> None:
        if ep.name not in self.endpoints:
            self._removed.add(ep.name)
        self._heartbeat.wake()

    async def report(self) -> None:
        """Write this worker's status row for every endpoint."""
        rows = [self._row(ep) for ep in list(self.endpoints.values())]
        removed, self._removed = self._removed, set()
        if rows or removed:
            await asyncio.to_thread(self._write, rows, removed)
            self._beat_contact = time.monotonic()

    def _write(self, rows: list[WorkerStatus], removed: set[str]) -> None:
        for row in rows:
            self.registry.report_worker(row)
        for name in removed:
            self.registry.remove_worker(self.worker_id, name)

    def _row(self, ep: Endpoint) -> WorkerStatus:
        from modelrunner.registry.types import WorkerStatus

        dep = ep.current
        return WorkerStatus(
            runner_id=self.worker_id,
            endpoint=ep.name,
            state=worker_state(ep.state),
            target=dep.target if dep else None,
            model=dep.model if dep else None,
            version=dep.version if dep else None,
            sha256=dep.sha256 if dep else None,
            generation=ep.generation,
            error=ep.error,
            load_ms=int(dep.load_ms) if dep else None,
            warmup_ms=int(dep.warmup_ms) if dep else None,
        )

    def status(self) -> list[dict[str, Any]]:
        """This worker's view of every endpoint (what the status rows say, plus in-flight counts)."""
        out = []
        for ep in self.endpoints.values():
            row = self._row(ep)
            out.append(
                {
                    "runner_id": row.runner_id,
                    "pid": row.pid,
                    "host": row.host,
                    "endpoint": ep.name,
                    "state": row.state,
                    "target": row.target,
                    "model": row.model,
                    "version": row.version,
                    "generation": row.generation,
                    "error": row.error,
                    "load_ms": row.load_ms,
                    "warmup_ms": row.warmup_ms,
                    "inflight": ep.current.inflight if ep.current else 0,
                    "previous": ep.previous.ref if ep.previous else None,
                }
            )
        return out


def worker_state(state: ServingState) -> WorkerState:
    """An endpoint's state as a worker status row says it (``empty``: nothing loaded yet, so ``loading``)."""
    return "loading" if state == "empty" else state
