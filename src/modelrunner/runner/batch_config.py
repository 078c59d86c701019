"""An endpoint's batching options (``batch``, ``max_batch_size``, ``max_latency_ms``): read, checked and
described; :mod:`runner.batching` batches by them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelrunner.errors import InvalidArgument
from modelrunner.runner.limits import check_number

MAX_BATCH_SIZE = 65_536
MAX_LATENCY_MS = 10_000.0
DEFAULT_BATCH_SIZE = 64
DEFAULT_LATENCY_MS = 5.0
BatchMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class BatchConfig:
    """An endpoint's batching settings.

    ``mode``: ``auto`` (the default: on for deployments whose flavor is batch-safe, see
    :attr:`~modelrunner.bundle.predictor.Predictor.batch_safe`), ``on`` (every deployment: the endpoint's
    config asked for it) or ``off``. ``max_batch_size`` is 1 when off.
    """

    max_batch_size: int = DEFAULT_BATCH_SIZE
    max_latency_ms: float = DEFAULT_LATENCY_MS
    mode: BatchMode = "auto"

    @property
    def enabled(self) -> bool:
        """Batching may run (``on``, or ``auto`` for batch-safe deployments)."""
        return self.max_batch_size > 1

    def applies(self, batch_safe: bool) -> bool:
        """True when requests to a deployment (batch-safe or not) are batched."""
        return self.mode == "on" or (self.mode == "auto" and batch_safe)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> BatchConfig:
        """Read ``{"batch": true|false|null, "max_batch_size": 32, "max_latency_ms": 5}`` of an endpoint
        config (InvalidArgument naming a bad option).

        ``batch: false`` turns batching off; otherwise a ``max_batch_size`` given wins (0 or 1: off, more:
        on for every deployment); ``batch: true`` turns it on with the default size for every deployment;
        nothing given: ``auto``, on for batch-safe flavors. ``null`` is the same as not given.
        """
        config = config or {}
        switch = config.get("batch")
        size = config.get("max_batch_size")
        latency = config.get("max_latency_ms")
        latency = DEFAULT_LATENCY_MS if latency is None else latency
        if switch is not None and not isinstance(switch, bool):
            raise InvalidArgument(f"batch must be true, false or null, got {switch!r}", field="batch")
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_BATCH_SIZE
        ):
            raise InvalidArgument(
                f"max_batch_size must be an integer from 0 (off) to {MAX_BATCH_SIZE}, got {size!r}",
                field="max_batch_size",
            )
        check_number("max_latency_ms", latency, MAX_LATENCY_MS)
        if switch is True and size is not None and size <= 1:
            raise InvalidArgument(
                f"batch: true needs max_batch_size over 1 (or none: {DEFAULT_BATCH_SIZE}), got {size}",
                field="max_batch_size",
            )
        if switch is False or (size is not None and size <= 1):
            return cls(1, float(latency), "off")
        mode: BatchMode = "auto" if switch is None and size is None else "on"
        return cls(DEFAULT_BATCH_SIZE if size is None else size, float(latency), mode)

    def to_config(self) -> dict[str, Any]:
        size, latency = self.max_batch_size, self.max_latency_ms
        return {"mode": self.mode, "max_batch_size": size, "max_latency_ms": latency}

    def describe(self) -> str:
        """One line for logs and the CLI: ``batching off``, ``batching max_batch_size=32 max_latency_ms=5``,
        ``batching auto (batch-safe flavors) max_batch_size=64 max_latency_ms=5``."""
        if self.mode == "off":
            return "batching off"
        which = "auto (batch-safe flavors) " if self.mode == "auto" else ""
        return f"batching {which}max_batch_size={self.max_batch_size} max_latency_ms={self.max_latency_ms:g}"
