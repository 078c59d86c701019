"""An experiment applied in one worker: the candidate held beside production, and how a request is routed.

shadow
    production answers; a copy of the request goes to the candidate *after* production has answered, through
    a bounded queue run by one task on a thread of its own (the client never waits for it and never sees
    its errors; a full queue drops the copy, counted in ``modelrunner_shadow_dropped``). ``percent`` is the
    share of requests mirrored.
canary / ab
    the candidate answers ``percent`` % of the requests. With a sticky key the choice is a pure function of
    ``blake2b(experiment id, key value)`` (uniform in [0, 100)), so every worker of every runner, and any
    restart, sends the same key to the same variant with no shared session table; without one it is random.
    A candidate that fails (not the client's fault) is logged as an error of the candidate and the request
    is answered by production instead: a broken candidate fails no client request.

Every answer (production, candidate, shadow) is added to the worker's prediction log while the endpoint
logs (:class:`~modelrunner.runner.predlog.LogConfig`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.background import BackgroundTask
from modelrunner.errors import InvalidArgument
from modelrunner.monitoring.observer import ExperimentObserver, NullObserver

if TYPE_CHECKING:
    from modelrunner.registry.types import Experiment
    from modelrunner.runner.endpoint import Deployment, Endpoint, Prediction

log = logging.getLogger(__name__)


def new_request_id() -> str:
    return uuid.uuid4().hex


def sticky_point(experiment_id: str, key: str) -> float:
    """Where ``key`` falls in [0, 100) for this experiment: the same on every worker, runner and restart."""
    digest = hashlib.blake2b(f"{experiment_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 * 100.0


def chooses_candidate(experiment: Experiment, sticky: str | None) -> bool:
    """Whether this request goes to (canary/ab) or is copied to (shadow) the candidate."""
    if experiment.sticky_key and sticky is not None:
        return sticky_point(experiment.id, sticky) < experiment.percent
    return random.random() * 100.0 < experiment.percent


def sticky_value(value: Any) -> str | None:
    """A sticky key's value as text (a column's first row; a header; a V2 parameter)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return None
        value = value.flat[0]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


class LiveExperiment:
    """A running experiment in this worker: the record, the candidate deployment and the mirror queue."""

    def __init__(
        self,
        experiment: Experiment,
        candidate: Deployment,
        *,
        queue_size: int = 256,
        observer: ExperimentObserver | None = None,
    ) -> None:
        self.experiment = experiment
        self.observer: ExperimentObserver = observer if observer is not None else NullObserver()
        self.candidate = candidate
        self.queue_size = queue_size
        self.mirrored = 0
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[Any, str]] | None = None
        self._mirror: BackgroundTask | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._endpoint: Endpoint | None = None

    @property
    def id(self) -> str:
        return self.experiment.id

    @property
    def mode(self) -> str:
        return self.experiment.mode

    def start(self, endpoint: Endpoint) -> None:
        """Start the mirror task (shadow); on the event loop."""
        self._endpoint = endpoint
        if self.mode == "shadow":
            self._queue = asyncio.Queue(self.queue_size)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"shadow-{endpoint.name}")
            self._mirror = BackgroundTask(self._mirror_loop, name=f"shadow-{endpoint.name}")
            self._mirror.start()

    async def stop(self) -> None:
        """Stop mirroring (queued copies are dropped); the caller retires the candidate."""
        if self._mirror is not None:
            await self._mirror.stop()
            self._mirror = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def mirror(self, columns: Mapping[str, Any], request_id: str) -> None:
        """Queue a copy of an answered request for the candidate, or drop it (counted) when full."""
        queue = self._queue
        if queue is None:
            return
        try:
            queue.put_nowait((columns, request_id))
        except asyncio.QueueFull:
            self.dropped += 1
            self.observer.shadow_dropped(self.experiment.endpoint)

    async def _mirror_loop(self) -> None:
        assert self._queue is not None and self._endpoint is not None
        loop = asyncio.get_running_loop()
        while True:
            columns, request_id = await self._queue.get()
            dep, ep = self.candidate, self._endpoint
            dep.acquire()  # a stop waits for the copy being answered (drain), never closes it mid-call
            started = time.perf_counter()
            call = loop.run_in_executor(self._executor, ep.run_on, dep, columns)
            try:
                out, error = await asyncio.shield(call), None
            except asyncio.CancelledError:  # stopped: the call still runs; the candidate stays pinned
                call.add_done_callback(functools.partial(_release, dep))
                raise
            except Exception as exc:  # noqa: BLE001 - a failing candidate is data, not a worker failure
                out, error = None, _error_text(exc)
            dep.release()
            self.mirrored += 1
            ep.log_answer(request_id, "shadow", dep, time.perf_counter() - started, out, error, None)


async def serve(
    ep: Endpoint,
    columns: Mapping[str, np.ndarray],
    *,
    validated: bool,
    alone: bool,
    request_id: str | None,
    sticky: str | None,
) -> Prediction:
    """Predict for one request while an experiment runs or the endpoint logs (see the module docstring)."""
    live = ep.experiment
    rid = request_id or new_request_id()
    pick = live is not None and chooses_candidate(live.experiment, sticky)
    inputs = columns if ep.log_config.sample_inputs() else None
    if live is not None and pick and live.mode != "shadow":
        started = time.perf_counter()
        try:
            pred = await ep.predict_on(live.candidate, columns, validated, alone, "candidate", rid)
        except InvalidArgument:
            raise  # the client's fault: production would refuse it too
        except Exception as exc:  # noqa: BLE001 - logged as the candidate's error; production answers
            ep.log_answer(
                rid,
                "candidate",
                live.candidate,
                time.perf_counter() - started,
                None,
                _error_text(exc),
                inputs,
            )
        else:
            ep.log_answer(
                rid, "candidate", live.candidate, time.perf_counter() - started, pred.columns, None, inputs
            )
            return pred
    dep = ep.pinned_current()
    started = time.perf_counter()
    try:
        pred = await ep.predict_on(dep, columns, validated, alone, "production", rid)
    except InvalidArgument:
        raise
    except Exception as exc:
        ep.log_answer(rid, "production", dep, time.perf_counter() - started, None, _error_text(exc), inputs)
        raise
    ep.log_answer(rid, "production", dep, time.perf_counter() - started, pred.columns, None, inputs)
    if live is not None and pick and live.mode == "shadow":
        live.mirror(columns, rid)
    return pred


def _release(dep: Deployment, _done: Any) -> None:
    dep.release()


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
