"""The reconciler: make what this worker has loaded match the desired state in the registry.

It polls ``registry.state_generation()`` every ``poll_interval_s`` (and wakes at once on ``wake()``). On a new
generation it reads every endpoint's desired state, resolves aliases, and for each endpoint not already
serving the resolved version: loads it off the event loop, warms it up, checks the contract against what the
endpoint serves (unless forced, which is audited), and swaps. A failure leaves the old version serving and
is reported (worker status row + audit). A failed target is retried only when its desired state or the
version it resolves to changes, or — for transient errors (storage or database down, a load that failed on
an import race, memory or I/O: ``Unavailable``) — after an exponential back-off; meanwhile the endpoint's
state stays ``loading`` with the error, so rollouts keep waiting and ``/readyz`` names it.

The reconciler does not own the endpoints: it reads the runtime's (``endpoints``), asks it to add or remove
one (``add_endpoint``/``remove_endpoint``), and moves an endpoint's state only through ``Endpoint.settle``.
Swaps and endpoints coming and going are reported to the observer it is given (``monitoring.observer``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelrunner.background import PeriodicTask
from modelrunner.errors import IncompatibleContract, ModelrunnerError, SwapFailed, Unavailable
from modelrunner.monitoring.observer import NullObserver, Observer
from modelrunner.pipelines.targets import ResolvedTarget, resolve_target
from modelrunner.runner.endpoint import Deployment, Endpoint, ServingState
from modelrunner.runner.experiment_sync import ExperimentSync, read_experiments
from modelrunner.runner.loading import DriftHookFactory, Loader, build_deployment, load_bundle

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import EndpointState

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
RECONNECT_S = 0.2
"""Pause between polls while the registry database does not answer: it is back within this of the link."""

Resolution = ResolvedTarget | ModelrunnerError
"""What an endpoint's target resolved to, or why it did not."""


@dataclass(frozen=True)
class Attempt:
    """What a failed swap tried; the same attempt is not repeated until something changes."""

    generation: int
    ref: str
    sha256: str
    force: bool


class Reconciler:
    """Desired state (registry) -> loaded deployments (this worker's endpoints)."""

    def __init__(
        self,
        registry: Registry,
        endpoints: Mapping[str, Endpoint],
        add_endpoint: Callable[[str], Endpoint],
        remove_endpoint: Callable[[str], Endpoint],
        *,
        worker_id: str,
        poll_interval_s: float = 0.1,
        loader: Loader = load_bundle,
        on_change: Callable[[Endpoint], None] | None = None,
        observer: Observer | None = None,
        shadow_queue: int = 256,
        drift_hook_for: DriftHookFactory | None = None,
        keeps: Callable[[str], bool] | None = None,
        on_pass: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.registry = registry
        self.endpoints = endpoints  # the runtime's, read only here
        self.add_endpoint = add_endpoint
        self.remove_endpoint = remove_endpoint
        self.observer: Observer = observer if observer is not None else NullObserver()
        self.worker_id = worker_id
        self.poll_interval_s = poll_interval_s
        self.loader = loader
        self.on_change = on_change
        self.drift_hook_for = drift_hook_for  # drift monitoring's hot-path hook of each new deployment
        self.keeps = (
            keeps  # endpoints not in the desired state it leaves alone (on-demand: runner/ondemand.py)
        )
        self.on_pass = on_pass  # told after each pass that ran (on-demand endpoints follow alias moves)
        self.seen_generation: int | None = None
        self.desired: set[str] = set()
        self.targets: dict[str, str] = {}
        self._failed: dict[str, Attempt] = {}
        self._retrying: set[str] = set()  # endpoints whose last failure was transient
        self._retry_at: float | None = None
        self._backoff_s = 1.0
        self.last_contact = time.monotonic()  # when the registry last answered a poll
        self._resync = False  # after an outage: the next pass reads everything, generation moved or not
        self._poller = PeriodicTask(
            self._poll_and_retry, lambda: self.poll_interval_s, name="reconciler", logger=log
        )
        self._lock = asyncio.Lock()
        self.experiments = ExperimentSync(
            registry, worker_id=worker_id, loader=loader, queue_size=shadow_queue, observer=self.observer
        )
        self._experiments: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    async def start(self) -> None:
        """Reconcile once (so a new worker serves before it takes traffic), then keep polling."""
        await self.reconcile_once()
        await self.start_polling()

    async def start_polling(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    def wake(self) -> None:
        """Poll now instead of at the next tick (e.g. right after this process wrote desired state)."""
        self._poller.wake()

    async def _poll_and_retry(self) -> None:
        """One tick of the polling task: a poll, then a pause before the next one when it failed."""
        try:
            await self.poll()
        except Unavailable as exc:  # the registry is unreachable: keep serving, retry soon
            if not self._resync:
                log.warning("registry unreachable (%s); serving the last versions until it is back", exc)
            self._resync = True
            await asyncio.sleep(RECONNECT_S)
        except Exception:  # noqa: BLE001 - the loop must survive a bad poll
            log.exception("reconcile failed; retrying at the next poll")
            await asyncio.sleep(min(self._backoff_s, MAX_BACKOFF_S))

    def stale_seconds(self) -> float:
        """Seconds since the registry last answered a poll."""
        return max(0.0, time.monotonic() - self.last_contact)

    async def poll(self) -> bool:
        """Reconcile when the generation moved or a back-off retry is due; True if a pass ran. After the
        registry was unreachable, the first poll that reaches it reads the whole desired state again (a
        NOTIFY sent meanwhile is lost; the tables are the truth)."""
        if self._resync:
            await self._pass(only_if_changed=False)
            if self._resync:
                self._resync = False
                log.info("registry reachable again; desired state read in full")
            return True
        return await self._pass(only_if_changed=True)

    async def reconcile_once(self) -> None:
        """One pass over every endpoint's desired state."""
        await self._pass(only_if_changed=False)

    async def _pass(self, *, only_if_changed: bool) -> bool:
        async with self._lock:
            retry = self._retry_at is not None and time.monotonic() >= self._retry_at
            unless = self.seen_generation if only_if_changed and not retry else None
            if unless is not None and self._unchanged(unless):
                return False
            snapshot = await asyncio.to_thread(self._read, unless)
            self.last_contact = time.monotonic()
            if snapshot is None:
                return False
            generation, states, resolved, self._experiments = snapshot
            self.desired = {s.name for s in states}
            self.targets = {s.name: s.target for s in states}
            await asyncio.gather(*(self._sync(s, resolved[s.name], generation, retry) for s in states))
            await self._drop_removed()
            await self.experiments.stop_ended(self.endpoints, self._experiments[0])
            self.seen_generation = generation
            self._schedule_retry(retry)
            if self.on_pass is not None:
                await self.on_pass()
            return True

    def _unchanged(self, generation: int) -> bool:
        """The registry's generation is still ``generation``, asked without a thread where it can answer
        at once (``quick_generation``: a SQLite file); False when it cannot say (the full read decides)."""
        quick = getattr(self.registry, "quick_generation", None)
        if quick is None or quick() != generation:
            return False
        self.last_contact = time.monotonic()
        return True

    def _read(
        self, unless: int | None
    ) -> tuple[int, list[EndpointState], dict[str, Resolution], tuple[dict[str, Any], dict[str, Any]]] | None:
        """Generation, desired states, what each target resolves to (or the error) and the running
        experiments with their candidates, in one thread hop; None when the generation is still ``unless``."""
        generation = int(self.registry.state_generation())
        if unless is not None and generation == unless:
            return None
        states = self.registry.endpoints()
        resolved: dict[str, Resolution] = {}
        for state in states:
            try:
                resolved[state.name] = resolve_target(self.registry, state.target)
            except ModelrunnerError as exc:
                resolved[state.name] = exc
        return generation, states, resolved, read_experiments(self.registry)

    def _schedule_retry(self, retried: bool) -> None:
        """Transient trouble (Unavailable) retries later, backing off; anything else waits for a change.
        A pass for another reason (a new generation) leaves a scheduled retry where it is."""
        if self._retrying or self.experiments.retrying:
            if self._retry_at is None or retried:
                self._retry_at = time.monotonic() + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, MAX_BACKOFF_S)
        else:
            self._retry_at = None
            self._backoff_s = 1.0

    async def _drop_removed(self) -> None:
        keeps = self.keeps
        for name in [n for n in self.endpoints if n not in self.desired and not (keeps and keeps(n))]:
            ep = self.remove_endpoint(name)
            self._failed.pop(name, None)
            self._retrying.discard(name)
            log.info("endpoint %s removed from desired state; unloading", name)
            await ep.close()
            self.observer.endpoint_removed(name)  # /metrics must not report a deleted endpoint as loaded
            self._notify(ep)

    async def _sync(self, state: EndpointState, mv: Resolution, generation: int, retry: bool) -> None:
        ep = self.endpoints.get(state.name)
        if ep is None:
            self.observer.endpoint_added(state.name)
            ep = self.add_endpoint(state.name)
        self._configure(ep, state)
        if isinstance(mv, ModelrunnerError):
            await self._refuse(ep, state, generation, None, mv)
            return
        attempt = Attempt(state.generation, mv.ref, mv.sha256, bool(state.force))
        current = ep.current
        if current is not None and current.same_version(mv.name, mv.version, mv.sha256):
            self._failed.pop(ep.name, None)
            self._retrying.discard(ep.name)
            await self._serving(ep, generation)
            return
        if self._failed.get(ep.name) == attempt and not (retry and ep.name in self._retrying):
            if ep.name not in self._retrying:  # still refused; nothing new to try
                self._settle(ep, "failed", ep.error, generation)
            return
        await self._swap(ep, state, mv, generation, attempt)

    def _configure(self, ep: Endpoint, state: EndpointState) -> None:
        """Apply the endpoint's options (batching) from its desired state; the model is not reloaded."""
        try:
            ep.configure(state.config)
        except ModelrunnerError as exc:
            log.warning("endpoint %s: ignoring its config (%s); keeping %s", ep.name, exc, ep.batching)

    async def _swap(
        self, ep: Endpoint, state: EndpointState, mv: ResolvedTarget, generation: int, attempt: Attempt
    ) -> None:
        self.observer.swap_started(ep.name)
        t0 = time.perf_counter()
        new = ep.take_previous(mv.name, mv.version, mv.sha256) or await _take_candidate(ep, mv)
        try:
            if new is None:
                ep.settle("loading", ep.error)
                self._notify(ep)
                new = await asyncio.to_thread(
                    build_deployment,
                    ep.name,
                    state.target,
                    mv,
                    self.registry,
                    self.loader,
                    self.drift_hook_for,
                )
            await self._check_contract(ep, new, state)
        except ModelrunnerError as exc:
            if new is not None and new is not ep.previous:
                await asyncio.to_thread(new.close)
            reason = "incompatible" if isinstance(exc, IncompatibleContract) else exc.code
            self.observer.swap_failed(ep.name, reason)
            self._failed[ep.name] = attempt
            await self._refuse(ep, state, generation, mv, exc)
            return
        new.target = state.target
        old = ep.swap(new)
        self.observer.swap_succeeded(
            ep.name, time.perf_counter() - t0, new.version, old.version if old is not None else None
        )
        self._failed.pop(ep.name, None)
        self._retrying.discard(ep.name)
        log.info("endpoint %s: now serving %s (was %s)", ep.name, new.ref, old.ref if old else "nothing")
        await self._serving(ep, generation)

    async def _serving(self, ep: Endpoint, generation: int) -> None:
        """Production serves the desired version: apply the endpoint's experiment (load or drop its
        candidate), then report ``generation`` — so a status row at a generation says both are applied."""
        running, candidates = self._experiments
        try:
            await self.experiments.apply(ep, running.get(ep.name), candidates.get(ep.name))
        except Exception:  # noqa: BLE001 - an experiment must never stop production from serving
            log.exception("endpoint %s: applying its experiment failed", ep.name)
        self._settle(ep, "serving", None, generation)

    async def _check_contract(self, ep: Endpoint, new: Deployment, state: EndpointState) -> None:
        current = ep.current
        if current is None:
            return
        from modelrunner.contract.compat import check_compatible

        reasons = check_compatible(current.contract, new.contract)
        if not reasons:
            return
        if not state.force:
            raise IncompatibleContract(
                f"{new.ref} would break clients of endpoint {ep.name!r}: {'; '.join(reasons)}", reasons
            )
        await asyncio.to_thread(
            self.registry.record,
            "endpoint.forced_swap",
            f"endpoint:{ep.name}",
            {"ref": current.ref},
            {"ref": new.ref, "reasons": reasons},
            self.worker_id,
        )

    async def _refuse(
        self,
        ep: Endpoint,
        state: EndpointState,
        generation: int,
        mv: ResolvedTarget | None,
        exc: ModelrunnerError,
    ) -> None:
        message = (
            str(exc)
            if mv is not None or isinstance(exc, SwapFailed | IncompatibleContract)
            else (f"cannot serve {state.target}: {exc}")
        )
        if isinstance(exc, Unavailable):  # not refused: retried after the back-off, rollouts keep waiting
            self._retrying.add(ep.name)
            message = f"retrying after a transient error: {message}"
            repeated = ep.error == message
            self._settle(ep, "loading", message, ep.generation)
        else:
            self._retrying.discard(ep.name)
            repeated = ep.state == "failed" and ep.error == message
            self._settle(ep, "failed", message, generation)
        if repeated:
            return
        log.warning(
            "endpoint %s: %s: %s",
            ep.name,
            "cannot load yet" if ep.name in self._retrying else "refused",
            message,
        )
        after = {
            "target": state.target,
            "ref": mv.ref if mv is not None else None,
            "error": message,
            "serving": ep.current.ref if ep.current else None,
        }
        try:
            await asyncio.to_thread(
                self.registry.record,
                "endpoint.swap_failed",
                f"endpoint:{ep.name}",
                None,
                after,
                self.worker_id,
            )
        except ModelrunnerError:
            log.exception("could not audit the refused swap of %s", ep.name)

    def _settle(self, ep: Endpoint, state: ServingState, error: str | None, generation: int) -> None:
        if ep.settle(state, error, generation):
            self._notify(ep)

    def _notify(self, ep: Endpoint) -> None:
        if self.on_change is not None:
            self.on_change(ep)


async def _take_candidate(ep: Endpoint, mv: Any) -> Deployment | None:
    """The experiment's loaded candidate when production is to become that version (a promotion): the
    experiment stops and its deployment is swapped in, with no second load."""
    live = ep.experiment
    if (
        live is None
        or live.candidate.closed
        or not live.candidate.same_version(mv.name, mv.version, mv.sha256)
    ):
        return None
    return await ep.end_experiment(keep_candidate=True)
