"""A tiny python-flavor model for swap tests (self-contained: the bundle carries this file's source).

v1 (``extended=False``): ``total = sum(x)``. v2 (``extended=True``): also reads an optional ``scale`` input
and returns an extra ``double`` output, a compatible change for v1's clients.
"""

from __future__ import annotations

import numpy as np


class Scaler:
    thread_safe = True

    def __init__(self, extended: bool = False) -> None:
        self.extended = extended

    def predict(self, columns: dict) -> dict:
        total = np.asarray(columns["x"], dtype=np.float64).sum(axis=1)
        if not self.extended:
            return {"total": total}
        total = total * np.asarray(columns["scale"], dtype=np.float64)
        return {"total": total, "double": total * 2}
