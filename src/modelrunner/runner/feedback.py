"""Ground truth sent after the answer (``POST .../feedback``), joined to the logged prediction.

Protocol-free: the HTTP routes (native and V2) parse the JSON body and call :func:`join`. A request id is
logged by the worker that answered it, whose buffer reaches the database within ``prediction_log_flush_s``:
so an unknown id is looked up again — after this worker flushed its own buffer (a feedback right after a
predict on the same worker joins at once) — for up to two flush intervals plus a second (at least
``RETRY_S``: another worker's write may queue behind its own busy loop or the database's lock) before it is a
NotFound naming it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from modelrunner.errors import InvalidArgument, NotFound, Unavailable
from modelrunner.registry.types import FeedbackResult

RETRY_S = 1.5
SHOWN = 20
MAX_ITEMS = 10_000


def parse(body: Any) -> list[tuple[str, Any]]:
    """``{"request_id", "target"}``, ``{"items": [...]}`` or a list of such objects -> ``(id, target)`` pairs;
    InvalidArgument naming the field that is wrong."""
    if isinstance(body, dict) and "items" in body:
        items, prefix = body["items"], "items"
        if not isinstance(items, list):
            raise InvalidArgument("items must be a list of {request_id, target} objects", field="items")
    elif isinstance(body, list):
        items, prefix = body, ""
    elif isinstance(body, dict):
        return [_item(body, "")]
    else:
        raise InvalidArgument(
            'feedback must be {"request_id": ..., "target": ...}, {"items": [...]} or a list of such objects',
            field="body",
        )
    if not items:
        raise InvalidArgument("no feedback items", field=prefix or "body")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(
            f"at most {MAX_ITEMS} feedback items per request, got {len(items)}", field=prefix or "body"
        )
    return [_item(item, f"{prefix}[{i}]") for i, item in enumerate(items)]


def _item(item: Any, where: str) -> tuple[str, Any]:
    dot = f"{where}." if where else ""
    if not isinstance(item, dict):
        raise InvalidArgument(
            f"{where or 'body'}: expected an object {{request_id, target}}", field=where or "body"
        )
    rid = item.get("request_id")
    if not isinstance(rid, str) or not rid.strip() or len(rid) > 128:
        raise InvalidArgument(
            f"{dot}request_id: expected a non-empty string of at most 128 characters (the "
            "x-request-id of the answer)",
            field=f"{dot}request_id",
        )
    if "target" not in item:
        raise InvalidArgument(
            f"{dot}target: missing (the ground truth of that request)", field=f"{dot}target"
        )
    return rid, item["target"]


async def join(
    runtime: Any, endpoint: str, items: Sequence[tuple[str, Any]], *, retry_s: float | None = None
) -> FeedbackResult:
    """Store the items against ``endpoint``'s logged predictions; NotFound naming the ids none was logged
    for (after ``retry_s``), the others stored all the same."""
    runtime.get(endpoint)  # NotFound naming the endpoints this worker serves
    registry = getattr(runtime, "registry", None)
    if registry is None:
        raise Unavailable("feedback needs the registry's prediction log; this server runs without one")
    log = getattr(runtime, "predictions", None)
    if retry_s is None:
        retry_s = max(RETRY_S, 2 * float(getattr(log, "flush_s", 0.0)) + 1.0)
    await _logged(registry, endpoint, [rid for rid, _ in items], log, time.monotonic() + retry_s)
    # stored in one pass once logged: a decider judging meanwhile sees all of this feedback or none of it
    result = await asyncio.to_thread(registry.record_feedback, endpoint, items)
    joined, duplicates, unknown = result.joined, result.duplicates, list(result.unknown)
    if unknown:
        more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        shown = ", ".join(unknown[:SHOWN]) + more
        raise NotFound(
            f"no logged prediction of endpoint {endpoint!r} for request id(s) {shown} (is the "
            "prediction log on? it logs while an experiment runs, or with log_predictions: true)",
            unknown=unknown[:SHOWN],
            unknown_count=len(unknown),
            joined=joined,
            duplicates=duplicates,
        )
    return FeedbackResult(joined=joined, unknown=[], duplicates=duplicates)


async def _logged(registry: Any, endpoint: str, request_ids: list[str], log: Any, deadline: float) -> None:
    """Wait until every id has a logged prediction, or ``deadline``: this worker's own buffer is flushed at
    once, another worker's reaches the database within its flush interval."""
    missing = set(request_ids) - await asyncio.to_thread(registry.known_requests, endpoint, request_ids)
    delay = 0.05
    while missing and time.monotonic() < deadline:
        if log is not None and log.pending:
            await log.flush()  # this worker's own answers: in the database now
        else:  # another worker's: written within its flush interval
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.25)
        missing -= await asyncio.to_thread(registry.known_requests, endpoint, list(missing))
