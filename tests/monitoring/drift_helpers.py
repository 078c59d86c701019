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

CONTRACT = Contract.build(
    [Field(name="pixels", dtype=DType.FLOAT64, shape=(64,))],
    [Field(name="label", dtype=DType.INT64), Field(name="probabilities", dtype=DType.FLOAT64, shape=(10,))])


@dataclass(frozen=True)
class Digits:
    model: Any
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray

    def outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": self.model.predict(x), "probabilities": self.model.predict_proba(x)}

    def profile(self) -> Profile:
        x = self.x[self.train]
        return build_profile(CONTRACT, {"pixels": x}, self.outputs(x), self.y[self.train])

    def sketch(self, profile: Profile, x: np.ndarray) -> Sketch:
        binner = profile.binner()
        out = self.outputs(x)
        conf, conf_rows = binner.confidence(out)
        return Sketch(binner.count({"pixels": x}, out), len(x), conf, conf_rows)


class Centroids:
    """A classifier fitted in a millisecond: softmax over minus the squared distances to class centroids."""

    def __init__(self, temperature: float = 40.0) -> None:
        self.temperature = temperature
        self.centroids = np.zeros((0, 0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> Centroids:
        self.centroids = np.stack([x[y == k].mean(axis=0) for k in range(int(y.max()) + 1)])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        d = ((np.asarray(x, dtype=np.float64)[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
        z = -d / self.temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.predict_proba(x), axis=1)

    def __call__(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The python flavor's entry point: columns in, columns out."""
        return {"label": self.predict(pixels), "probabilities": self.predict_proba(pixels)}


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
