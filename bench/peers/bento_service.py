"""The BentoML service of the benchmark: the joblib model named by ``BENCH_MODEL``, 2 workers, no access log.

``bentoml serve bento_service:Digits`` (BentoML 1.4 service API; run inside BentoML's own environment).
"""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=2, logging={"access": {"enabled": False}})
class Digits:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api
    def predict(self, instances: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(instances))
