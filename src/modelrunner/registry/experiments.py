"""Online experiments in the desired state: at most one running experiment per endpoint.

Starting or ending one bumps the global generation in the same transaction (every worker of every runner
sharing the registry applies it, like an endpoint change) and writes an audit row (``experiment.start``,
``experiment.<state>`` with the decision's numbers). Ending is conditional on the row still being
``running``, so two runners deciding at once act once. The prediction log and feedback are in
``registry/predictions.py``; :class:`ExperimentsMixin` gives :class:`~modelrunner.registry.Registry` the
methods.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from modelrunner.contract.compat import check_compatible
from modelrunner.errors import FailedPrecondition, IncompatibleContract, InvalidArgument, NotFound
from modelrunner.registry import predictions as plog
from modelrunner.registry import state
from modelrunner.registry.audit import write_audit
from modelrunner.registry.tables import experiments, utcnow
from modelrunner.registry.types import (
    EXPERIMENT_MODES,
    EXPERIMENT_STATES,
    Experiment,
    FeedbackResult,
    LabelledRow,
    ModelVersion,
    PredictionRecord,
    PredictionRow,
)

if TYPE_CHECKING:
    from datetime import datetime

DEFAULT_PERCENT = {"shadow": 100.0, "canary": 10.0, "ab": 50.0}
THEN_ACTIONS = ("promote",)
_STICKY_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


def _experiment(r: Any) -> Experiment:
    return Experiment(
        id=r.id,
        endpoint=r.endpoint,
        mode=r.mode,
        candidate=r.candidate,
        candidate_ref=r.candidate_ref,
        percent=float(r.percent),
        sticky_key=r.sticky_key,
        rules=tuple(r.rules or ()),
        min_labels=int(r.min_labels),
        min_requests=int(r.min_requests),
        then_action=r.then_action,
        state=r.state,
        decision=r.decision,
        started_at=r.started_at,
        started_by=r.started_by,
        ended_at=r.ended_at,
        ended_by=r.ended_by,
    )


def running_experiment(conn: Connection, endpoint: str) -> Experiment | None:
    row = conn.execute(
        select(experiments).where(experiments.c.endpoint == endpoint, experiments.c.state == "running")
    ).first()
    return _experiment(row) if row else None


def running_experiments(conn: Connection) -> dict[str, Experiment]:
    """Every running experiment by endpoint (what a reconciler applies)."""
    rows = conn.execute(select(experiments).where(experiments.c.state == "running"))
    return {r.endpoint: _experiment(r) for r in rows}


def get_experiment(conn: Connection, experiment_id: str) -> Experiment:
    row = conn.execute(select(experiments).where(experiments.c.id == experiment_id)).first()
    if row is None:
        raise NotFound(f"unknown experiment {experiment_id!r}")
    return _experiment(row)


def list_experiments(conn: Connection, endpoint: str | None, limit: int) -> list[Experiment]:
    query = select(experiments).order_by(experiments.c.started_at.desc(), experiments.c.id.desc())
    if endpoint is not None:
        query = query.where(experiments.c.endpoint == endpoint)
    return [_experiment(r) for r in conn.execute(query.limit(max(1, int(limit))))]


def check_options(
    mode: str,
    percent: float | None,
    sticky_key: str | None,
    rules: Sequence[str],
    min_labels: int,
    min_requests: int,
    then: str | None,
) -> float:
    """Validate an experiment's options (InvalidArgument naming the option); return the percent."""
    if mode not in EXPERIMENT_MODES:
        raise InvalidArgument(
            f"invalid mode {mode!r}: expected one of {', '.join(EXPERIMENT_MODES)}", field="mode"
        )
    value = DEFAULT_PERCENT[mode] if percent is None else percent
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < float(value) <= 100:
        raise InvalidArgument(f"invalid percent {percent!r}: expected a number in (0, 100]", field="percent")
    if sticky_key is not None and (not isinstance(sticky_key, str) or not _STICKY_KEY.match(sticky_key)):
        raise InvalidArgument(
            f"invalid sticky key {sticky_key!r}: expected a field or header name "
            "(letters, digits, '_', '-', '.')",
            field="sticky_key",
        )
    if isinstance(rules, str) or not all(isinstance(r, str) and r.strip() for r in rules):
        raise InvalidArgument(
            "rules must be a list of requirement strings, e.g. ['accuracy >= baseline - 0.01']", field="rules"
        )
    for name, number in (("min_labels", min_labels), ("min_requests", min_requests)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidArgument(f"invalid {name} {number!r}: expected an integer >= 0", field=name)
    if then is not None and then not in THEN_ACTIONS:
        raise InvalidArgument(
            f"invalid then {then!r}: expected one of {', '.join(THEN_ACTIONS)}", field="then"
        )
    return float(value)


def insert_experiment(
    conn: Connection,
    endpoint: str,
    candidate: str,
    candidate_ref: str,
    *,
    mode: str,
    percent: float,
    sticky_key: str | None,
    rules: Sequence[str],
    min_labels: int,
    min_requests: int,
    then: str | None,
    actor: str,
) -> Experiment:
    """Write a running experiment (bumping the generation first: that row lock serializes starts)."""
    state.bump_generation(conn)
    state.require_endpoint(conn, endpoint)
    other = running_experiment(conn, endpoint)
    if other is not None:
        raise FailedPrecondition(
            f"endpoint {endpoint!r} already runs experiment {other.id} ({other.mode} of "
            f"{other.candidate_ref}); stop it first",
            experiment=other.id,
        )
    values = {
        "id": f"exp-{uuid.uuid4().hex[:12]}",
        "endpoint": endpoint,
        "mode": mode,
        "candidate": candidate,
        "candidate_ref": candidate_ref,
        "percent": percent,
        "sticky_key": sticky_key,
        "rules": [r.strip() for r in rules],
        "min_labels": min_labels,
        "min_requests": min_requests,
        "then_action": then,
        "state": "running",
        "decision": None,
        "started_at": utcnow(),
        "started_by": actor,
        "ended_at": None,
        "ended_by": None,
    }
    conn.execute(experiments.insert().values(**values))
    exp = _experiment(_Row(values))
    write_audit(
        conn,
        actor=actor,
        action="experiment.start",
        subject=f"endpoint:{endpoint}",
        before=None,
        after=exp.to_dict(),
    )
    return exp


def finish_experiment(
    conn: Connection, experiment_id: str, new_state: str, *, decision: Any, actor: str
) -> Experiment:
    """Move a running experiment to ``new_state``; FailedPrecondition when it has already ended."""
    if new_state not in EXPERIMENT_STATES or new_state == "running":
        ended = ", ".join(s for s in EXPERIMENT_STATES if s != "running")
        raise InvalidArgument(
            f"invalid experiment state {new_state!r}: expected one of {ended}", field="state"
        )
    state.bump_generation(conn)
    now = utcnow()
    done = conn.execute(
        update(experiments)
        .where(experiments.c.id == experiment_id, experiments.c.state == "running")
        .values(state=new_state, decision=decision, ended_at=now, ended_by=actor)
    )
    exp = get_experiment(conn, experiment_id)
    if not done.rowcount:
        raise FailedPrecondition(
            f"experiment {experiment_id} already ended ({exp.state} by {exp.ended_by})",
            experiment=experiment_id,
            state=exp.state,
        )
    write_audit(
        conn,
        actor=actor,
        action=f"experiment.{new_state}",
        subject=f"endpoint:{exp.endpoint}",
        before={"id": exp.id, "state": "running"},
        after={"id": exp.id, "state": new_state, "candidate": exp.candidate_ref, "decision": decision},
    )
    return exp


def stop_on_delete(conn: Connection, endpoint: str, *, actor: str) -> None:
    """A deleted endpoint's running experiment is stopped (audited), in the deleting transaction."""
    exp = running_experiment(conn, endpoint)
    if exp is not None:
        decision = {"reason": f"endpoint {endpoint!r} was deleted"}
        conn.execute(
            update(experiments)
            .where(experiments.c.id == exp.id, experiments.c.state == "running")
            .values(state="stopped", decision=decision, ended_at=utcnow(), ended_by=actor)
        )
        write_audit(
            conn,
            actor=actor,
            action="experiment.stopped",
            subject=f"endpoint:{endpoint}",
            before={"id": exp.id, "state": "running"},
            after={"id": exp.id, "state": "stopped", "candidate": exp.candidate_ref, "decision": decision},
        )


class _Row:
    """Attribute access over a dict (to build an Experiment from the values just inserted)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class ExperimentsMixin:
    """The experiment, prediction-log and feedback methods of :class:`~modelrunner.registry.Registry`."""

    if TYPE_CHECKING:

        def _write(self) -> Any: ...
        def _read(self) -> Any: ...
        def _actor(self, actor: str | None) -> str: ...
        def check_target(self, target: str) -> ModelVersion: ...

    def start_experiment(
        self,
        endpoint: str,
        candidate: str,
        *,
        mode: str,
        percent: float | None = None,
        sticky_key: str | None = None,
        rules: Sequence[str] = (),
        min_labels: int = 0,
        min_requests: int = 0,
        then: str | None = None,
        actor: str | None = None,
    ) -> Experiment:
        """Start an experiment on ``endpoint`` with ``candidate`` (a model ref or target, resolved now).

        Refused: a second running experiment on the endpoint (FailedPrecondition naming it), a candidate
        whose contract would break production's clients (IncompatibleContract), the version production
        serves (InvalidArgument), bad options (InvalidArgument naming the option)."""
        pct = check_options(mode, percent, sticky_key, list(rules), min_labels, min_requests, then)
        if not isinstance(candidate, str) or not candidate.strip():
            raise InvalidArgument("candidate must be a model ref like 'digits@4'", field="candidate")
        candidate = candidate.strip()
        with self._read() as conn:
            production = state.require_endpoint(conn, endpoint)
        prod = self.check_target(production.target)
        cand = self.check_target(candidate)
        if cand.ref == prod.ref:
            raise InvalidArgument(
                f"candidate {candidate!r} is {cand.ref}, the version endpoint {endpoint!r} serves",
                field="candidate",
            )
        reasons = check_compatible(prod.contract, cand.contract)
        if reasons:
            raise IncompatibleContract(
                f"candidate {cand.ref} would break clients of {prod.ref}: {'; '.join(reasons)}", reasons
            )
        try:
            with self._write() as conn:
                return insert_experiment(
                    conn,
                    endpoint,
                    candidate,
                    cand.ref,
                    mode=mode,
                    percent=pct,
                    sticky_key=sticky_key,
                    rules=list(rules),
                    min_labels=min_labels,
                    min_requests=min_requests,
                    then=then,
                    actor=self._actor(actor),
                )
        except IntegrityError as exc:  # a concurrent start won (the partial unique index)
            raise FailedPrecondition(
                f"endpoint {endpoint!r} already runs an experiment; stop it first"
            ) from exc

    def experiment(self, endpoint: str) -> Experiment | None:
        """The running experiment of ``endpoint`` (None when there is none)."""
        with self._read() as conn:
            return running_experiment(conn, endpoint)

    def running_experiments(self) -> dict[str, Experiment]:
        with self._read() as conn:
            return running_experiments(conn)

    def experiment_by_id(self, experiment_id: str) -> Experiment:
        with self._read() as conn:
            return get_experiment(conn, experiment_id)

    def experiments(self, endpoint: str | None = None, limit: int = 50) -> list[Experiment]:
        """Newest first, running and ended."""
        with self._read() as conn:
            return list_experiments(conn, endpoint, limit)

    def end_experiment(
        self, experiment_id: str, state: str, *, decision: Any = None, actor: str | None = None
    ) -> Experiment:
        """End a running experiment as ``promoted``/``aborted``/``stopped`` (only once: FailedPrecondition
        when it already ended). Moving aliases or swapping the endpoint is the caller's part."""
        with self._write() as conn:
            return finish_experiment(conn, experiment_id, state, decision=decision, actor=self._actor(actor))

    # ---- prediction log and feedback (registry/predictions.py) -----------------------------------------

    def log_predictions(self, rows: Sequence[PredictionRecord]) -> int:
        """Append logged predictions in one batched insert; returns the number written."""
        if not rows:
            return 0
        with self._write() as conn:
            return plog.insert_predictions(conn, rows)

    def record_feedback(self, endpoint: str, items: Sequence[tuple[str, Any]]) -> FeedbackResult:
        """Store ground truth ``(request_id, target)`` against logged predictions of ``endpoint``."""
        with self._write() as conn:
            return plog.upsert_feedback(conn, endpoint, items)

    def labelled(
        self,
        endpoint: str,
        *,
        experiment_id: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[LabelledRow]:
        """Logged predictions with their feedback (oldest first; ``limit``: the newest N)."""
        with self._read() as conn:
            return plog.labelled_rows(conn, endpoint, experiment_id=experiment_id, since=since, limit=limit)

    def prediction_rows(
        self, endpoint: str, *, experiment_id: str | None = None, since: datetime | None = None
    ) -> list[PredictionRow]:
        with self._read() as conn:
            return plog.prediction_rows(conn, endpoint, experiment_id=experiment_id, since=since)

    def known_requests(self, endpoint: str, request_ids: Sequence[str]) -> set[str]:
        """Which of ``request_ids`` have a logged prediction on ``endpoint``."""
        with self._read() as conn:
            return plog.known_request_ids(conn, endpoint, request_ids)

    def prune_predictions(self, *, older_than_s: float | None = None, keep_rows: int | None = None) -> int:
        """Retention: drop predictions older than ``older_than_s`` and beyond the newest ``keep_rows``
        (all endpoints), with their orphaned feedback; returns the predictions removed."""
        with self._write() as conn:
            return plog.prune(conn, older_than_s=older_than_s, keep_rows=keep_rows)
