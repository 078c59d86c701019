"""Speed, measured two ways: in-process (the predictor called directly) and served (real HTTP on loopback).

In-process: ``inproc_p50_ms`` / ``inproc_p99_ms`` of single-row ``predict`` calls, and
``inproc_rows_per_s`` predicting the whole data set in batches. Served: ``p50_ms`` / ``p99_ms`` / ``qps`` /
``error_rate`` of one-row requests fired at a fixed concurrency over keep-alive HTTP/1.1 connections (what
clients see; see ``loadgen``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from modelrunner.bundle.predictor import Predictor
from modelrunner.contract.codecs import to_jsonable
from modelrunner.errors import InvalidArgument
from modelrunner.evaluation.loadgen import run_load

Columns = dict[str, np.ndarray]
Progress = Callable[[int], None]


@dataclass
class LatencyStats:
    """Latency samples (ms) and what they add up to."""

    samples_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0

    @property
    def count(self) -> int:
        return len(self.samples_ms) + self.errors

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q)) if self.samples_ms else float("nan")

    @property
    def per_second(self) -> float:
        return len(self.samples_ms) / self.seconds if self.seconds > 0 else float("nan")


def rows_of(columns: Mapping[str, np.ndarray], start: int, stop: int) -> Columns:
    return {k: v[start:stop] for k, v in columns.items()}


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def predict_all(
    predictor: Predictor,
    columns: Mapping[str, np.ndarray],
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> tuple[Columns, float]:
    """Predict every row in batches; return the concatenated outputs and rows per second."""
    n = _rows(columns)
    parts: list[Columns] = []
    started = time.perf_counter()
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        parts.append(predictor.predict(rows_of(columns, start, stop)))
        if progress is not None:
            progress(stop - start)
    elapsed = time.perf_counter() - started
    outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    return outputs, (n / elapsed if elapsed > 0 else float("nan"))


def single_row_latency(
    predictor: Predictor,
    columns: Mapping[str, np.ndarray],
    *,
    calls: int = 200,
    max_seconds: float = 5.0,
    warmup: int = 5,
    progress: Progress | None = None,
) -> LatencyStats:
    """Time ``calls`` one-row ``predict`` calls (cycling through the rows), within ``max_seconds``."""
    n = _rows(columns)
    singles = [rows_of(columns, i, i + 1) for i in range(min(n, calls))]
    for row in singles[:warmup]:
        predictor.predict(row)
    stats = LatencyStats()
    deadline = time.perf_counter() + max_seconds
    started = time.perf_counter()
    for i in range(calls):
        t0 = time.perf_counter()
        predictor.predict(singles[i % len(singles)])
        stats.samples_ms.append((time.perf_counter() - t0) * 1000)
        if progress is not None:
            progress(1)
        if t0 > deadline:
            break
    stats.seconds = time.perf_counter() - started
    return stats


def inprocess_metrics(stats: LatencyStats, rows_per_s: float) -> dict[str, float]:
    return {
        "inproc_p50_ms": stats.percentile(50),
        "inproc_p99_ms": stats.percentile(99),
        "inproc_rows_per_s": rows_per_s,
    }


def served_metrics(stats: LatencyStats) -> dict[str, float]:
    return {
        "p50_ms": stats.percentile(50),
        "p99_ms": stats.percentile(99),
        "qps": stats.per_second,
        "error_rate": stats.errors / stats.count if stats.count else float("nan"),
    }


# --- served: a bounded HTTP load at fixed concurrency ----------------------------------------------


def request_bodies(columns: Mapping[str, np.ndarray], count: int) -> list[bytes]:
    """One-row JSON request bodies ``{"inputs": {field: [row]}}`` for the native predict route (bytes as
    base64, as ``contract.codecs`` expects)."""
    n = _rows(columns)
    if n == 0:
        raise InvalidArgument("no rows to send")
    return [orjson.dumps({"inputs": to_jsonable(rows_of(columns, i, i + 1))}) for i in range(min(n, count))]


@dataclass(frozen=True)
class LoadSpec:
    """A bounded load: ``requests`` in all (after ``warmup``), ``concurrency`` in flight, at most
    ``max_seconds`` of sending, each request at most ``timeout_s``."""

    requests: int = 500
    concurrency: int = 8
    warmup: int = 20
    max_seconds: float = 30.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.concurrency < 1 or self.warmup < 0:
            raise InvalidArgument("load: requests and concurrency must be at least 1, warmup at least 0")


def http_load(
    url: str, bodies: Sequence[bytes], spec: LoadSpec | None = None, progress: Progress | None = None
) -> LatencyStats:
    """POST ``bodies`` (cycled) to ``url`` at fixed concurrency; a bounded loop that stops by itself."""
    if not bodies:
        raise InvalidArgument("no request bodies to send")
    spec = spec or LoadSpec()
    if spec.warmup:
        asyncio.run(
            run_load(
                url,
                bodies,
                requests=spec.warmup,
                concurrency=spec.concurrency,
                max_seconds=spec.max_seconds,
                timeout=spec.timeout_s,
            )
        )
    tally, seconds = asyncio.run(
        run_load(
            url,
            bodies,
            requests=spec.requests,
            concurrency=spec.concurrency,
            max_seconds=spec.max_seconds,
            timeout=spec.timeout_s,
            progress=progress,
        )
    )
    return LatencyStats(samples_ms=tally.samples_ms, seconds=seconds, errors=tally.errors)
