"""The prediction log and the ground truth joined to it (feedback), on SQLite and PostgreSQL alike.

Rows arrive in batches from the runner's per-worker buffer (one executemany insert). Feedback is keyed by
(endpoint, request_id): a later target replaces an earlier one and is counted (``updates``). A request id may
have several logged predictions (shadow: production's and the candidate's), so the join yields one labelled
row per logged prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, func, select

from modelrunner.errors import InvalidArgument
from modelrunner.registry.db import upsert
from modelrunner.registry.tables import feedback, predictions, utcnow
from modelrunner.registry.types import FeedbackResult, LabelledRow, PredictionRecord, PredictionRow

CHUNK = 500
MAX_REQUEST_ID = 128
_COLUMNS = (
    predictions.c.request_id,
    predictions.c.variant,
    predictions.c.model,
    predictions.c.version,
    predictions.c.ts,
    predictions.c.latency_ms,
    predictions.c.error,
    predictions.c.outputs,
    predictions.c.experiment_id,
)


def insert_predictions(conn: Connection, rows: Sequence[PredictionRecord]) -> int:
    values = [
        {
            "request_id": r.request_id[:MAX_REQUEST_ID],
            "endpoint": r.endpoint,
            "experiment_id": r.experiment_id,
            "variant": r.variant,
            "model": r.model,
            "version": r.version,
            "ts": r.ts,
            "latency_ms": float(r.latency_ms),
            "error": r.error[:4000] if r.error else None,
            "outputs": r.outputs,
            "inputs": r.inputs,
        }
        for r in rows
    ]
    if values:
        conn.execute(predictions.insert(), values)
    return len(values)


def check_request_id(value: Any, where: str = "request_id") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REQUEST_ID:
        raise InvalidArgument(
            f"invalid {where}: expected a non-empty string of at most {MAX_REQUEST_ID} "
            f"characters, got {value!r:.80}",
            field=where,
        )
    return value


def known_request_ids(conn: Connection, endpoint: str, request_ids: Sequence[str]) -> set[str]:
    wanted = list(dict.fromkeys(request_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        query = (
            select(predictions.c.request_id)
            .distinct()
            .where(predictions.c.endpoint == endpoint, predictions.c.request_id.in_(part))
        )
        found.update(r[0] for r in conn.execute(query))
    return found


def _existing_feedback(conn: Connection, endpoint: str, request_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(request_ids), CHUNK):
        part = list(request_ids[start : start + CHUNK])
        query = select(feedback.c.request_id).where(
            feedback.c.endpoint == endpoint, feedback.c.request_id.in_(part)
        )
        found.update(r[0] for r in conn.execute(query))
    return found


def upsert_feedback(conn: Connection, endpoint: str, items: Sequence[tuple[str, Any]]) -> FeedbackResult:
    """Store each known request's target (the later wins, counted); unknown ids are returned, not stored."""
    latest: dict[str, Any] = {}
    repeats: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidArgument(f"feedback item {i}: expected (request_id, target)", field=f"items[{i}]")
        rid = check_request_id(item[0], f"items[{i}].request_id")
        repeats[rid] = repeats.get(rid, -1) + 1
        latest[rid] = item[1]
    known = known_request_ids(conn, endpoint, list(latest))
    unknown = [rid for rid in latest if rid not in known]
    stored = [rid for rid in latest if rid in known]
    if not stored:
        return FeedbackResult(joined=0, unknown=unknown, duplicates=0)
    already = _existing_feedback(conn, endpoint, stored)
    now = utcnow()
    stmt = upsert(conn, feedback)
    stmt = stmt.on_conflict_do_update(
        index_elements=["endpoint", "request_id"],
        set_={
            "target": stmt.excluded.target,
            "received_at": stmt.excluded.received_at,
            "updates": feedback.c.updates + stmt.excluded.updates + 1,
        },
    )
    conn.execute(
        stmt,
        [
            {
                "endpoint": endpoint,
                "request_id": rid,
                "target": latest[rid],
                "received_at": now,
                "updates": repeats[rid],
            }
            for rid in stored
        ],
    )
    duplicates = sum(repeats[rid] for rid in stored) + len(already)
    joined = sum(repeats[rid] + 1 for rid in stored)
    return FeedbackResult(joined=joined, unknown=unknown, duplicates=duplicates)


def _filtered(query: Any, endpoint: str, experiment_id: str | None, since: datetime | None) -> Any:
    query = query.where(predictions.c.endpoint == endpoint)
    if experiment_id is not None:
        query = query.where(predictions.c.experiment_id == experiment_id)
    if since is not None:
        query = query.where(predictions.c.ts >= since)
    return query


def labelled_rows(
    conn: Connection, endpoint: str, *, experiment_id: str | None, since: datetime | None, limit: int | None
) -> list[LabelledRow]:
    join = predictions.join(
        feedback,
        (feedback.c.endpoint == predictions.c.endpoint) & (feedback.c.request_id == predictions.c.request_id),
    )
    query = _filtered(select(*_COLUMNS, feedback.c.target).select_from(join), endpoint, experiment_id, since)
    if limit is not None:
        query = query.order_by(predictions.c.id.desc()).limit(max(0, int(limit)))
        rows = list(conn.execute(query))[::-1]
    else:
        rows = list(conn.execute(query.order_by(predictions.c.id)))
    return [
        LabelledRow(
            request_id=r.request_id,
            variant=r.variant,
            model=r.model,
            version=r.version,
            ts=r.ts,
            latency_ms=float(r.latency_ms),
            error=r.error,
            outputs=r.outputs,
            target=r.target,
            experiment_id=r.experiment_id,
        )
        for r in rows
    ]


def prediction_rows(
    conn: Connection, endpoint: str, *, experiment_id: str | None, since: datetime | None
) -> list[PredictionRow]:
    query = _filtered(select(*_COLUMNS), endpoint, experiment_id, since).order_by(predictions.c.id)
    return [
        PredictionRow(
            request_id=r.request_id,
            variant=r.variant,
            model=r.model,
            version=r.version,
            ts=r.ts,
            latency_ms=float(r.latency_ms),
            error=r.error,
            outputs=r.outputs,
            experiment_id=r.experiment_id,
        )
        for r in conn.execute(query)
    ]


def prune(conn: Connection, *, older_than_s: float | None, keep_rows: int | None) -> int:
    """Delete old predictions (by age, then beyond the newest ``keep_rows``) and feedback left without one."""
    removed = 0
    if older_than_s is not None:
        cutoff = utcnow() - timedelta(seconds=max(0.0, float(older_than_s)))
        removed += int(conn.execute(delete(predictions).where(predictions.c.ts < cutoff)).rowcount or 0)
    if keep_rows is not None:
        edge = conn.execute(
            select(predictions.c.id).order_by(predictions.c.id.desc()).offset(max(0, int(keep_rows))).limit(1)
        ).scalar()
        if edge is not None:
            removed += int(conn.execute(delete(predictions).where(predictions.c.id <= edge)).rowcount or 0)
    if removed:
        orphan = ~exists().where(
            predictions.c.endpoint == feedback.c.endpoint, predictions.c.request_id == feedback.c.request_id
        )
        conn.execute(delete(feedback).where(orphan))
    return removed


def count_predictions(conn: Connection, endpoint: str | None = None) -> int:
    query = select(func.count()).select_from(predictions)
    if endpoint is not None:
        query = query.where(predictions.c.endpoint == endpoint)
    return int(conn.execute(query).scalar() or 0)
