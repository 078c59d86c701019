"""The prediction log of one worker: rows buffered in memory, written in batches off the event loop.

A request adds one tuple to a list (no I/O, no JSON: :meth:`PredictionLog.add` is all the hot path pays);
a background task writes the buffer every ``prediction_log_flush_s`` seconds, or as soon as
``prediction_log_batch`` rows wait, with one ``registry.log_predictions`` insert in a thread (the columns are
turned into JSON there too). While the database is down the buffer keeps up to ``prediction_log_buffer``
rows; more are dropped and counted (``modelrunner_prediction_log_dropped``). The same task applies the
retention (``prediction_retention_s`` / ``prediction_retention_rows``) every ``prediction_prune_s``.

What an endpoint logs is its :class:`LogConfig` (the endpoint config keys ``log_predictions``,
``log_inputs``, ``log_bytes_inputs``): by default only while an experiment runs on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelrunner.background import PeriodicTask
from modelrunner.errors import InvalidArgument, ModelrunnerError

log = logging.getLogger(__name__)

LOG_KEYS = ("log_predictions", "log_inputs", "log_bytes_inputs")


@dataclass(frozen=True)
class LogConfig:
    """``log_predictions``: True logs every request, False none, None (default) only during an
    experiment; ``log_inputs``: the fraction of logged requests whose inputs are logged too (0 = none);
    ``log_bytes_inputs``: bytes inputs are left out of logged inputs unless True."""

    enabled: bool | None = None
    inputs: float = 0.0
    bytes_inputs: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> LogConfig:
        config = config or {}
        enabled = config.get("log_predictions")
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidArgument(
                f"log_predictions must be true, false or null (during experiments), got {enabled!r}",
                field="log_predictions",
            )
        fraction = config.get("log_inputs", 0.0)
        if fraction is None or fraction is False:
            fraction = 0.0
        if fraction is True:
            fraction = 1.0
        if not isinstance(fraction, int | float) or not 0.0 <= float(fraction) <= 1.0:
            raise InvalidArgument(
                f"log_inputs must be a fraction from 0 to 1 (or true/false), got {fraction!r}",
                field="log_inputs",
            )
        raw_bytes = config.get("log_bytes_inputs", False)
        if not isinstance(raw_bytes, bool):
            raise InvalidArgument(
                f"log_bytes_inputs must be true or false, got {raw_bytes!r}", field="log_bytes_inputs"
            )
        return cls(enabled, float(fraction), raw_bytes)

    def active(self, experiment: bool) -> bool:
        return self.enabled if self.enabled is not None else experiment

    def sample_inputs(self) -> bool:
        return self.inputs > 0.0 and (self.inputs >= 1.0 or random.random() < self.inputs)


# (endpoint, request_id, variant, model, version, unix time, latency_ms, outputs, experiment_id, error,
#  inputs, bytes_inputs)
Pending = tuple[str, str, str, str, "int | None", float, float, Any, "str | None", "str | None", Any, bool]


class PredictionLog:
    """Buffered, batched prediction log of one worker (see the module docstring)."""

    def __init__(
        self,
        registry: Any,
        *,
        flush_s: float = 1.0,
        batch: int = 500,
        buffer: int = 50_000,
        max_rows: int = 1000,
        retention_s: float | None = None,
        retention_rows: int | None = None,
        prune_s: float = 300.0,
    ) -> None:
        self.registry = registry
        self.flush_s, self.batch, self.buffer, self.max_rows = flush_s, batch, buffer, max_rows
        self.retention_s, self.retention_rows, self.prune_s = retention_s, retention_rows, prune_s
        self._rows: list[Pending] = []
        self._lock = asyncio.Lock()
        self._writer = PeriodicTask(
            self._flush_and_prune,
            lambda: self.flush_s,
            name="prediction-log",
            failure="prediction log flush failed",
            logger=log,
        )
        self._pruned_at = time.monotonic()
        self._written_since_prune = 0
        self.written = 0
        self.dropped = 0

    @classmethod
    def from_settings(cls, registry: Any, settings: Any) -> PredictionLog:
        return cls(
            registry,
            flush_s=settings.prediction_log_flush_s,
            batch=settings.prediction_log_batch,
            buffer=settings.prediction_log_buffer,
            max_rows=settings.prediction_log_max_rows,
            retention_s=settings.prediction_retention_s,
            retention_rows=settings.prediction_retention_rows,
            prune_s=settings.prediction_prune_s,
        )

    def add(
        self,
        endpoint: str,
        request_id: str,
        variant: str,
        model: str,
        version: int | None,
        latency_ms: float,
        outputs: Any,
        *,
        experiment_id: str | None = None,
        error: str | None = None,
        inputs: Any = None,
        bytes_inputs: bool = False,
    ) -> None:
        """Buffer one answered (or failed) request; ``outputs``/``inputs`` are columns, converted later."""
        if len(self._rows) >= self.buffer:
            self._drop(endpoint, 1)
            return
        self._rows.append(
            (
                endpoint,
                request_id,
                variant,
                model,
                version,
                time.time(),
                latency_ms,
                outputs,
                experiment_id,
                error,
                inputs,
                bytes_inputs,
            )
        )
        if len(self._rows) >= self.batch:
            self._writer.wake()

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        """Stop the background task and write what is still buffered."""
        await self._writer.stop()
        await self.flush()

    async def _flush_and_prune(self) -> None:
        await self.flush()
        await self._maybe_prune()

    async def flush(self) -> int:
        """Write every buffered row now (after a write in progress); returns the rows written."""
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                written = await asyncio.to_thread(self._write, rows)
            except ModelrunnerError as exc:
                self._requeue(rows, exc)
                return 0
            self.written += written
            self._written_since_prune += written
            return written

    def _write(self, rows: list[Pending]) -> int:
        records = [self._record(r) for r in rows]
        return int(self.registry.log_predictions(records))

    def _record(self, row: Pending) -> Any:
        from modelrunner.registry.types import PredictionRecord

        (
            endpoint,
            rid,
            variant,
            model,
            version,
            ts,
            latency_ms,
            outputs,
            exp_id,
            error,
            inputs,
            bytes_inputs,
        ) = row
        return PredictionRecord(
            request_id=rid,
            endpoint=endpoint,
            variant=variant,
            model=model,
            version=version,
            ts=datetime.fromtimestamp(ts, UTC),
            latency_ms=round(latency_ms, 3),
            outputs=self._json(outputs, True),
            experiment_id=exp_id,
            error=error,
            inputs=self._json(inputs, bytes_inputs) if inputs is not None else None,
        )

    def _json(self, columns: Any, keep_bytes: bool) -> Any:
        from modelrunner.contract.codecs import to_jsonable

        if columns is None:
            return None
        cols = {k: v for k, v in columns.items() if keep_bytes or not _is_bytes(v)}
        if any(len(v) > self.max_rows for v in cols.values() if getattr(v, "ndim", 0)):
            return None
        return to_jsonable(cols)

    def _requeue(self, rows: list[Pending], exc: BaseException) -> None:
        room = self.buffer - len(self._rows)
        kept = rows[: max(0, room)]
        self._rows[:0] = kept
        for endpoint in {r[0] for r in rows[len(kept) :]}:
            self._drop(endpoint, sum(1 for r in rows[len(kept) :] if r[0] == endpoint))
        log.warning(
            "could not write %d logged prediction(s) (%s); %d kept for the next attempt",
            len(rows),
            exc,
            len(kept),
        )

    def _drop(self, endpoint: str, count: int) -> None:
        from modelrunner.monitoring import metrics

        self.dropped += count
        metrics.log_dropped(endpoint, count)

    async def _maybe_prune(self) -> None:
        if not self._written_since_prune or time.monotonic() - self._pruned_at < self.prune_s:
            return
        self._pruned_at, self._written_since_prune = time.monotonic(), 0
        removed = await asyncio.to_thread(
            self.registry.prune_predictions, older_than_s=self.retention_s, keep_rows=self.retention_rows
        )
        if removed:
            log.info("prediction log retention removed %d row(s)", removed)


def _is_bytes(column: Any) -> bool:
    arr = np.asarray(column)
    if arr.dtype.kind == "S":
        return True
    if arr.dtype.kind != "O" or arr.size == 0:
        return False
    return isinstance(arr.flat[0], bytes | bytearray)
