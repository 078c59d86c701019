"""Registry storage of drift monitoring: window sketches, per-model thresholds, baselines, alert states.

Mixed into :class:`~modelrunner.registry.registry.Registry`; the monitoring layer
(``modelrunner.monitoring``) gives the rows their meaning. Sketch rows are keyed (endpoint, version, worker,
window start): each worker adds its counts to its own row, readers merge the rows of all workers and runners.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import drift_alerts, drift_baselines, drift_settings, drift_sketches, utcnow

Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class SketchRow:
    endpoint: str
    model: str
    version: int
    worker: str
    window_start: int
    slots: int
    rows: int
    sketch: dict[str, Any]


@dataclass(frozen=True)
class AlertState:
    endpoint: str
    kind: str  # "drift", "quality", "accuracy"
    state: str  # "firing" or "resolved"
    version: int | None
    detail: dict[str, Any] | None
    since: datetime


class DriftMethods:
    """The drift part of the registry facade."""

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Registry
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _actor(self, actor: str | None) -> str:
        raise NotImplementedError

    def add_sketch(self, row: SketchRow, merge: Merge) -> None:
        """Add a worker's counts to its row of that window (``merge(old, new)``), or create the row."""
        key = (
            drift_sketches.c.endpoint == row.endpoint,
            drift_sketches.c.version == row.version,
            drift_sketches.c.worker == row.worker,
            drift_sketches.c.window_start == row.window_start,
        )
        with self._write() as conn:
            old = conn.execute(select(drift_sketches.c.sketch, drift_sketches.c.slots).where(*key)).first()
            if old is None:
                conn.execute(
                    drift_sketches.insert().values(
                        endpoint=row.endpoint,
                        version=row.version,
                        worker=row.worker,
                        window_start=row.window_start,
                        model=row.model,
                        slots=row.slots,
                        rows=row.rows,
                        sketch=row.sketch,
                        updated_at=utcnow(),
                    )
                )
                return
            merged = merge(dict(old.sketch), row.sketch) if old.slots == row.slots else row.sketch
            conn.execute(
                update(drift_sketches)
                .where(*key)
                .values(
                    sketch=merged,
                    slots=row.slots,
                    rows=int(merged.get("rows", row.rows)),
                    updated_at=utcnow(),
                )
            )

    def sketches(
        self, endpoint: str, *, since: int | None = None, until: int | None = None, version: int | None = None
    ) -> list[SketchRow]:
        """Sketch rows of ``endpoint`` with ``since <= window_start < until``, oldest window first."""
        query = select(drift_sketches).where(drift_sketches.c.endpoint == endpoint)
        if since is not None:
            query = query.where(drift_sketches.c.window_start >= since)
        if until is not None:
            query = query.where(drift_sketches.c.window_start < until)
        if version is not None:
            query = query.where(drift_sketches.c.version == version)
        with self._read() as conn:
            return list(_sketch_rows(conn.execute(query.order_by(drift_sketches.c.window_start))))

    def prune_sketches(self, before: int) -> int:
        """Delete sketch rows of windows starting before ``before`` (epoch seconds)."""
        with self._write() as conn:
            return conn.execute(delete(drift_sketches).where(drift_sketches.c.window_start < before)).rowcount

    def set_drift_thresholds(self, model: str, thresholds: dict[str, Any], actor: str | None = None) -> None:
        """Replace the drift alert settings of ``model`` (audited as ``drift.thresholds``)."""
        who = self._actor(actor)
        with self._write() as conn:
            old = conn.execute(
                select(drift_settings.c.thresholds).where(drift_settings.c.model == model)
            ).scalar()
            if old is None:
                conn.execute(
                    drift_settings.insert().values(
                        model=model, thresholds=thresholds, updated_at=utcnow(), updated_by=who
                    )
                )
            else:
                conn.execute(
                    update(drift_settings)
                    .where(drift_settings.c.model == model)
                    .values(thresholds=thresholds, updated_at=utcnow(), updated_by=who)
                )
            write_audit(
                conn, actor=who, action="drift.thresholds", subject=model, before=old, after=thresholds
            )

    def drift_thresholds(self, model: str) -> dict[str, Any]:
        with self._read() as conn:
            value = conn.execute(
                select(drift_settings.c.thresholds).where(drift_settings.c.model == model)
            ).scalar()
        return dict(value or {})

    def put_baseline(
        self, model: str, version: int, profile: dict[str, Any], actor: str | None = None
    ) -> None:
        """Store (replace) the reference profile of ``model@version`` built from live traffic."""
        who = self._actor(actor)
        with self._write() as conn:
            conn.execute(
                delete(drift_baselines).where(
                    drift_baselines.c.model == model, drift_baselines.c.version == version
                )
            )
            conn.execute(
                drift_baselines.insert().values(
                    model=model, version=version, profile=profile, created_at=utcnow(), created_by=who
                )
            )
            write_audit(
                conn,
                actor=who,
                action="drift.baseline",
                subject=f"{model}@{version}",
                after={"rows": profile.get("rows"), "source": profile.get("source")},
            )

    def baseline(self, model: str, version: int) -> dict[str, Any] | None:
        with self._read() as conn:
            value = conn.execute(
                select(drift_baselines.c.profile).where(
                    drift_baselines.c.model == model, drift_baselines.c.version == version
                )
            ).scalar()
        return dict(value) if value is not None else None

    def set_alert(
        self,
        endpoint: str,
        kind: str,
        state: str,
        *,
        version: int | None,
        detail: dict[str, Any] | None,
        actor: str | None = None,
    ) -> bool:
        """Move an alert to ``state`` ("firing"/"resolved"); True when it changed (then one audit row,
        ``drift.alert.firing`` or ``drift.alert.resolved``, is written in the same transaction: of many
        workers seeing the same change, exactly one wins)."""
        key = (drift_alerts.c.endpoint == endpoint, drift_alerts.c.kind == kind)
        with self._write() as conn:
            old = conn.execute(select(drift_alerts.c.state).where(*key)).scalar()
            if (old or "resolved") == state:
                return False
            now = utcnow()
            if old is None:
                conn.execute(
                    drift_alerts.insert().values(
                        endpoint=endpoint,
                        kind=kind,
                        state=state,
                        version=version,
                        detail=detail,
                        since=now,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(drift_alerts)
                    .where(*key)
                    .values(state=state, version=version, detail=detail, since=now, updated_at=now)
                )
            write_audit(
                conn,
                actor=self._actor(actor),
                action=f"drift.alert.{state}",
                subject=endpoint,
                before={"kind": kind, "state": old or "resolved"},
                after={"kind": kind, "state": state, "version": version, **(detail or {})},
            )
            return True

    def alerts(self, endpoint: str | None = None) -> list[AlertState]:
        query = select(drift_alerts).order_by(drift_alerts.c.endpoint, drift_alerts.c.kind)
        if endpoint is not None:
            query = query.where(drift_alerts.c.endpoint == endpoint)
        with self._read() as conn:
            return [
                AlertState(r.endpoint, r.kind, r.state, r.version, r.detail, r.since)
                for r in conn.execute(query)
            ]


def _sketch_rows(result: Any) -> Iterator[SketchRow]:
    for r in result:
        yield SketchRow(
            r.endpoint,
            r.model,
            int(r.version),
            r.worker,
            int(r.window_start),
            int(r.slots),
            int(r.rows),
            dict(r.sketch),
        )
