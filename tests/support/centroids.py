"""A digits classifier fitted in a millisecond (self-contained: saved with the python flavor)."""

import numpy as np


class Centroids:
    """Softmax over minus the squared distances to the class centroids."""

    thread_safe = True

    def __init__(self, temperature=40.0):
        self.temperature = temperature
        self.centroids = np.zeros((0, 0))

    def fit(self, x, y):
        self.centroids = np.stack([x[y == k].mean(axis=0) for k in range(int(y.max()) + 1)])
        return self

    def proba(self, x):
        d = ((np.asarray(x, dtype=np.float64)[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
        z = -d / self.temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def labels(self, x):
        return np.argmax(self.proba(x), axis=1)

    def predict(self, columns):
        probs = self.proba(columns["pixels"])
        return {"label": np.argmax(probs, axis=1).astype(np.int64), "probabilities": probs}
