"""User model classes for the python flavor tests (a module file, as a user would write one)."""

from __future__ import annotations

import numpy as np


class Scale:
    """Multiplies and offsets a vector input; keeps a helper object of this module in its state."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.offset = Offset(1.0)

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = columns["input"]
        return {"scaled": x * self.factor + self.offset.value, "total": x.sum(axis=1)}


class Offset:
    def __init__(self, value: float) -> None:
        self.value = value


class Shout:
    """Text in, text out; returns a bare array (served as ``output``); declares itself thread-safe."""

    thread_safe = True

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return np.array([str(t).upper() + "!" for t in columns["text"]], dtype=object)


class Rowwise(Shout):
    """Like :class:`Shout`, and declares that each row's answer depends on that row only."""

    batch_safe = True


class Broken:
    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("boom")
