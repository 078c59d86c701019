"""Apply the registry's running experiments to this worker's endpoints (called by the reconciler's pass).

A new experiment's candidate is loaded like a swap's version (``loading.build_deployment``: fetch, load,
warm up and check the outputs, off the event loop), checked against production's contract, and held beside
production in the :class:`~modelrunner.runner.endpoint.Endpoint`. An experiment that ended (or changed) is
stopped: its candidate drains and is unloaded — unless the endpoint now serves that very version (a
promotion), in which case the reconciler's swap takes the loaded candidate as production without a second
load. A refused candidate is audited once (``experiment.load_failed``) and not retried until the experiment
changes; production keeps serving either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from modelrunner.contract.compat import check_compatible
from modelrunner.errors import IncompatibleContract, ModelrunnerError, Unavailable
from modelrunner.monitoring.observer import ExperimentObserver
from modelrunner.registry.refs import parse_target
from modelrunner.runner.endpoint import Endpoint
from modelrunner.runner.experiment import LiveExperiment
from modelrunner.runner.loading import Loader, build_deployment

log = logging.getLogger(__name__)


def read_experiments(registry: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(running experiments by endpoint, what each candidate resolves to or the error); in a thread."""
    from modelrunner.pipelines.targets import resolve_target

    running_of = getattr(registry, "running_experiments", None)
    running: dict[str, Any] = dict(running_of()) if running_of is not None else {}
    resolved: dict[str, Any] = {}
    for name, exp in running.items():
        try:
            resolved[name] = resolve_target(registry, pinned_target(exp))
        except ModelrunnerError as exc:
            resolved[name] = exc
    return running, resolved


def pinned_target(experiment: Any) -> str:
    """The candidate as a target pinned to the version resolved at start (``pipeline:p@4``, ``m@4``)."""
    kind, _ = parse_target(experiment.candidate)
    return f"{kind}:{experiment.candidate_ref}" if kind else experiment.candidate_ref


class ExperimentSync:
    """Running experiments (registry) -> candidates loaded beside production (this worker)."""

    def __init__(
        self,
        registry: Any,
        *,
        worker_id: str,
        loader: Loader,
        queue_size: int = 256,
        observer: ExperimentObserver | None = None,
    ) -> None:
        self.registry = registry
        self.observer = observer  # the shadow mirrors' drops go there
        self.worker_id = worker_id
        self.loader = loader
        self.queue_size = queue_size
        self._refused: dict[str, str] = {}  # endpoint -> id of the experiment whose candidate was refused
        self.retrying: set[str] = set()  # endpoints whose candidate failed to load for a transient reason

    async def stop_ended(self, endpoints: Mapping[str, Endpoint], running: Mapping[str, Any]) -> None:
        """Stop experiments that ended also on endpoints whose production did not settle this pass."""
        for name, ep in list(endpoints.items()):
            live, want = ep.experiment, running.get(name)
            if live is not None and (want is None or want.id != live.id):
                log.info("endpoint %s: experiment %s ended; unloading %s", name, live.id, live.candidate.ref)
                await ep.end_experiment()

    async def apply(self, ep: Endpoint, want: Any, mv: Any) -> None:
        """Make ``ep``'s experiment ``want`` (None: none), whose candidate resolved to ``mv`` (or an error).
        Called by the reconciler once production serves the desired version."""
        live = ep.experiment
        self.retrying.discard(ep.name)
        if want is None:
            self._refused.pop(ep.name, None)
            ep.experiment_error = None
            if live is not None:
                log.info(
                    "endpoint %s: experiment %s ended; unloading %s", ep.name, live.id, live.candidate.ref
                )
                await ep.end_experiment()
            return
        if live is not None and live.id == want.id:
            live.experiment = want
            return
        if self._refused.get(ep.name) == want.id:
            return
        if live is not None:
            await ep.end_experiment()
        current = ep.current
        if current is None:
            return  # production is not loaded (yet): nothing to compare with; the next pass tries again
        if not isinstance(mv, ModelrunnerError) and current.same_version(mv.name, mv.version, mv.sha256):
            ep.experiment_error = f"experiment {want.id}: the candidate {mv.ref} is what production serves"
            return
        await self._start(ep, want, mv)

    async def _start(self, ep: Endpoint, want: Any, mv: Any) -> None:
        dep = None
        try:
            if isinstance(mv, ModelrunnerError):
                raise mv
            dep = await asyncio.to_thread(
                build_deployment, ep.name, pinned_target(want), mv, self.registry, self.loader
            )
            current = ep.current
            reasons = check_compatible(current.contract, dep.contract) if current is not None else []
            if reasons:
                raise IncompatibleContract(
                    f"candidate {dep.ref} would break clients of endpoint {ep.name!r}: {'; '.join(reasons)}",
                    reasons,
                )
        except ModelrunnerError as exc:
            if dep is not None:
                await asyncio.to_thread(dep.close)
            await self._refuse(ep, want, exc)
            return
        if ep.current is None or ep.experiment is not None:  # closed or changed meanwhile
            await asyncio.to_thread(dep.close)
            return
        ep.experiment_error = None
        ep.set_experiment(LiveExperiment(want, dep, queue_size=self.queue_size, observer=self.observer))
        log.info(
            "endpoint %s: experiment %s (%s %g%%) with %s beside %s",
            ep.name,
            want.id,
            want.mode,
            want.percent,
            dep.ref,
            ep.current.ref,
        )

    async def _refuse(self, ep: Endpoint, want: Any, exc: ModelrunnerError) -> None:
        message = f"experiment {want.id}: cannot load candidate {want.candidate_ref}: {exc}"
        ep.experiment_error = message
        if isinstance(exc, Unavailable):  # transient: the reconciler tries again after its back-off
            self.retrying.add(ep.name)
            log.warning("endpoint %s: %s (will retry)", ep.name, message)
            return
        self._refused[ep.name] = want.id
        log.warning("endpoint %s: %s", ep.name, message)
        try:
            await asyncio.to_thread(
                self.registry.record,
                "experiment.load_failed",
                f"endpoint:{ep.name}",
                None,
                {"id": want.id, "candidate": want.candidate_ref, "error": message},
                self.worker_id,
            )
        except ModelrunnerError:
            log.exception("could not audit the refused candidate of %s", ep.name)
