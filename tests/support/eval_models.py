"""Small models for the evaluation tests (saved with the python flavor, which copies this file)."""

from __future__ import annotations

import numpy as np


class Broken:
    """Answers the warm-up-sized batches, then fails like a buggy model."""

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = columns["input"]
        if len(x) > 3:
            raise RuntimeError("model bug")
        return {"label": np.zeros(len(x), dtype=np.int64)}
