"""Live figures of every endpoint (req/s, error rate, p99) from the server's Prometheus metrics.

The figures come from :func:`modelrunner.monitoring.metrics.render`, the text ``GET /metrics`` serves (all
workers merged). Rates need two readings: each call compares with the previous reading of this process
(at least ``MIN_WINDOW_S`` old) and returns ``None`` rates on the first call.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

MIN_WINDOW_S = 1.0
REQUESTS = "modelrunner_requests"
ERRORS = "modelrunner_request_errors"
LATENCY = "modelrunner_request_duration_seconds"


@dataclass
class Reading:
    """Totals per endpoint at one instant."""

    at: float
    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # endpoint -> le -> cumulative


@dataclass(frozen=True)
class Figures:
    """One endpoint's figures over the last window (or since start when there is no window yet)."""

    req_per_s: float | None
    error_rate: float | None
    p99_ms: float | None
    requests: float


def parse(text: str, at: float) -> Reading:
    """A :class:`Reading` of the Prometheus exposition ``text``."""
    from prometheus_client.parser import text_string_to_metric_families

    out = Reading(at=at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            endpoint = sample.labels.get("endpoint")
            if endpoint is None:
                continue
            if sample.name in (REQUESTS, REQUESTS + "_total"):
                out.requests[endpoint] = out.requests.get(endpoint, 0.0) + sample.value
            elif sample.name in (ERRORS, ERRORS + "_total"):
                out.errors[endpoint] = out.errors.get(endpoint, 0.0) + sample.value
            elif sample.name == LATENCY + "_bucket":
                le = float(sample.labels["le"])
                per = out.buckets.setdefault(endpoint, {})
                per[le] = per.get(le, 0.0) + sample.value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative histogram ``buckets`` (upper bound -> count), interpolated
    linearly inside the bucket as Prometheus' ``histogram_quantile`` does; None without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower


def _delta(new: dict[float, float], old: dict[float, float] | None) -> dict[float, float]:
    if not old:
        return dict(new)
    return {le: max(0.0, count - old.get(le, 0.0)) for le, count in new.items()}


def figures(new: Reading, old: Reading | None, endpoint: str) -> Figures:
    """The figures of ``endpoint`` between ``old`` and ``new`` (since start when ``old`` is None)."""
    req = new.requests.get(endpoint, 0.0)
    err = new.errors.get(endpoint, 0.0)
    rate = None
    if old is not None:
        req -= old.requests.get(endpoint, 0.0)
        err -= old.errors.get(endpoint, 0.0)
        rate = max(0.0, req) / max(new.at - old.at, 1e-9)
    total = req + err
    error_rate = err / total if total > 0 else (0.0 if old is not None else None)
    buckets = _delta(new.buckets.get(endpoint, {}), old.buckets.get(endpoint) if old else None)
    p99 = quantile(0.99, buckets)
    return Figures(
        req_per_s=rate,
        error_rate=error_rate,
        p99_ms=None if p99 is None else p99 * 1000,
        requests=new.requests.get(endpoint, 0.0),
    )


class LiveStats:
    """Keeps the previous reading of this process to turn totals into rates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._previous: Reading | None = None
        self._latest: Reading | None = None

    def read(self) -> tuple[Reading, Reading | None]:
        """A new reading and the one to compare it with (None the first time)."""
        from modelrunner.monitoring import metrics

        body, _ = metrics.render()
        now = time.monotonic()
        reading = parse(body.decode(), now)
        with self._lock:
            base = self._latest if self._latest and now - self._latest.at >= MIN_WINDOW_S else self._previous
            if self._latest is None or now - self._latest.at >= MIN_WINDOW_S:
                self._previous, self._latest = self._latest, reading
            return reading, base
