"""Prometheus metrics of the runner, correct across worker processes.

One process: collectors keep their values in memory. N worker processes: the supervisor calls
:func:`setup_multiprocess` (creates ``PROMETHEUS_MULTIPROC_DIR``) *before* spawning workers; every worker
then writes its values to per-pid files there and :func:`render` merges all of them, so any worker answering
``/metrics`` reports the whole server. When a worker dies the supervisor calls :func:`mark_process_dead`.

Collectors are built lazily (on first use), after the process knows whether it is in multiprocess mode.
Recording functions are cheap (label children are cached) because they run on every request. The serving
path does not call them directly: it is given an observer (monitoring/observer.py),
``prometheus.PROMETHEUS`` in a worker (server/compose.py), which records here.
"""

from __future__ import annotations

import os
import shutil
import threading
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    generate_latest,
    values,
)
from prometheus_client import multiprocess as _mp
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelrunner.monitoring import deferred
from modelrunner.monitoring.collectors import Collectors

__all__ = [
    "CONTENT_TYPE_LATEST",
    "ENV_VAR",
    "endpoint_added",
    "forget_endpoint",
    "in_flight",
    "in_flight_add",
    "mark_process_dead",
    "multiprocess_dir",
    "observe_batch",
    "observe_error",
    "observe_request",
    "observe_step",
    "observe_swap",
    "set_online_labelled",
    "set_online_metric",
    "render",
    "reset",
    "set_drift_alert",
    "set_estimated_accuracy",
    "set_feature_drift",
    "set_loaded",
    "set_registry_contact",
    "setup_multiprocess",
    "swap_failed",
    "swap_started",
    "swap_succeeded",
]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


_lock = threading.Lock()
_collectors: Collectors | None = None
_removed: set[str] = set()
"""Endpoints deleted from the desired state: their series are left out of :func:`render` (multiprocess files
cannot forget a series, so the worker answering ``/metrics`` filters them)."""


_pid = [os.getpid()]


def _forked() -> None:
    _pid[0] = os.getpid()
    deferred.after_fork()


os.register_at_fork(after_in_child=_forked)


def _value_class() -> Any:
    """prometheus_client's value class for this process. In multiprocess mode its writes to the file are
    batched (:mod:`.deferred`), and every write asks the process id (to notice a fork): ``os.getpid`` is a
    system call; ours is the pid cached, refreshed in a forked child (``os.register_at_fork``)."""
    if os.environ.get(ENV_VAR):
        return deferred.deferred_value_class(lambda: _pid[0])
    return values.MutexValue


def _get() -> Collectors:
    global _collectors
    c = _collectors
    if c is None:
        with _lock:
            if _collectors is None:
                values.ValueClass = _value_class()
                _collectors = Collectors()
            c = _collectors
    return c


def _child(kind: str, make: Callable[[Collectors], Any], *key: object) -> Any:
    """The cached label child of a collector (``labels()`` is the slow part of recording)."""
    c = _get()
    k = (kind, *key)
    child = c.cache.get(k)
    if child is None:
        with _lock:  # not between forget_endpoint's removal and its cache purge (an orphan child)
            child = c.cache.get(k)
            if child is None:
                child = c.cache[k] = make(c)
    return child


# -- multiprocess mode -------------------------------------------------------------------------------------


def setup_multiprocess(directory: str | os.PathLike[str], *, clear: bool = True) -> Path:
    """Enter multiprocess mode: create (by default empty) ``directory``, export PROMETHEUS_MULTIPROC_DIR.

    Call in the supervisor before spawning workers; workers inherit the variable. Also safe to call in a
    process that already recorded metrics: collectors are rebuilt on next use.
    """
    global _collectors
    path = Path(directory)
    if clear and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_VAR] = str(path)
    with _lock:
        _collectors = None  # rebuilt on next use, with this environment's value class
    return path


def multiprocess_dir() -> str | None:
    """The multiprocess directory when this process is in multiprocess mode, else None."""
    path = os.environ.get(ENV_VAR)
    return path if path and os.path.isdir(path) else None


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges (in-flight, loaded versions) of a dead worker; counters keep their totals."""
    path = multiprocess_dir()
    if path:
        _mp.mark_process_dead(pid, path)


def reset() -> None:
    """Drop every collector; the next use rebuilds them for the current environment (multiprocess or not).

    For tests and for a process leaving multiprocess mode. Multiprocess files are left alone.
    """
    global _collectors
    with _lock:
        _collectors = None  # rebuilt on next use, with this environment's value class
        _removed.clear()


def render() -> tuple[bytes, str]:
    """Prometheus text of this server (all workers in multiprocess mode) and its content type."""
    path = multiprocess_dir()
    if path:
        deferred.flush()  # this process's latest changes; the other workers' are at most FLUSH_S old
        registry = CollectorRegistry()
        collector = _mp.MultiProcessCollector(None, path=path)
        with _lock:
            removed = frozenset(_removed)
        registry.register(_WithoutRemoved(collector, removed) if removed else collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(_get().registry), CONTENT_TYPE_LATEST


class _WithoutRemoved:
    """A collector passing on ``inner``'s metrics minus the series of deleted endpoints."""

    def __init__(self, inner: Any, removed: frozenset[str]) -> None:
        self.inner, self.removed = inner, removed

    def collect(self) -> Any:
        for metric in self.inner.collect():
            metric.samples = [s for s in metric.samples if s.labels.get("endpoint") not in self.removed]
            yield metric


# -- endpoints coming and going (runner) -------------------------------------------------------------------

_BY_ENDPOINT = (
    "requests",
    "errors",
    "latency",
    "in_flight",
    "swaps_started",
    "swaps_succeeded",
    "swaps_failed",
    "swap_duration",
    "loaded",
    "batch_size",
    "shadow_dropped",
    "log_dropped",
    "online",
    "online_labelled",
    "feature_drift",
    "drift_alert",
    "estimated_accuracy",
)
"""Collectors labelled by ``endpoint`` (first label)."""


def forget_endpoint(endpoint: str) -> None:
    """Drop every series of a deleted endpoint, so ``/metrics`` stops reporting it (e.g. loaded version 1).

    One process: the label children are removed. Multiprocess: this worker's loaded-version gauges go to 0
    (the files keep values) and :func:`render` leaves the endpoint's series out until it is served again.
    """
    c = _get()
    single = multiprocess_dir() is None
    with _lock:
        _removed.add(endpoint)
        for key in [k for k in c.cache if k[0] != "step" and k[1] == endpoint]:
            child = c.cache.pop(key)
            if key[0] == "loaded":
                child.set(0)
        if single:
            for attr in _BY_ENDPOINT:
                getattr(c, attr).remove_by_labels({"endpoint": endpoint})


def endpoint_added(endpoint: str) -> None:
    """An endpoint (re)appeared in the desired state: report its series again."""
    if endpoint in _removed:
        with _lock:
            _removed.discard(endpoint)


# -- requests (server adapters) ----------------------------------------------------------------------------


class _Answered:
    """The request counter and latency histogram children of one (endpoint, version, protocol), recorded
    together: in multiprocess mode as one change of their deferred values (:func:`deferred.add`: one lock,
    none of prometheus_client's per-call checks), else through prometheus_client."""

    __slots__ = ("counter", "histogram", "bounds", "deferred")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter, self.histogram = counter, histogram
        self.bounds = getattr(histogram, "_upper_bounds", ())
        # prometheus_client's value objects (private, stable for years): else its public calls
        self.deferred = deferred.is_deferred(getattr(counter, "_value", None)) and all(
            hasattr(histogram, name) for name in ("_sum", "_buckets", "_upper_bounds")
        )

    def record(self, seconds: float) -> None:
        if self.deferred:  # what Counter.inc and Histogram.observe write: the first bucket >= seconds
            h = self.histogram
            bucket = h._buckets[bisect_left(self.bounds, seconds)]
            deferred.add((self.counter._value, 1.0), (h._sum, seconds), (bucket, 1.0))
        else:
            self.counter.inc()
            self.histogram.observe(seconds)


def observe_request(endpoint: str, version: int | str, protocol: str, seconds: float) -> None:
    """One answered predict request (the hot path: one cache lookup for both children)."""
    c = _collectors
    answered = c.cache.get(("answered", endpoint, version, protocol)) if c is not None else None
    if answered is None:
        v = str(version)
        answered = _child(
            "answered",
            lambda c: _Answered(c.requests.labels(endpoint, v, protocol), c.latency.labels(endpoint, v)),
            endpoint,
            version,  # the caller's int or str: two keys, the same children
            protocol,
        )
    answered.record(seconds)


def observe_error(endpoint: str, version: int | str | None, code: str) -> None:
    """One failed predict request; ``version`` is None when no version was pinned yet."""
    v = "" if version is None else str(version)
    _child("err", lambda c: c.errors.labels(endpoint, v, code), endpoint, v, code).inc()


def in_flight(endpoint: str) -> Any:
    """The in-flight gauge child of ``endpoint``: ``inc()`` when a request starts, ``dec()`` when it ends."""
    c = _collectors
    child = c.cache.get(("inflight", endpoint)) if c is not None else None
    if child is None:
        child = _child("inflight", lambda c: c.in_flight.labels(endpoint), endpoint)
    return child


def in_flight_add(endpoint: str, amount: float) -> None:
    """``amount`` (1 or -1) more requests in flight on ``endpoint`` (the hot path: in multiprocess mode
    straight into the gauge's deferred value)."""
    c = _collectors
    value = c.cache.get(("inflight_value", endpoint)) if c is not None else None
    if value is None:
        child = in_flight(endpoint)
        if not deferred.is_deferred(getattr(child, "_value", None)):
            child.inc(amount)
            return
        value = _child("inflight_value", lambda c: child._value, endpoint)
    deferred.add((value, amount))


def observe_batch(endpoint: str, rows: int) -> None:
    """One merged predict call of ``rows`` rows (adaptive batching)."""
    _child("batch", lambda c: c.batch_size.labels(endpoint), endpoint).observe(rows)


def shadow_dropped(endpoint: str, count: int = 1) -> None:
    """Shadow copies dropped (the candidate's mirror queue was full): the client never waits for them."""
    _child("shadow_drop", lambda c: c.shadow_dropped.labels(endpoint), endpoint).inc(count)


def log_dropped(endpoint: str, count: int = 1) -> None:
    """Prediction-log rows dropped (the buffer was full, or the database refused a batch)."""
    _child("log_drop", lambda c: c.log_dropped.labels(endpoint), endpoint).inc(count)


# -- swaps (runner) ----------------------------------------------------------------------------------------


def swap_started(endpoint: str) -> None:
    _child("swap_start", lambda c: c.swaps_started.labels(endpoint), endpoint).inc()


def swap_succeeded(endpoint: str) -> None:
    _child("swap_ok", lambda c: c.swaps_succeeded.labels(endpoint), endpoint).inc()


def swap_failed(endpoint: str, reason: str = "error") -> None:
    """A failed swap; ``reason`` is a short, bounded word (an error ``code``, "incompatible", "timeout")."""
    _child("swap_fail", lambda c: c.swaps_failed.labels(endpoint, reason), endpoint, reason).inc()


def observe_swap(endpoint: str, seconds: float) -> None:
    """Duration of one swap (load + warm-up + contract check + switch)."""
    _child("swap_dur", lambda c: c.swap_duration.labels(endpoint), endpoint).observe(seconds)


def set_loaded(endpoint: str, version: int | str, value: int) -> None:
    """1 when this worker serves ``endpoint`` at ``version``, 0 once that version is unloaded."""
    v = str(version)
    _child("loaded", lambda c: c.loaded.labels(endpoint, v), endpoint, v).set(value)


# -- pipelines ---------------------------------------------------------------------------------------------


def observe_step(pipeline: str, step: str, seconds: float) -> None:
    """Duration of one step of one pipeline run."""
    _child("step", lambda c: c.step_latency.labels(pipeline, step), pipeline, step).observe(seconds)


# -- monitoring (drift) ------------------------------------------------------------------------------------


def set_feature_drift(endpoint: str, version: int | str, feature: str, score: float) -> None:
    """The drift score of one feature over the monitoring window (``monitoring.drift``)."""
    v = str(version)
    _child("drift", lambda c: c.feature_drift.labels(endpoint, v, feature), endpoint, v, feature).set(score)


def set_drift_alert(endpoint: str, kind: str, firing: bool) -> None:
    _child("drift_alert", lambda c: c.drift_alert.labels(endpoint, kind), endpoint, kind).set(int(firing))


def set_estimated_accuracy(endpoint: str, version: int | str, value: float) -> None:
    v = str(version)
    _child("est_acc", lambda c: c.estimated_accuracy.labels(endpoint, v), endpoint, v).set(value)


# -- the registry connection (runner) ----------------------------------------------------------------------


def set_registry_contact(connected: bool, stale_seconds: float) -> None:
    """This worker's view of the registry: reachable or not, and how long since it last answered."""
    c = _get()
    c.registry_connected.set(1 if connected else 0)
    c.registry_stale.set(round(stale_seconds, 3))


# -- online experiments (experiments.loop) -----------------------------------------------------------------


def set_online_metric(endpoint: str, variant: str, metric: str, value: float) -> None:
    """The current online value of ``metric`` for one variant of the experiment on ``endpoint``."""
    child = _child("online", lambda c: c.online.labels(endpoint, variant, metric), endpoint, variant, metric)
    child.set(value)


def set_online_labelled(endpoint: str, variant: str, count: int) -> None:
    """How many of the variant's logged predictions have feedback joined."""
    _child("online_n", lambda c: c.online_labelled.labels(endpoint, variant), endpoint, variant).set(count)
