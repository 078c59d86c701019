"""The worker side of drift monitoring: hot-path recorders, the flush to the registry, the check loop.

One :class:`Monitor` per worker process (``runner.runtime.Runtime`` owns it):

* ``drift_hook_for(endpoint, mv)`` (called in the load thread of a swap) returns the new deployment's hook,
  :meth:`Recorder.observe`, which only queues the batch;
* every ``drift_flush_s`` the queued rows are counted (vectorised) and each recorder's sketch is added to
  its row of the current time slice in the registry (``drift_sketches``: endpoint, version, worker, window);
* every ``drift_check_s`` the drift report of every endpoint served here is computed from the merged
  sketches of all workers: Prometheus gauges are set, and alert transitions (``firing``/``resolved``) are
  written to the registry -- the one worker whose transaction flips a state writes the audit row and posts
  the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from modelrunner.background import PeriodicTask
from modelrunner.monitoring import metrics
from modelrunner.monitoring.drift import DriftReport
from modelrunner.monitoring.sketch import Recorder
from modelrunner.monitoring.status import Served, drift_status, merge_json, reference
from modelrunner.settings import Settings

log = logging.getLogger(__name__)


class Monitor:
    """Recorders of the versions this worker serves, flushed and checked in the background."""

    def __init__(
        self,
        registry: Any,
        worker_id: str,
        settings: Settings | None = None,
        endpoints: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.settings = settings or Settings()
        self.endpoints = endpoints if endpoints is not None else {}
        self.recorders: dict[tuple[str, int], Recorder] = {}
        self._served: dict[tuple[str, int], Served] = {}
        self._lock = threading.Lock()
        self._loop = PeriodicTask(
            lambda: asyncio.to_thread(self.tick),
            lambda: self.settings.drift_flush_s,
            name="drift-monitor",
            failure="drift monitoring tick failed",
            logger=log,
        )
        self._last_check = 0.0
        self._last_prune = 0.0

    def drift_hook_for(self, endpoint: str, mv: Any) -> Any:
        """The hot-path hook of ``endpoint`` serving ``mv`` (None for a pipeline: its steps are models with
        endpoints of their own)."""
        if getattr(mv, "flavor", "") == "pipeline" or not hasattr(mv, "manifest"):
            return None
        profile = reference(self.registry, mv)
        key = (endpoint, mv.version)
        with self._lock:
            rec = self.recorders.get(key)
            if rec is None or rec.binner.size != profile.reference.counts.size:
                rec = self.recorders[key] = Recorder(endpoint, mv.name, mv.version, profile.binner())
            self._served.pop(key, None)
        return rec.observe

    # -- flush ---------------------------------------------------------------------------------------------

    def flush(self, now: float | None = None) -> int:
        """Count queued rows and add every non-empty sketch to the registry; returns the rows flushed. A
        failed write keeps the counts for the next flush."""
        from modelrunner.registry.drift import SketchRow

        t = time.time() if now is None else now
        bucket = self.settings.drift_bucket_s
        window_start = int(t // bucket * bucket)
        flushed = 0
        with self._lock:
            recorders = list(self.recorders.items())
        for (endpoint, version), rec in recorders:
            try:
                sketch = rec.take()
            except Exception:  # noqa: BLE001 - rows the binner cannot count are dropped, not retried forever
                log.warning("drift sketch of %s@%d: counting failed", endpoint, version, exc_info=True)
                continue
            if not sketch.rows:
                self._forget_if_gone(endpoint, version, rec)
                continue
            row = SketchRow(
                endpoint,
                rec.model,
                version,
                self.worker_id,
                window_start,
                len(sketch.counts),
                sketch.rows,
                sketch.to_json(),
            )
            try:
                self.registry.add_sketch(row, merge_json)
            except Exception:  # noqa: BLE001 - the database hiccups: keep the counts, try at the next flush
                rec.give_back(sketch)
                log.warning("could not flush the drift sketch of %s@%d", endpoint, version, exc_info=True)
                continue
            flushed += sketch.rows
        return flushed

    def _forget_if_gone(self, endpoint: str, version: int, rec: Recorder) -> None:
        ep = self.endpoints.get(endpoint)
        live = [d for d in (getattr(ep, "current", None), getattr(ep, "previous", None)) if d is not None]
        if not any(d.version == version and d.drift_hook == rec.observe for d in live):
            with self._lock:
                if self.recorders.get((endpoint, version)) is rec:
                    del self.recorders[(endpoint, version)]
                    self._served.pop((endpoint, version), None)

    # -- check ---------------------------------------------------------------------------------------------

    def check(self, now: float | None = None) -> list[DriftReport]:
        """Score every endpoint this worker serves; set gauges; move alerts (audit + webhook on change)."""
        reports = []
        for name, ep in list(self.endpoints.items()):
            dep = getattr(ep, "current", None)
            if dep is None or dep.drift_hook is None:
                continue
            try:
                target = self._served_for(name, dep)
                report = drift_status(
                    self.registry, name, window_s=self.settings.drift_window_s, now=now, target=target
                )
                publish(report)
                update_alerts(
                    self.registry, report, self.settings.drift_webhook_url, target.thresholds.accuracy_drop
                )
            except Exception:  # noqa: BLE001 - a check must never take the worker down
                log.warning("drift check of %s failed", name, exc_info=True)
                continue
            reports.append(report)
        return reports

    def _served_for(self, endpoint: str, dep: Any) -> Served:
        from modelrunner.monitoring.drift import Thresholds

        key = (endpoint, dep.version)
        cached = self._served.get(key)
        if cached is None:
            mv = self.registry.resolve(f"{dep.model}@{dep.version}")
            cached = Served(endpoint, mv, reference(self.registry, mv), Thresholds())
            self._served[key] = cached
        thresholds = Thresholds.from_json(self.registry.drift_thresholds(dep.model))  # `monitor set` applies
        return Served(endpoint, cached.mv, cached.profile, thresholds)

    # -- background loop -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop, then flush what is queued (a clean shutdown loses no counted rows)."""
        await self._loop.stop()
        await asyncio.to_thread(self.flush)

    def tick(self, now: float | None = None) -> None:
        """One flush, and a check / prune when they are due."""
        t = time.time() if now is None else now
        self.flush(t)
        if t - self._last_check >= self.settings.drift_check_s:
            self._last_check = t
            self.check(t)
        if t - self._last_prune >= 3600:
            self._last_prune = t
            self.registry.prune_sketches(int(t - self.settings.drift_retention_s))


def publish(report: DriftReport) -> None:
    """Prometheus gauges of a report: every feature's score, the estimated accuracy."""
    if report.status == "no reference":
        return
    for f in report.features:
        metrics.set_feature_drift(report.endpoint, report.version, f.feature, f.score)
    if report.estimated_accuracy is not None:
        metrics.set_estimated_accuracy(report.endpoint, report.version, report.estimated_accuracy)


def alert_conditions(report: DriftReport, accuracy_drop: float = 0.05) -> dict[str, bool | None]:
    """Whether each alert kind should fire; None: not enough data to say (the state is left as it is)."""
    if report.status in ("too few rows", "no reference"):
        return {"drift": None, "quality": None, "accuracy": None}
    accuracy: bool | None = None
    if report.estimated_accuracy is not None and report.reference_accuracy is not None:
        accuracy = report.estimated_accuracy < report.reference_accuracy - accuracy_drop
    return {"drift": report.status == "drift", "quality": bool(report.quality), "accuracy": accuracy}


def update_alerts(
    registry: Any, report: DriftReport, webhook_url: str | None = None, accuracy_drop: float = 0.05
) -> list[dict[str, Any]]:
    """Move the endpoint's alerts to what ``report`` says; returns the events of the transitions this call
    made (each audited, posted to ``webhook_url`` when set, and reflected in the alert gauge)."""
    events = []
    for kind, fire in alert_conditions(report, accuracy_drop).items():
        if fire is None:
            continue
        state = "firing" if fire else "resolved"
        detail = _detail(report, kind)
        if registry.set_alert(report.endpoint, kind, state, version=report.version, detail=detail):
            event = {
                "endpoint": report.endpoint,
                "model": report.model,
                "version": report.version,
                "kind": kind,
                "state": state,
                "at": time.time(),
                **detail,
            }
            events.append(event)
            log.warning("monitoring alert %s %s on %s@%d", kind, state, report.model, report.version)
            if webhook_url:
                from modelrunner.monitoring import webhook  # httpx: imported when an alert is posted

                webhook.post_in_background(webhook_url, event)
        metrics.set_drift_alert(report.endpoint, kind, fire)
    return events


def _detail(report: DriftReport, kind: str) -> dict[str, Any]:
    if kind == "drift":
        top = sorted(
            (f for f in report.features if f.status == "drift"), key=lambda f: -f.score / f.threshold
        )
        return {
            "rows": report.rows,
            "drifted": report.drifted,
            "needed": report.needed,
            "features": [
                {
                    "feature": f.feature,
                    "test": f.test,
                    "score": round(f.score, 4),
                    "threshold": round(f.threshold, 4),
                }
                for f in top[:10]
            ],
        }
    if kind == "quality":
        return {"rows": report.rows, "features": report.quality[:10]}
    return {
        "rows": report.rows,
        "estimated_accuracy": report.estimated_accuracy,
        "reference_accuracy": report.reference_accuracy,
    }
