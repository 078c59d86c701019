"""Continuous-training runs in the registry: the one-run-per-model lock and the labelled inputs to train on.

``start_training`` is the lock: a conditional insert guarded by a partial unique index (one ``running`` row
per model), so of two concurrent starts one is refused (FailedPrecondition naming the holder). A run holds
a lease (``lease_expires_at``) its process renews; a run whose lease has expired (its process died) is
marked ``failed`` by the next start, which then takes the lock. Every transition writes an audit row:
``training.start``, ``training.succeeded``, ``training.failed``, ``training.refused_gates``,
``training.lease_expired``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from modelrunner.errors import FailedPrecondition, InvalidArgument, NotFound
from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import feedback, predictions, training_runs, utcnow

TRAINING_STATES = ("running", "succeeded", "failed", "refused")
END_ACTIONS = {
    "succeeded": "training.succeeded",
    "failed": "training.failed",
    "refused": "training.refused_gates",
}


@dataclass(frozen=True)
class TrainingRun:
    """One training run of a model (``state`` running | succeeded | failed | refused)."""

    id: str
    model: str
    state: str
    trigger: str
    started_at: datetime
    ended_at: datetime | None
    parent_version: int | None
    new_version: int | None
    error: str | None
    lease_expires_at: datetime
    started_by: str

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started_at", "ended_at", "lease_expires_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass(frozen=True)
class LabelledInput:
    """A logged request whose inputs were logged, joined with the feedback sent for it."""

    request_id: str
    ts: datetime
    version: int | None
    inputs: dict[str, Any]
    target: Any


def _run(r: Any) -> TrainingRun:
    return TrainingRun(
        id=r.id,
        model=r.model,
        state=r.state,
        trigger=r.trigger,
        started_at=r.started_at,
        ended_at=r.ended_at,
        parent_version=r.parent_version,
        new_version=r.new_version,
        error=r.error,
        lease_expires_at=r.lease_expires_at,
        started_by=r.started_by,
    )


def _running(conn: Connection, model: str) -> TrainingRun | None:
    row = conn.execute(
        select(training_runs).where(training_runs.c.model == model, training_runs.c.state == "running")
    ).first()
    return _run(row) if row else None


def _expire_stale(conn: Connection, model: str, now: datetime, actor: str) -> None:
    stale = _running(conn, model)
    if stale is None or stale.lease_expires_at > now:
        return
    done = conn.execute(
        update(training_runs)
        .where(training_runs.c.id == stale.id, training_runs.c.state == "running")
        .values(state="failed", ended_at=now, error="lease expired (its process stopped)")
    )
    if done.rowcount:
        write_audit(
            conn,
            actor=actor,
            action="training.lease_expired",
            subject=model,
            before={
                "run": stale.id,
                "started_by": stale.started_by,
                "lease_expires_at": stale.lease_expires_at.isoformat(),
            },
        )


def _holder_message(model: str, run: TrainingRun | None) -> str:
    if run is None:
        return f"training of {model!r} refused: another run took the lock at the same moment"
    return (
        f"training of {model!r} refused: run {run.id} ({run.trigger}) has held the lock since "
        f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC by {run.started_by}; lease until "
        f"{run.lease_expires_at:%H:%M:%S} UTC"
    )


class TrainingMixin:
    """The training-run methods of :class:`~modelrunner.registry.Registry`."""

    if TYPE_CHECKING:

        def _write(self) -> Any: ...
        def _read(self) -> Any: ...
        def _actor(self, actor: str | None) -> str: ...

    def start_training(
        self,
        model: str,
        *,
        trigger: str,
        lease_s: float = 300.0,
        parent_version: int | None = None,
        actor: str | None = None,
    ) -> TrainingRun:
        """Take the training lock of ``model`` (FailedPrecondition naming the holder if a run holds it; an
        expired lease is taken over) and audit ``training.start``."""
        if lease_s <= 0:
            raise InvalidArgument(f"lease must be > 0 seconds, got {lease_s}", field="lease_s")
        who = self._actor(actor)
        now = utcnow()
        run_id = f"train-{uuid.uuid4().hex[:12]}"
        values = dict(
            id=run_id,
            model=model,
            state="running",
            trigger=trigger[:300],
            started_at=now,
            ended_at=None,
            parent_version=parent_version,
            new_version=None,
            error=None,
            lease_expires_at=now + timedelta(seconds=lease_s),
            started_by=who,
        )
        try:
            with self._write() as conn:
                _expire_stale(conn, model, now, who)
                holder = _running(conn, model)
                if holder is not None:
                    raise FailedPrecondition(_holder_message(model, holder))
                conn.execute(training_runs.insert().values(**values))
                write_audit(
                    conn,
                    actor=who,
                    action="training.start",
                    subject=model,
                    after={"run": run_id, "trigger": trigger, "parent_version": parent_version},
                )
        except IntegrityError as exc:  # a concurrent start won (the partial unique index)
            with self._read() as conn:
                raise FailedPrecondition(_holder_message(model, _running(conn, model))) from exc
        return TrainingRun(**values)  # type: ignore[arg-type]

    def renew_training(self, run_id: str, lease_s: float = 300.0) -> bool:
        """Extend a running run's lease; False when the run is no longer running (it was taken over)."""
        with self._write() as conn:
            done = conn.execute(
                update(training_runs)
                .where(training_runs.c.id == run_id, training_runs.c.state == "running")
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            )
            return bool(done.rowcount)

    def finish_training(
        self,
        run_id: str,
        state: str,
        *,
        new_version: int | None = None,
        parent_version: int | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> TrainingRun:
        """End a running run (succeeded | failed | refused), releasing the lock; audit ``training.<...>``.
        FailedPrecondition when it is not running any more (its lease expired and was taken over)."""
        if state not in END_ACTIONS:
            raise InvalidArgument(
                f"state must be one of {', '.join(END_ACTIONS)}, got {state!r}", field="state"
            )
        who = self._actor(actor)
        with self._write() as conn:
            row = conn.execute(select(training_runs).where(training_runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"training run {run_id!r} not found")
            values: dict[str, Any] = dict(state=state, ended_at=utcnow(), error=error)
            if new_version is not None:
                values["new_version"] = new_version
            if parent_version is not None:
                values["parent_version"] = parent_version
            done = conn.execute(
                update(training_runs)
                .where(training_runs.c.id == run_id, training_runs.c.state == "running")
                .values(**values)
            )
            if not done.rowcount:
                raise FailedPrecondition(
                    f"training run {run_id} already ended ({row.state}: {row.error or ''})"
                )
            after = {
                "run": run_id,
                "trigger": row.trigger,
                "parent_version": values.get("parent_version", row.parent_version),
                "new_version": new_version,
                "error": error,
                **(detail or {}),
            }
            write_audit(conn, actor=who, action=END_ACTIONS[state], subject=row.model, after=after)
            return _run(conn.execute(select(training_runs).where(training_runs.c.id == run_id)).one())

    def training_runs(self, model: str | None = None, *, limit: int = 50) -> list[TrainingRun]:
        """Training runs, newest first (of ``model`` when given)."""
        query = select(training_runs).order_by(training_runs.c.started_at.desc()).limit(max(1, int(limit)))
        if model is not None:
            query = query.where(training_runs.c.model == model)
        with self._read() as conn:
            return [_run(r) for r in conn.execute(query)]

    def labelled_inputs(
        self, endpoint: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[LabelledInput]:
        """Logged requests of ``endpoint`` with their inputs (``log_inputs``) and feedback, oldest first;
        ``limit`` keeps the newest N. Shadow copies are left out (production logged the same inputs)."""
        join = predictions.join(
            feedback,
            (feedback.c.endpoint == predictions.c.endpoint)
            & (feedback.c.request_id == predictions.c.request_id),
        )
        query = (
            select(
                predictions.c.id,
                predictions.c.request_id,
                predictions.c.ts,
                predictions.c.version,
                predictions.c.inputs,
                feedback.c.target,
            )
            .select_from(join)
            .where(
                predictions.c.endpoint == endpoint,
                predictions.c.variant != "shadow",
                predictions.c.error.is_(None),
            )
        )
        if since is not None:
            query = query.where(predictions.c.ts >= since)
        with self._read() as conn:  # inputs may be SQL NULL or JSON null: filtered here
            rows = [r for r in conn.execute(query.order_by(predictions.c.id)) if isinstance(r.inputs, dict)]
        if limit is not None:
            rows = rows[len(rows) - max(0, int(limit)) :] if limit > 0 else []
        return [
            LabelledInput(
                request_id=r.request_id, ts=r.ts, version=r.version, inputs=dict(r.inputs), target=r.target
            )
            for r in rows
        ]
