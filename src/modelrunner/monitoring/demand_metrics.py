"""Metrics of on-demand endpoints (``runner/ondemand.py``): cold loads, hits and misses, evictions, what is
loaded. Recorded into the worker's collectors (:mod:`modelrunner.monitoring.metrics`, multiprocess-safe).

* ``modelrunner_ondemand_requests_total{result="hit"|"miss"}``: requests to an on-demand endpoint that found
  it loaded (hit) or waited for a load (miss); hit rate = hit / (hit + miss).
* ``modelrunner_ondemand_load_seconds``: cold-load latency (resolve + fetch + load + warm-up), histogram.
* ``modelrunner_ondemand_evictions_total{reason="max_loaded"|"memory_budget"|"unload"}``.
* ``modelrunner_ondemand_loaded`` and ``modelrunner_ondemand_bytes``: on-demand models loaded and their
  estimated footprint, summed over live workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from modelrunner.monitoring import metrics

LOAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DemandObserver(Protocol):
    """What on-demand loading reports (Prometheus in a worker, nothing in tests unless given)."""

    def lookup(self, hit: bool) -> None:
        """A request to an on-demand endpoint found it loaded (``hit``) or waited for a load."""

    def loaded(self, seconds: float) -> None:
        """A cold load finished in ``seconds``."""

    def evicted(self, reason: str) -> None:
        """An on-demand endpoint was unloaded (``max_loaded``, ``memory_budget``, ``unload``)."""

    def holding(self, count: int, nbytes: int) -> None:
        """This worker now holds ``count`` on-demand models, ``nbytes`` estimated."""


class NullDemandObserver:
    """Records nothing."""

    def lookup(self, hit: bool) -> None:
        pass

    def loaded(self, seconds: float) -> None:
        pass

    def evicted(self, reason: str) -> None:
        pass

    def holding(self, count: int, nbytes: int) -> None:
        pass


@dataclass(frozen=True)
class _DemandCollectors:
    requests: Any
    load_seconds: Any
    evictions: Any
    loaded: Any
    nbytes: Any


def _make(c: Any) -> _DemandCollectors:
    reg = c.registry
    return _DemandCollectors(
        requests=Counter(
            "modelrunner_ondemand_requests",
            "Requests to on-demand endpoints, by whether the model was loaded (hit) or not (miss).",
            ["result"],
            registry=reg,
        ),
        load_seconds=Histogram(
            "modelrunner_ondemand_load_seconds",
            "Cold-load latency of on-demand endpoints (resolve, fetch, load, warm-up), in seconds.",
            buckets=LOAD_BUCKETS,
            registry=reg,
        ),
        evictions=Counter(
            "modelrunner_ondemand_evictions",
            "On-demand endpoints unloaded, by reason.",
            ["reason"],
            registry=reg,
        ),
        loaded=Gauge(
            "modelrunner_ondemand_loaded",
            "On-demand models loaded (summed over live workers).",
            multiprocess_mode="livesum",
            registry=reg,
        ),
        nbytes=Gauge(
            "modelrunner_ondemand_bytes",
            "Estimated footprint of the loaded on-demand models in bytes (summed over live workers).",
            multiprocess_mode="livesum",
            registry=reg,
        ),
    )


def _collectors() -> _DemandCollectors:
    found: _DemandCollectors = metrics._child("ondemand", _make)  # noqa: SLF001 - same package, rebuilt on reset
    return found


class PrometheusDemandObserver:
    """:class:`DemandObserver` recording into the worker's Prometheus collectors."""

    __slots__ = ()

    def lookup(self, hit: bool) -> None:
        _collectors().requests.labels("hit" if hit else "miss").inc()

    def loaded(self, seconds: float) -> None:
        _collectors().load_seconds.observe(seconds)

    def evicted(self, reason: str) -> None:
        _collectors().evictions.labels(reason).inc()

    def holding(self, count: int, nbytes: int) -> None:
        c = _collectors()
        c.loaded.set(count)
        c.nbytes.set(nbytes)


PROMETHEUS_DEMAND = PrometheusDemandObserver()
