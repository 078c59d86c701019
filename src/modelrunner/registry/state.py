"""Desired state for runners: endpoints, the global generation counter, and worker status rows.

Every endpoint change and every alias move bumps ``state.generation`` in the same transaction; reconcilers
poll it (and on PostgreSQL may LISTEN on ``modelrunner_state``, notified on each bump).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, text, update

from modelrunner.errors import InvalidArgument, NotFound
from modelrunner.registry.audit import write_audit
from modelrunner.registry.db import upsert
from modelrunner.registry.refs import TARGET_KINDS, check_name, parse_target
from modelrunner.registry.tables import endpoints, state, utcnow, worker_status
from modelrunner.registry.types import WORKER_STATES, EndpointState, WorkerStatus

if TYPE_CHECKING:
    from modelrunner.registry.notify import ChangeListener
    from modelrunner.registry.probe import GenerationProbe
    from modelrunner.registry.types import ModelVersion

NOTIFY_CHANNEL = "modelrunner_state"


def bump_generation(conn: Connection) -> int:
    """Increment the global generation (row-locks it until commit) and return the new value."""
    conn.execute(
        update(state).where(state.c.id == 1).values(generation=state.c.generation + 1, updated_at=utcnow())
    )
    gen = int(conn.execute(select(state.c.generation).where(state.c.id == 1)).scalar_one())
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:ch, :gen)"), {"ch": NOTIFY_CHANNEL, "gen": str(gen)})
    return gen


def read_generation(conn: Connection) -> int:
    return int(conn.execute(select(state.c.generation).where(state.c.id == 1)).scalar_one())


def _endpoint(row: Any) -> EndpointState:
    return EndpointState(
        name=row.name,
        target=row.target,
        previous_target=row.previous_target,
        config=dict(row.config or {}),
        generation=int(row.generation),
        force=bool(row.force),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _as_dict(ep: EndpointState | None) -> dict[str, Any] | None:
    if ep is None:
        return None
    return {
        "target": ep.target,
        "previous_target": ep.previous_target,
        "config": ep.config,
        "force": ep.force,
        "generation": ep.generation,
    }


def get_endpoint(conn: Connection, name: str) -> EndpointState | None:
    row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
    return _endpoint(row) if row else None


def require_endpoint(conn: Connection, name: str) -> EndpointState:
    ep = get_endpoint(conn, name)
    if ep is None:
        known = [r.name for r in conn.execute(select(endpoints.c.name).order_by(endpoints.c.name).limit(11))]
        hint = f" (endpoints: {', '.join(known)})" if 0 < len(known) <= 10 else ""
        raise NotFound(f"unknown endpoint {name!r}{hint}")
    return ep


def list_endpoints(conn: Connection) -> list[EndpointState]:
    return [_endpoint(r) for r in conn.execute(select(endpoints).order_by(endpoints.c.name))]


def put_endpoint(
    conn: Connection,
    name: str,
    target: str,
    *,
    config: dict[str, Any] | None,
    force: bool,
    actor: str,
    create: bool = True,
) -> EndpointState:
    """Create or change an endpoint's desired state and bump the generation (one transaction).

    With ``create=False`` an unknown ``name`` is refused (NotFound naming the known endpoints): a swap must
    not turn a typo into a new endpoint."""
    gen = bump_generation(conn)
    old = get_endpoint(conn, name) if create else require_endpoint(conn, name)
    now = utcnow()
    previous = None if old is None else (old.target if old.target != target else old.previous_target)
    values = {
        "target": target,
        "previous_target": previous,
        "config": dict(config) if config is not None else (old.config if old else {}),
        "generation": gen,
        "force": bool(force),
        "updated_at": now,
        "updated_by": actor,
    }
    if old is None:
        conn.execute(endpoints.insert().values(name=name, **values))
    else:
        conn.execute(update(endpoints).where(endpoints.c.name == name).values(**values))
    new = EndpointState(name=name, **values)  # type: ignore[arg-type]
    write_audit(
        conn,
        actor=actor,
        action="endpoint.set",
        subject=f"endpoint:{name}",
        before=_as_dict(old),
        after=_as_dict(new),
    )
    return new


def remove_endpoint(conn: Connection, name: str, *, actor: str) -> None:
    old = require_endpoint(conn, name)
    bump_generation(conn)
    conn.execute(delete(endpoints).where(endpoints.c.name == name))
    write_audit(
        conn,
        actor=actor,
        action="endpoint.delete",
        subject=f"endpoint:{name}",
        before=_as_dict(old),
        after=None,
    )


def upsert_worker(conn: Connection, status: WorkerStatus) -> None:
    """Insert or replace the row of (runner_id, endpoint) with a fresh heartbeat."""
    if status.state not in WORKER_STATES:
        expected = ", ".join(WORKER_STATES)
        raise InvalidArgument(f"invalid worker state {status.state!r}: expected one of {expected}")
    values = {
        "runner_id": status.runner_id,
        "endpoint": status.endpoint,
        "pid": int(status.pid),
        "host": status.host,
        "state": status.state,
        "target": status.target,
        "model": status.model,
        "version": status.version,
        "sha256": status.sha256,
        "generation": status.generation,
        "error": (status.error or None) and status.error[:4000],
        "load_ms": status.load_ms,
        "warmup_ms": status.warmup_ms,
        "heartbeat": utcnow(),
    }
    stmt = upsert(conn, worker_status).values(**values)
    keys = {"runner_id", "endpoint"}
    stmt = stmt.on_conflict_do_update(
        index_elements=["runner_id", "endpoint"],
        set_={k: stmt.excluded[k] for k in values if k not in keys},
    )
    conn.execute(stmt)


def list_workers(
    conn: Connection, *, endpoint: str | None = None, alive_within_s: float | None = None
) -> list[WorkerStatus]:
    query = select(worker_status).order_by(worker_status.c.endpoint, worker_status.c.runner_id)
    if endpoint is not None:
        query = query.where(worker_status.c.endpoint == endpoint)
    if alive_within_s is not None:
        query = query.where(worker_status.c.heartbeat >= utcnow() - timedelta(seconds=alive_within_s))
    return [
        WorkerStatus(
            runner_id=r.runner_id,
            endpoint=r.endpoint,
            state=r.state,
            target=r.target,
            model=r.model,
            version=r.version,
            sha256=r.sha256,
            generation=r.generation,
            error=r.error,
            load_ms=r.load_ms,
            warmup_ms=r.warmup_ms,
            pid=r.pid,
            host=r.host,
            heartbeat=r.heartbeat,
        )
        for r in conn.execute(query)
    ]


def delete_workers(conn: Connection, runner_id: str, endpoint: str | None = None) -> int:
    stmt = delete(worker_status).where(worker_status.c.runner_id == runner_id)
    if endpoint is not None:
        stmt = stmt.where(worker_status.c.endpoint == endpoint)
    return int(conn.execute(stmt).rowcount or 0)


class DesiredStateMixin:
    """The desired-state methods of :class:`~modelrunner.registry.Registry`: endpoints, the generation,
    waiting for a change, worker status rows."""

    if TYPE_CHECKING:
        _listener: ChangeListener | None
        _probe: GenerationProbe

        def _write(self) -> Any: ...
        def _read(self) -> Any: ...
        def _actor(self, actor: str | None) -> str: ...
        def resolve(self, ref: str) -> ModelVersion: ...

    def set_endpoint(
        self,
        name: str,
        target: str,
        *,
        config: Mapping[str, Any] | None = None,
        force: bool = False,
        actor: str | None = None,
        create: bool = True,
    ) -> EndpointState:
        """Point endpoint ``name`` at ``target`` (a model ref, or ``pipeline:<ref>``), resolved first: a
        target that does not resolve now is never stored (NotFound / InvalidArgument naming it).

        ``create=False`` changes an existing endpoint only (NotFound naming the known ones otherwise)."""
        check_name(name)
        if not isinstance(target, str) or not target.strip():
            raise InvalidArgument(f"endpoint {name!r}: target must be a model ref like 'digits@production'")
        target = target.strip()
        self.check_target(target)
        with self._write() as conn:
            return put_endpoint(
                conn,
                name,
                target,
                config=dict(config) if config is not None else None,
                force=force,
                actor=self._actor(actor),
                create=create,
            )

    def check_target(self, target: str) -> ModelVersion:
        """The version an endpoint target resolves to now; its ``kind:`` prefix must fit that version's flavor
        (``pipeline:`` only names pipelines). Pipelines' steps are checked by ``pipelines.targets``."""
        kind, ref = parse_target(target)
        mv = self.resolve(ref)
        if kind is not None and mv.flavor != TARGET_KINDS[kind]:
            raise InvalidArgument(f"invalid target {target!r}: {mv.ref} is a {mv.flavor} model, not a {kind}")
        return mv

    def rollback_endpoint(self, name: str, actor: str | None = None) -> EndpointState:
        """Swap an endpoint back to its previous target."""
        current = self.endpoint(name)
        if not current.previous_target:
            raise InvalidArgument(f"endpoint {name!r} has no previous target to roll back to")
        return self.set_endpoint(
            name, current.previous_target, config=current.config, force=True, actor=actor
        )

    def endpoint(self, name: str) -> EndpointState:
        with self._read() as conn:
            return require_endpoint(conn, name)

    def endpoints(self) -> list[EndpointState]:
        with self._read() as conn:
            return list_endpoints(conn)

    def delete_endpoint(self, name: str, actor: str | None = None) -> None:
        with self._write() as conn:
            remove_endpoint(conn, name, actor=self._actor(actor))
            from modelrunner.registry.experiments import stop_on_delete  # it imports this module

            stop_on_delete(conn, name, actor=self._actor(actor))

    def state_generation(self) -> int:
        """The global desired-state generation (bumped by endpoint changes and alias moves)."""
        with self._read() as conn:
            return read_generation(conn)

    def quick_generation(self) -> int | None:
        """The generation when it can be read without waiting (a SQLite file), else None: a poll on the event
        loop asks this first and reads :meth:`state_generation` in a thread only on None or a change."""
        return self._probe.read()

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until the generation differs from ``since`` or ``timeout`` passes; return the generation."""
        if self._listener is None:
            from modelrunner.registry.notify import ChangeListener  # it imports this module

            self._listener = ChangeListener(self)  # type: ignore[arg-type]  # self is the Registry
        return self._listener.wait(since, timeout)

    def report_worker(self, status: WorkerStatus) -> None:
        with self._write() as conn:
            upsert_worker(conn, status)

    def workers(self, endpoint: str | None = None, alive_within_s: float | None = None) -> list[WorkerStatus]:
        with self._read() as conn:
            return list_workers(conn, endpoint=endpoint, alive_within_s=alive_within_s)

    def remove_worker(self, runner_id: str, endpoint: str | None = None) -> int:
        """Drop a worker's status rows (on clean shutdown)."""
        with self._write() as conn:
            return delete_workers(conn, runner_id, endpoint)
