"""Predictors and helpers of the batching tests (tests/runner/test_batching*.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.runner.endpoint import Endpoint
from support.runner_fakes import CONTRACT, deployment


class RecordingPredictor(Predictor):
    """y = tag * 1000 + x[:, 0]; records every call's row count; rows with x < 0 make it raise.

    ``gate`` (optional) holds the first call until it is set, so a batch stays running.
    """

    def __init__(self, tag: int = 1, gate: threading.Event | None = None) -> None:
        self.contract = CONTRACT
        self.tag = tag
        self.gate = gate
        self.calls: list[int] = []
        self.started: list[float] = []
        self.entered = threading.Event()

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        self.started.append(time.monotonic())
        self.calls.append(len(columns["x"]))
        self.entered.set()
        if self.gate is not None and len(self.calls) == 1 and not self.gate.wait(10):
            raise RuntimeError("gate never opened")
        x = columns["x"]
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": (self.tag * 1000 + x[:, 0]).astype(np.int64)}


def rows(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array([[v, 0.0] for v in values])}


def endpoint(
    predictor: RecordingPredictor, size: int = 32, latency_ms: float = 50.0, observer: Any = None
) -> Endpoint:
    ep = Endpoint("ep", observer=observer)
    ep.configure({"max_batch_size": size, "max_latency_ms": latency_ms})
    ep.swap(deployment(predictor))  # type: ignore[arg-type]
    return ep


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(10):
            return await coro

    return asyncio.run(bounded())


class ThreadRecorder(RecordingPredictor):
    """Records the thread of each call; optionally sleeps (waits) or spins (uses CPU) first."""

    def __init__(self, sleep_s: float = 0.0, spin_s: float = 0.0) -> None:
        super().__init__()
        self.sleep_s, self.spin_s = sleep_s, spin_s
        self.threads: list[str] = []

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        self.threads.append(threading.current_thread().name)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        start = time.thread_time()
        while time.thread_time() - start < self.spin_s:
            pass
        return super().predict(columns)
