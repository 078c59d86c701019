"""The decider: one small asyncio task per worker runtime that watches the endpoints' running experiments.

Every ``interval_s`` it reads each served endpoint's running experiment, computes the online stats (in a
thread), publishes them through the observer it is given (the runtime's: Prometheus series) and, at each new
checkpoint, judges the ``--decide`` rules and acts (:func:`experiments.actions.decide_once`). Every worker of
every runner runs one, but for each endpoint only the live worker with the first id (``registry.workers``)
computes: the others stand by and take over when it stops reporting. ``end_experiment`` is conditional (only
from ``running``), so even two deciders that both think they lead act once. When reading the log gets slow
an experiment is read less often, so its decider spends at most ~5 % of a core; an experiment without rules
is read every ``PUBLISH_S`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from modelrunner.errors import ModelrunnerError
from modelrunner.experiments.actions import decide_once
from modelrunner.experiments.stats import ExperimentStats, load_stats
from modelrunner.monitoring.observer import ExperimentObserver, NullObserver

log = logging.getLogger(__name__)

INTERVAL_S = 1.5
BUSY_SHARE = 0.05  # at most this share of one core spent reading an experiment's log
MAX_SPACING_S = 15.0  # ... but a decision that is due is never put off longer than this
PUBLISH_S = 10.0  # an experiment without rules: its online series are refreshed this often
LIVE_S = 10.0  # a worker whose heartbeat is older is not a candidate leader


def publish(stats: ExperimentStats, observer: ExperimentObserver) -> None:
    """Every variant's online metrics to ``observer`` (Prometheus: ``modelrunner_online_metric`` /
    ``modelrunner_online_labelled``)."""
    endpoint = stats.experiment.endpoint
    for variant, vs in stats.variants.items():
        observer.online_labelled(endpoint, variant, vs.labelled)
        for name in vs.samples:
            value = vs.value(name)
            if value is not None and math.isfinite(value):
                observer.online_metric(endpoint, variant, name, value)
        observer.online_metric(endpoint, variant, "requests", vs.requests)


def leads(registry: Any, endpoint: str, worker_id: str | None) -> bool:
    """Whether ``worker_id`` is the endpoint's deciding worker (the first live one by id); True when the
    worker is unknown (a runtime without a worker id) or no live worker is recorded."""
    if worker_id is None:
        return True
    alive = sorted(w.runner_id for w in registry.workers(endpoint, alive_within_s=LIVE_S))
    return not alive or alive[0] == worker_id or worker_id not in alive


def tick(
    registry: Any,
    endpoints: Iterable[str],
    looks: dict[str, int],
    worker_id: str | None = None,
    due: dict[str, float] | None = None,
    observer: ExperimentObserver | None = None,
) -> list[str]:
    """One pass over ``endpoints`` (blocking: run it in a thread). Returns what was decided.

    ``due`` (experiment id -> monotonic time) spaces the reads of each experiment's log: an experiment with
    rules is read again after ``INTERVAL_S`` to ``MAX_SPACING_S``: ``cost / BUSY_SHARE``, the cost being the
    CPU time of the read (on a busy machine its wall time says more about the other processes than about the
    read), one without (only the Prometheus series to refresh) after ``PUBLISH_S``. The online metrics go to
    ``observer`` (none recorded when None)."""
    done: list[str] = []
    running_of = getattr(registry, "running_experiments", None)
    if running_of is None:  # a registry without experiments (test doubles)
        return done
    running = running_of()
    for name in endpoints:
        exp = running.get(name)
        if exp is None or (due is not None and time.monotonic() < due.get(exp.id, 0.0)):
            continue
        if not leads(registry, name, worker_id):
            continue
        started = time.thread_time()
        stats = load_stats(registry, exp)
        publish(stats, observer if observer is not None else NullObserver())
        action = decide_once(registry, exp, looks, stats=stats)
        if due is not None:
            cost = time.thread_time() - started
            spacing = min(MAX_SPACING_S, max(INTERVAL_S, cost / BUSY_SHARE))
            due[exp.id] = time.monotonic() + (spacing if exp.rules else PUBLISH_S)
        if action:
            log.info("experiment %s on %s: %s", exp.id, name, action)
            done.append(f"{name}: {action}")
    return done


async def run_decider(
    registry: Any,
    endpoint_names: Callable[[], Iterable[str]] | Iterable[str],
    stop: asyncio.Event,
    *,
    interval_s: float = INTERVAL_S,
    worker_id: str | None = None,
    observer: ExperimentObserver | None = None,
) -> None:
    """Tick until ``stop`` is set. ``endpoint_names``: the endpoints this worker serves (or a function
    returning them); ``worker_id``: this worker's id in its status rows; ``observer``: where the online
    metrics go. Errors are logged and the next
    tick tries again."""
    looks: dict[str, int] = {}
    due: dict[str, float] = {}
    while not stop.is_set():
        names = list(endpoint_names() if callable(endpoint_names) else endpoint_names)
        try:
            await asyncio.to_thread(tick, registry, names, looks, worker_id, due, observer)
        except ModelrunnerError as exc:
            log.warning("experiment decider: %s", exc)
        except Exception:  # noqa: BLE001 - the decider must never take the worker down
            log.exception("experiment decider failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
