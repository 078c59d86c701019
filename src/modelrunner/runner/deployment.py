"""A loaded model version behind an endpoint (:class:`Deployment`), and a prediction (:class:`Prediction`).

A request pins a deployment (``acquire``) and releases it when it ends; a retired deployment's ``drained``
event fires when its last request has ended, and ``close`` frees the predictor once, off the event loop.
Re-exported by :mod:`modelrunner.runner.endpoint`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract
from modelrunner.runner.cost import CostMeters
from modelrunner.runner.memory import release_memory

log = logging.getLogger(__name__)


DriftHook = Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], None]
"""Sees every predicted batch, ``(validated inputs, outputs)``, in the thread that predicted it; must be cheap
and must not raise (``monitoring.sketch.Recorder.observe`` queues the batch)."""


@dataclass(eq=False)
class Deployment:
    """One loaded model version behind an endpoint, with its in-flight request count."""

    endpoint: str
    model: str
    version: int
    ref: str
    target: str
    contract: Contract
    predictor: Predictor | None
    sha256: str = ""
    load_ms: float = 0.0
    warmup_ms: float = 0.0
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    retired: bool = False
    closed: bool = False
    cost: CostMeters = field(default_factory=CostMeters, repr=False)
    batch_safe: bool = False
    """Rows of one call do not affect each other's answers: requests may be merged (``auto`` batching)."""
    drift_hook: DriftHook | None = field(default=None, repr=False)  # drift monitoring (monitoring.monitor)
    _drained: asyncio.Event | None = field(default=None, repr=False)

    @property
    def drained(self) -> asyncio.Event:
        """Set once the deployment is retired and its last in-flight request has ended."""
        if self._drained is None:
            self._drained = asyncio.Event()
            if self.retired and self.inflight == 0:
                self._drained.set()
        return self._drained

    def acquire(self) -> None:
        self.inflight += 1

    def release(self) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self.retired:
            self.drained.set()

    def retire(self) -> None:
        """No new request will pin this deployment; ``drained`` fires when the last one ends."""
        self.retired = True
        if self.inflight == 0:
            self.drained.set()

    def same_version(self, model: str, version: int, sha256: str = "") -> bool:
        if sha256 and self.sha256:
            return self.sha256 == sha256 and self.model == model and self.version == version
        return self.model == model and self.version == version

    def close(self) -> None:
        """Close the predictor and drop the reference to it (called once, off the event loop)."""
        predictor, self.predictor = self.predictor, None
        if predictor is None or self.closed:
            return
        self.closed = True
        try:
            predictor.close()
        except Exception:  # noqa: BLE001 - a model's close() must not take the runner down
            log.exception("closing %s failed", self.ref)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "target": self.target,
            "sha256": self.sha256,
            "load_ms": round(self.load_ms, 1),
            "warmup_ms": round(self.warmup_ms, 1),
            "loaded_at": self.loaded_at,
            "inflight": self.inflight,
        }


@dataclass(frozen=True, init=False)
class Prediction:
    """A prediction, the exact version that produced it, and (experiments) which variant that was.

    ``variant``: ``production`` or ``candidate``; ``request_id``: the id the request was logged under (as
    given to :meth:`Endpoint.predict`)."""

    columns: Columns
    model: str
    version: int
    ref: str
    variant: str = "production"
    request_id: str = ""

    def __init__(
        self,
        columns: Columns,
        model: str,
        version: int,
        ref: str,
        variant: str = "production",
        request_id: str = "",
    ) -> None:
        # one per request: the frozen dataclass's own __init__ (object.__setattr__ per field) cost ~1 us
        d = self.__dict__
        d["columns"], d["model"], d["version"] = columns, model, version
        d["ref"], d["variant"], d["request_id"] = ref, variant, request_id


def close_and_release(dep: Deployment, release: Callable[[], object] = release_memory) -> float:
    """Close ``dep`` and give its memory back to the operating system (``release``: an on-demand endpoint
    passes a throttled one); returns the seconds it took."""
    started = time.perf_counter()
    dep.close()
    release()
    return time.perf_counter() - started
