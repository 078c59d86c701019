"""Self-contained python-flavor models for runner integration tests (saved as source + pickled state).

``fail`` only fires in a process with ``TOY_FAILURES=armed`` (the server under test), so saving — which
loads the bundle back to check it — works: ``"load"`` raises while loading, ``"warmup"`` raises on every
predict (the warm-up included), ``"data"`` on every predict with a non-zero input (its zero example input,
the warm-up, passes).
"""

import os

import numpy as np


def _armed():
    return os.environ.get("TOY_FAILURES") == "armed"


class Tagged:
    """Answers ``y = tag`` for every row; may hold ``size_mb`` of weights to make swaps cost memory."""

    thread_safe = True

    def __init__(self, tag, size_mb=0, fail=None):
        self.tag = tag
        self.fail = fail
        self.weights = np.ones(size_mb * 1024 * 1024 // 8) if size_mb else None
        self.loaded = False

    def __setstate__(self, state):
        if state.get("fail") == "load" and _armed():
            raise RuntimeError("weights file is corrupt")
        self.__dict__.update(state)
        self.loaded = True

    def predict(self, columns):
        if self.loaded and self.fail == "warmup" and _armed():
            raise FloatingPointError("model diverged on its example input")
        if self.loaded and self.fail == "data" and _armed() and any(np.any(c) for c in columns.values()):
            raise FloatingPointError("model diverged on real data")
        n = len(next(iter(columns.values())))
        return {"y": np.full(n, self.tag, dtype=np.int64)}


class Sleepy:
    """Answers ``y = 1`` per row after sleeping ``x[0][0]`` seconds (a slow model the request steers; its
    zero example input — saving, warm-up — does not sleep). Sleeping holds a predict thread, as a slow model
    waiting on I/O or native code does."""

    thread_safe = True

    def predict(self, columns):
        import time

        x = columns["x"]
        if len(x) and x[0][0] > 0:
            time.sleep(min(float(x[0][0]), 30.0))
        return {"y": np.ones(len(x), dtype=np.int64)}
