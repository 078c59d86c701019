"""A digits classifier with a held-out split, and sketches of windows of its traffic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from modelrunner.contract import Contract, Field
from modelrunner.contract.types import DType
from modelrunner.monitoring.profile import Profile, build_profile
from modelrunner.monitoring.sketch import Sketch
from support.centroids import Centroids

CONTRACT = Contract.build(
    [Field(name="pixels", dtype=DType.FLOAT64, shape=(64,))],
    [Field(name="label", dtype=DType.INT64), Field(name="probabilities", dtype=DType.FLOAT64, shape=(10,))],
)


@dataclass(frozen=True)
class Digits:
    model: Centroids
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray

    def outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": self.model.labels(x), "probabilities": self.model.proba(x)}

    def profile(self) -> Profile:
        x = self.x[self.train]
        return build_profile(CONTRACT, {"pixels": x}, self.outputs(x), self.y[self.train])

    def sketch(self, profile: Profile, x: np.ndarray) -> Sketch:
        binner = profile.binner()
        out = self.outputs(x)
        conf, conf_rows = binner.confidence(out)
        return Sketch(binner.count({"pixels": x}, out), len(x), conf, conf_rows)


@cache
def digits() -> Digits:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1100], order[1100:]
    return Digits(Centroids().fit(x[train], y[train]), x, y, train, test)


def shifted(x: np.ndarray, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    """Noisier digits: what a new scanner would send."""
    return np.clip(x + rng.normal(0, noise, x.shape), 0, 16)


def save_digits(path: Any, *, training: bool = True) -> Any:
    """The digits classifier saved as a python-flavor bundle (with its training data unless told not)."""
    from modelrunner.bundle import save_model

    d = digits()
    data = {"pixels": d.x[d.train], "label": d.y[d.train]} if training else None
    return save_model(
        d.model,
        path,
        flavor="python",
        name="digits",
        sample={"pixels": d.x[:2]},
        license="MIT",
        training_data=data,
    )


def feed(registry: Any, endpoint: str, x: np.ndarray, now: float, worker: str = "w0") -> None:
    """What a worker serving ``endpoint`` records and flushes for the rows ``x`` at time ``now``."""
    from modelrunner.monitoring.monitor import Monitor

    target = registry.resolve(registry.endpoint(endpoint).target)
    monitor = Monitor(registry, worker)
    observe = monitor.drift_hook_for(endpoint, target)
    for start in range(0, len(x), 50):
        rows = x[start : start + 50]
        observe({"pixels": rows}, digits().outputs(rows))
    monitor.flush(now)
