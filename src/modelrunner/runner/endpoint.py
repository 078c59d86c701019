"""An endpoint and the deployment it serves: pinning, swap in one assignment, drain, release.

A request pins the endpoint's current :class:`Deployment` once (``acquire``) and runs to the end on it, even
if a swap happens meanwhile. ``Endpoint.swap`` replaces the reference in one assignment on the event loop;
the old deployment is closed when its last request ends (or after the drain timeout) and its memory is given
back to the operating system. ``acquire``/``release``/``swap`` are called on the event loop thread only.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelrunner.bundle.predictor import Columns
from modelrunner.contract import Contract
from modelrunner.contract.validate import valid_for, validate_batch
from modelrunner.errors import Unavailable
from modelrunner.monitoring.observer import NullObserver, RequestObserver
from modelrunner.runner.aio import wait_event
from modelrunner.runner.batching import BatchConfig, Batcher
from modelrunner.runner.cost import CallCost, rows_of
from modelrunner.runner.deployment import Deployment, DriftHook, Prediction, close_and_release
from modelrunner.runner.endpoint_observed import ObservedMixin
from modelrunner.runner.limits import Lane, LimitConfig
from modelrunner.runner.memory import release_memory
from modelrunner.runner.predlog import LogConfig

if TYPE_CHECKING:
    from modelrunner.runner.experiment import LiveExperiment
    from modelrunner.runner.predlog import PredictionLog

__all__ = [
    "SERVING_STATES",
    "Deployment",
    "DriftHook",
    "Endpoint",
    "Prediction",
    "ServingState",
    "Validator",
    "validate_inputs",
]

log = logging.getLogger(__name__)

Validator = Callable[[Contract, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]

ServingState = Literal["empty", "loading", "serving", "failed"]
"""Where an endpoint stands: nothing desired loaded yet (``empty``), a load or a transient retry under way
(``loading``), serving the desired version (``serving``), or the desired version refused for good
(``failed``; an older version may still serve). Moved only by :meth:`Endpoint.settle`."""
SERVING_STATES: tuple[ServingState, ...] = ("empty", "loading", "serving", "failed")


def validate_inputs(contract: Contract, columns: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """Validate a batch against a contract's inputs (raises ValidationError naming the field); the answer
    is a new dict of exactly the contract's inputs, coerced."""
    return validate_batch(contract.inputs, columns)


class Endpoint(ObservedMixin):
    """A stable name clients call; serves one :class:`Deployment` at a time, swapped live. Its batcher
    reports merged calls to ``observer`` (nothing unless given: the runtime passes the worker's)."""

    def __init__(
        self,
        name: str,
        *,
        drain_timeout_s: float = 30.0,
        keep_previous: bool = False,
        validator: Validator = validate_inputs,
        concurrency: int | None = None,
        recorder: PredictionLog | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        self.name = name
        self.observer: RequestObserver = observer if observer is not None else NullObserver()
        self.current: Deployment | None = None
        self.previous: Deployment | None = None
        self.keep_previous = keep_previous
        self.drain_timeout_s = drain_timeout_s
        self._concurrency = concurrency  # threads when the config does not say (Runtime's predict_threads)
        self.limits = LimitConfig.from_config(None, concurrency=concurrency)
        self._lane = Lane(name, self.limits)
        self._validator = validator
        self._closing: set[asyncio.Task[None]] = set()
        self.state: ServingState = "empty"
        self.error: str | None = None
        self.generation = 0
        self.swaps = 0
        self._batcher: Batcher | None = None
        self._set_batching(BatchConfig())  # the default: on for batch-safe flavors
        self.experiment: LiveExperiment | None = None
        self.experiment_error: str | None = None
        self.log_config = LogConfig()
        self.recorder = recorder  # the worker's prediction log
        self._observed = False  # an experiment runs or the endpoint logs: requests go to experiment.serve
        self.release: Callable[[], object] = release_memory  # after a close (on-demand: throttled)

    @property
    def ready(self) -> bool:
        return self.current is not None

    def settle(self, state: ServingState, error: str | None = None, generation: int | None = None) -> bool:
        """Move to ``state`` with ``error`` (None: none) at desired-state ``generation`` (None: unchanged);
        True when any of the three changed (the reconciler reports it then). The one place ``state``,
        ``error`` and ``generation`` are written."""
        if state not in SERVING_STATES:
            raise ValueError(f"unknown endpoint state {state!r}")
        generation = self.generation if generation is None else generation
        changed = (self.state, self.error, self.generation) != (state, error, generation)
        self.state, self.error, self.generation = state, error, generation
        return changed

    @property
    def contract(self) -> Contract:
        return self._pinned_current().contract

    @property
    def sticky_key(self) -> str | None:
        """The running experiment's sticky key (a request field, header or V2 parameter), else None."""
        live = self.experiment
        return live.experiment.sticky_key if live is not None else None

    def pinned_current(self) -> Deployment:
        return self._pinned_current()

    def _pinned_current(self) -> Deployment:
        dep = self.current
        if dep is None:
            raise Unavailable(f"endpoint {self.name!r} has no model loaded yet")
        return dep

    def configure(self, config: Mapping[str, Any] | None) -> None:
        """Apply the endpoint's options (batching: ``max_batch_size``, ``max_latency_ms``; limits:
        ``max_concurrency``, ``max_queue``, ``timeout_s``); no model reload.

        Requests already queued in the previous batcher or lane finish there. InvalidArgument on bad values.
        """
        batching = BatchConfig.from_config(config)
        limits = LimitConfig.from_config(config, concurrency=self._concurrency)
        self.log_config = LogConfig.from_config(config)
        self._update_observed()
        if batching == self.batching and limits == self.limits:
            return
        if limits != self.limits:
            # the old lane is dropped, not shut down: its batcher may still hand it queued requests; its
            # threads end once it is garbage (ThreadPoolExecutor's weakref callback)
            self._lane, self.limits = Lane(self.name, limits), limits
            log.info(
                "endpoint %s: max_concurrency=%d max_queue=%d timeout_s=%g",
                self.name,
                limits.max_concurrency,
                limits.max_queue,
                limits.timeout_s,
            )
        if batching != self.batching:
            log.info("endpoint %s: %s", self.name, batching.describe())
        self._set_batching(batching)

    def _set_batching(self, batching: BatchConfig) -> None:
        """A new batcher for ``batching`` (on the current lane), or none when off."""
        self.batching = batching
        self._batcher = (
            Batcher(
                batching,
                self._run_validated,
                executor=self._lane.executor,
                endpoint=self.name,
                observe=self.observer.batch,
            )
            if batching.enabled
            else None
        )

    def batches(self, dep: Deployment) -> bool:
        """True when requests to ``dep`` are batched (see :meth:`BatchConfig.applies`)."""
        return self._batcher is not None and self.batching.applies(dep.batch_safe)

    async def predict(
        self,
        columns: Mapping[str, np.ndarray],
        *,
        validated: bool = False,
        alone: bool = False,
        request_id: str | None = None,
        sticky: str | None = None,
    ) -> Prediction:
        """Validate and predict on the deployment current at call time; it stays pinned until the end.

        With batching on, the request is validated here (a bad one fails alone), then merged with concurrent
        requests pinned to the same deployment (one merged call runs outside any one request's context).
        ``alone`` skips batching for this request (e.g. a traced one, whose context must follow its call).
        While an experiment runs (or the endpoint logs predictions) the request is routed and logged by
        :func:`modelrunner.runner.experiment.serve` under ``request_id``; ``sticky`` is the value of the
        experiment's sticky key in this request.
        """
        if self._observed:
            from modelrunner.runner.experiment import serve

            return await serve(
                self, columns, validated=validated, alone=alone, request_id=request_id, sticky=sticky
            )
        dep = self._pinned_current()
        if self._batcher is None and (meter := dep.cost.inline(rows_of(columns))):  # as predict_on would
            return self._on_loop(dep, meter, columns, validated, "production", request_id or "")
        return await self.predict_on(dep, columns, validated, alone, "production", request_id or "")

    async def predict_on(
        self,
        dep: Deployment,
        columns: Mapping[str, np.ndarray],
        validated: bool,
        alone: bool,
        variant: str,
        request_id: str,
    ) -> Prediction:
        """Predict on ``dep`` (pinned for the call) and label the answer with ``variant``."""
        batcher = self._batcher
        batched = batcher is not None and not alone and self.batching.applies(dep.batch_safe)
        rows = rows_of(columns)
        if not batched and (meter := dep.cost.inline(rows)):  # a fast model for requests of this size
            return self._on_loop(dep, meter, columns, validated, variant, request_id)
        dep.acquire()
        try:
            if batcher is not None and batched:
                if not validated:
                    if not (self._validator is validate_inputs and valid_for(columns, dep.contract.inputs)):
                        columns = self._validator(dep.contract, columns)
                    validated = True
                out: Mapping[str, np.ndarray]
                if self.batching.mode == "auto" and batcher.lone(dep):  # a lone client: run it now
                    out = await self._lone(batcher, dep, columns)
                else:
                    out = await self._lane.bounded(
                        self.batching.max_batch_size, batcher.enqueue(dep, columns)
                    )
            else:
                ctx = contextvars.copy_context()  # the request's context (e.g. a pipeline trace) follows it
                out = await self._lane.submit(
                    dep, ctx.run, _timed(dep, rows), self._run, dep, columns, validated
                )
        finally:
            dep.release()
        return Prediction(dict(out), dep.model, dep.version, dep.ref, variant, request_id)

    def _on_loop(
        self,
        dep: Deployment,
        meter: CallCost,
        columns: Mapping[str, np.ndarray],
        validated: bool,
        variant: str,
        rid: str,
    ) -> Prediction:
        """A request predicted on the event loop, not batched, timed by ``meter`` (its size's): a fast model
        costs less than a hand-off to a thread (requests over INLINE_MAX_ROWS rows still go to threads)."""
        dep.acquire()
        try:
            out = meter.on_loop(self._run, dep, columns, validated)
        finally:
            dep.release()
        return Prediction(dict(out), dep.model, dep.version, dep.ref, variant, rid)

    async def _lone(
        self, batcher: Batcher, dep: Deployment, columns: Mapping[str, np.ndarray]
    ) -> Mapping[str, np.ndarray]:
        """A validated request outside any batch: on the loop for a fast model, else in a thread while
        ``batcher`` gathers the requests arriving meanwhile."""
        rows = rows_of(columns)
        if meter := dep.cost.inline(rows):
            out: Columns = meter.on_loop(self._run, dep, columns, True)
            return out
        call = self._lane.submit(dep, _timed(dep, rows), self._run, dep, columns, True)
        return await batcher.alone(dep, call)

    def run_on(self, dep: Deployment, columns: Mapping[str, np.ndarray]) -> Columns:
        """Validate and predict on ``dep`` in the calling thread (shadow copies)."""
        return self._run(dep, columns, False)

    def _run_validated(self, dep: Deployment, columns: Mapping[str, np.ndarray]) -> Columns:
        return self._run(dep, columns, True)

    def _run(self, dep: Deployment, columns: Mapping[str, np.ndarray], validated: bool) -> Columns:
        predictor = dep.predictor
        if predictor is None:  # closed after a drain timeout: the request outlived its version
            raise Unavailable(f"endpoint {self.name!r}: version {dep.ref} was unloaded")
        contract = dep.contract
        if self._validator is validate_inputs and predictor.contract is contract:
            # checked once against these inputs (here, by the batcher, or by the decoder: ValidColumns),
            # not again by the predictor
            if not (validated or valid_for(columns, contract.inputs)):
                columns = validate_batch(contract.inputs, columns)
            out = predictor.predict_valid(columns)  # type: ignore[arg-type]  # a dict: decoded or validated
        elif validated:
            out = predictor.predict(columns)
        else:
            columns = self._validator(contract, columns)
            out = predictor.predict(columns)
        if dep.drift_hook is not None:
            dep.drift_hook(columns, out)
        return out

    def swap(self, new: Deployment) -> Deployment | None:
        """Serve ``new`` from now on (one assignment); retire the old one, or keep it with keep_previous."""
        old, self.current = self.current, new
        self.swaps += 1
        if old is None:
            return None
        if self.keep_previous:
            dropped, self.previous = self.previous, old
            if dropped is not None and dropped is not new:
                self.retire(dropped)
        else:
            self.retire(old)
        return old

    def take_previous(self, model: str, version: int, sha256: str = "") -> Deployment | None:
        """The kept previous deployment if it is that version (for an instant rollback)."""
        prev = self.previous
        if prev is not None and not prev.closed and prev.same_version(model, version, sha256):
            return prev
        return None

    def retire(self, dep: Deployment) -> None:
        """Close ``dep`` once its in-flight requests end (or after the drain timeout)."""
        if dep.retired:
            return
        dep.retire()
        task = asyncio.get_running_loop().create_task(self._drain_and_close(dep))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _drain_and_close(self, dep: Deployment) -> None:
        if not await wait_event(dep.drained, self.drain_timeout_s):
            log.warning(
                "endpoint %s: %s still had %d request(s) after %.1fs; closing it",
                self.name,
                dep.ref,
                dep.inflight,
                self.drain_timeout_s,
            )
        seconds = await asyncio.to_thread(close_and_release, dep, self.release)
        log.info("endpoint %s: unloaded %s (close + gc + trim %.1f ms)", self.name, dep.ref, seconds * 1000)

    async def close(self) -> None:
        """Retire everything this endpoint holds and wait until it is closed."""
        await self.end_experiment()
        for dep in (self.current, self.previous):
            if dep is not None:
                self.retire(dep)
        self.current = self.previous = None
        self.settle("empty", self.error)
        await self.wait_closed()
        self._lane.close()

    async def wait_closed(self) -> None:
        """Wait until every retired deployment has drained and been closed."""
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready,
            "state": self.state,
            "error": self.error,
            "generation": self.generation,
            "batching": self.batching.to_config(),
            "limits": self.limits.to_config(),
            "pending": self._lane.pending,
            "current": self.current.describe() if self.current else None,
            "previous": self.previous.describe() if self.previous else None,
            "experiment": self._describe_experiment(),
        }


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _timed(dep: Deployment, rows: int) -> Callable[..., Any]:
    """How a call of ``rows`` rows runs in a thread: timed by its size's meter (untimed over INLINE_MAX_ROWS
    rows, which always run in threads)."""
    meter = dep.cost.meter(rows)
    return meter.timed if meter is not None else _call
