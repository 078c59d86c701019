"""The demo's client side: one thread sending requests from the current source, one sending the labels back a
little later (the feedback route), and a record of every answer."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class Answer:
    t: float
    phase: str
    ok: bool
    correct: bool
    variant: str
    version: str


@dataclass
class Traffic:
    url: str
    endpoint: str = "digits"
    lag_s: float = 0.5
    answers: list[Answer] = field(default_factory=list)
    failed: int = 0
    sent_by_phase: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._source: tuple[str, Iterator[tuple[np.ndarray, int]]] | None = None
        self._pending: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, daemon=True, name="traffic"),
            threading.Thread(target=self._feedback, daemon=True, name="feedback"),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def use(self, phase: str, rows: np.ndarray, labels: np.ndarray) -> None:
        """Send ``rows`` (cycled) from now on, recorded under ``phase``."""
        cycle = itertools.cycle(zip(rows, labels, strict=True))
        with self._lock:
            self._source = (phase, cycle)
            self.sent_by_phase.setdefault(phase, 0)

    def sent(self, phase: str) -> int:
        with self._lock:
            return self.sent_by_phase.get(phase, 0)

    def wait_sent(self, phase: str, n: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sent(phase) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.sent(phase)} of {n} requests sent in phase {phase}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._flush_feedback(everything=True)

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                with self._lock:
                    source = self._source
                if source is None:
                    time.sleep(0.01)
                    continue
                phase, rows = source
                x, label = next(rows)
                self._one(client, phase, x, int(label))

    def _one(self, client: httpx.Client, phase: str, x: np.ndarray, label: int) -> None:
        t = time.time()
        try:
            body = {"inputs": {"input": [x.tolist()]}}
            r = client.post(f"/v1/endpoints/{self.endpoint}/predict", json=body)
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        if not ok:
            with self._lock:
                self.failed += 1
                self.answers.append(Answer(t, phase, False, False, "", ""))
                self.sent_by_phase[phase] += 1
            return
        predicted = int(r.json()["outputs"]["label"][0])
        answer = Answer(
            t,
            phase,
            True,
            predicted == label,
            r.headers.get("x-modelrunner-variant", ""),
            r.headers.get("x-modelrunner-version", ""),
        )
        with self._lock:
            self.answers.append(answer)
            self.sent_by_phase[phase] += 1
            self._pending.append((t, r.headers["x-request-id"], label))

    def _feedback(self) -> None:
        while not self._stop.wait(0.3):
            self._flush_feedback()

    def _flush_feedback(self, everything: bool = False) -> None:
        cutoff = time.time() - (0 if everything else self.lag_s)
        with self._lock:
            due = [p for p in self._pending if p[0] <= cutoff]
            self._pending = [p for p in self._pending if p[0] > cutoff]
        if not due:
            return
        items = [{"request_id": rid, "target": label} for _, rid, label in due]
        try:
            httpx.post(f"{self.url}/v1/endpoints/{self.endpoint}/feedback", json={"items": items}, timeout=30)
        except httpx.HTTPError:
            with self._lock:  # tried again at the next tick
                self._pending.extend(due)

    def accuracy(self, phase: str, since: float = 0.0) -> float:
        with self._lock:
            rows = [a.correct for a in self.answers if a.phase == phase and a.ok and a.t >= since]
        return float(np.mean(rows)) if rows else float("nan")
