"""The decider: one small asyncio task per worker runtime that watches the endpoints' running experiments.

Every ``interval_s`` it reads each served endpoint's running experiment, computes the online stats (in a
thread), publishes them as Prometheus series and, at each new checkpoint, judges the ``--decide`` rules and
acts (:func:`experiments.actions.decide_once`). Every worker of every runner runs one: ``end_experiment`` is
conditional (only from ``running``), so concurrent deciders act once. When reading the log gets slow the tick
stretches so the decider spends at most about a tenth of a core.
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
from modelrunner.monitoring import metrics as prom

log = logging.getLogger(__name__)

INTERVAL_S = 1.5
BUSY_SHARE = 0.1  # at most this share of wall time spent computing stats


def publish(stats: ExperimentStats) -> None:
    """Every variant's online metrics as ``modelrunner_online_metric`` / ``modelrunner_online_labelled``."""
    endpoint = stats.experiment.endpoint
    for variant, vs in stats.variants.items():
        prom.set_online_labelled(endpoint, variant, vs.labelled)
        for name in vs.samples:
            value = vs.value(name)
            if value is not None and math.isfinite(value):
                prom.set_online_metric(endpoint, variant, name, value)
        prom.set_online_metric(endpoint, variant, "requests", vs.requests)


def tick(registry: Any, endpoints: Iterable[str], looks: dict[str, int]) -> list[str]:
    """One pass over ``endpoints`` (blocking: run it in a thread). Returns what was decided."""
    done: list[str] = []
    running_of = getattr(registry, "running_experiments", None)
    if running_of is None:  # a registry without experiments (test doubles)
        return done
    running = running_of()
    for name in endpoints:
        exp = running.get(name)
        if exp is None:
            continue
        stats = load_stats(registry, exp)
        publish(stats)
        action = decide_once(registry, exp, looks, stats=stats)
        if action:
            log.info("experiment %s on %s: %s", exp.id, name, action)
            done.append(f"{name}: {action}")
    return done


async def run_decider(registry: Any, endpoint_names: Callable[[], Iterable[str]] | Iterable[str],
                      stop: asyncio.Event, *, interval_s: float = INTERVAL_S) -> None:
    """Tick until ``stop`` is set. ``endpoint_names``: the endpoints this worker serves (or a function
    returning them). Errors are logged and the next tick tries again."""
    looks: dict[str, int] = {}
    while not stop.is_set():
        names = list(endpoint_names() if callable(endpoint_names) else endpoint_names)
        started = time.monotonic()
        try:
            await asyncio.to_thread(tick, registry, names, looks)
        except ModelrunnerError as exc:
            log.warning("experiment decider: %s", exc)
        except Exception:  # noqa: BLE001 - the decider must never take the worker down
            log.exception("experiment decider failed; retrying")
        busy = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(interval_s, busy / BUSY_SHARE))
