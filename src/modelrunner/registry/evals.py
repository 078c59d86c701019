"""Evaluation results and promotion gates (requirement lists) per model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from modelrunner.errors import FailedPrecondition, InvalidArgument
from modelrunner.registry.audit import write_audit
from modelrunner.registry.refs import check_name
from modelrunner.registry.tables import evaluations, gates, utcnow
from modelrunner.registry.types import Evaluation


def insert_evaluation(
    conn: Connection,
    *,
    model: str,
    version: int | None,
    metrics: dict[str, Any],
    gates_result: Any,
    passed: bool | None,
    dataset_sha256: str | None,
    dataset_name: str | None,
    actor: str,
) -> int:
    values = {
        "model": model,
        "version": version,
        "dataset_sha256": dataset_sha256,
        "dataset_name": dataset_name,
        "metrics": dict(metrics),
        "gates": gates_result if gates_result is not None else [],
        "passed": passed,
        "created_at": utcnow(),
        "actor": actor,
    }
    key = conn.execute(evaluations.insert().values(**values)).inserted_primary_key
    new_id = int(key[0]) if key else 0
    subject = f"{model}@{version}" if version is not None else model
    write_audit(
        conn,
        actor=actor,
        action="evaluation.record",
        subject=subject,
        before=None,
        after={"id": new_id, "dataset": dataset_name, "passed": passed, "metrics": dict(metrics)},
    )
    return new_id


def _evaluation(r: Any) -> Evaluation:
    return Evaluation(
        id=int(r.id),
        model=r.model,
        version=r.version,
        dataset_sha256=r.dataset_sha256,
        dataset_name=r.dataset_name,
        metrics=dict(r.metrics or {}),
        gates=r.gates,
        passed=r.passed,
        created_at=r.created_at,
        actor=r.actor,
    )


def get_evaluation(conn: Connection, eval_id: int) -> Evaluation:
    return _evaluation(conn.execute(select(evaluations).where(evaluations.c.id == eval_id)).one())


def list_evaluations(conn: Connection, model: str, version: int | None = None) -> list[Evaluation]:
    query = select(evaluations).where(evaluations.c.model == model).order_by(evaluations.c.id.desc())
    if version is not None:
        query = query.where(evaluations.c.version == version)
    return [_evaluation(r) for r in conn.execute(query)]


def put_gates(conn: Connection, model: str, requirements: list[str], *, actor: str) -> None:
    old = get_gates(conn, model, default=None)
    now = utcnow()
    if old is None:
        conn.execute(
            gates.insert().values(model=model, requirements=requirements, updated_at=now, updated_by=actor)
        )
    else:
        conn.execute(
            update(gates)
            .where(gates.c.model == model)
            .values(requirements=requirements, updated_at=now, updated_by=actor)
        )
    write_audit(
        conn, actor=actor, action="gates.set", subject=f"gates:{model}", before=old, after=requirements
    )


def get_gates(conn: Connection, model: str, default: list[str] | None = None) -> list[str] | None:
    value = conn.execute(select(gates.c.requirements).where(gates.c.model == model)).scalar()
    return list(value) if value is not None else default


# ---- gate enforcement on alias moves to production (gate strings are parsed by modelrunner.evaluation) ----

GATED_ALIAS = "production"
_REQ = re.compile(r"^([A-Za-z_]\w*)(>=|<=|==|>|<)(.+)$")


def _norm(text: Any) -> str:
    """A requirement string in one canonical form (no spaces, the number as a float) for comparison."""
    t = "".join(str(text).split())
    m = _REQ.match(t)
    if m:
        try:
            return f"{m.group(1)}{m.group(2)}{float(m.group(3))!r}"
        except ValueError:
            pass
    return t


def gate_failures(conn: Connection, model: str, version: int) -> list[str]:
    """Why ``model@version`` may not become production: each saved gate needs a passing result in the
    newest stored evaluation of that version that measured it. Empty when every gate passed (or none)."""
    required = get_gates(conn, model, default=[]) or []
    if not required:
        return []
    evals = list_evaluations(conn, model, version)
    failures = []
    for gate in required:
        want = _norm(gate)
        checked = [
            (ev, g)
            for ev in evals
            for g in (ev.gates or [])
            if isinstance(g, dict) and _norm(g.get("requirement")) == want
        ]
        found = next(((ev, g) for ev, g in checked if g.get("value") is not None), None)  # measured
        found = found or (checked[0] if checked else None)
        if found is None:
            failures.append(f"{gate}: never evaluated")
        elif not found[1].get("passed"):
            why = found[1].get("reason") or "failed"
            failures.append(f"{gate}: failed in evaluation #{found[0].id} ({why})")
    return failures


def enforce_gates(conn: Connection, model: str, version: int, *, force: bool, actor: str) -> None:
    """FailedPrecondition when saved gates refuse ``model@version``; with ``force``, audit the override."""
    failures = gate_failures(conn, model, version)
    if not failures:
        return
    if not force:
        raise FailedPrecondition(
            f"{model}@{version} cannot become {GATED_ALIAS}: {'; '.join(failures)} "
            "(run `modelrunner evaluate`, or force the move)",
            failures=failures,
        )
    write_audit(
        conn,
        actor=actor,
        action="gates.override",
        subject=f"{model}@{version}",
        before=None,
        after={"alias": GATED_ALIAS, "failures": failures},
    )


class EvaluationsMixin:
    """The evaluation and gate methods of :class:`~modelrunner.registry.Registry`."""

    if TYPE_CHECKING:

        def _write(self) -> Any: ...
        def _read(self) -> Any: ...
        def _actor(self, actor: str | None) -> str: ...

    def record_evaluation(
        self,
        name: str,
        version: int | None,
        *,
        metrics: Mapping[str, Any],
        gates: Any = None,
        passed: bool | None = None,
        dataset_sha256: str | None = None,
        dataset_name: str | None = None,
        actor: str | None = None,
    ) -> Evaluation:
        check_name(name)
        with self._write() as conn:
            new_id = insert_evaluation(
                conn,
                model=name,
                version=version,
                metrics=dict(metrics),
                gates_result=gates,
                passed=passed,
                dataset_sha256=dataset_sha256,
                dataset_name=dataset_name,
                actor=self._actor(actor),
            )
            return get_evaluation(conn, new_id)

    def evaluations(self, name: str, version: int | None = None) -> list[Evaluation]:
        """Newest first."""
        with self._read() as conn:
            return list_evaluations(conn, name, version)

    def set_gates(self, name: str, requirements: list[str], actor: str | None = None) -> None:
        check_name(name)
        if not isinstance(requirements, list | tuple) or not all(isinstance(r, str) for r in requirements):
            raise InvalidArgument("gates must be a list of requirement strings, e.g. ['accuracy >= 0.9']")
        with self._write() as conn:
            put_gates(conn, name, list(requirements), actor=self._actor(actor))

    def gates(self, name: str) -> list[str]:
        with self._read() as conn:
            return get_gates(conn, name, default=[]) or []

    def gate_failures(self, name: str, version: int) -> list[str]:
        """Which saved gates ``name@version`` fails (what a move to production checks); empty: none."""
        with self._read() as conn:
            return gate_failures(conn, name, version)
