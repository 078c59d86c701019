"""Save a joblib model as an MLflow model folder (run inside MLflow's own environment).

``python mlflow_prepare.py MODEL.joblib OUT_DIR``: ``mlflow.sklearn.save_model`` with a signature inferred
from the digits data, so ``mlflow models serve --env-manager local`` accepts ``{"inputs": [[...]]}``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import joblib
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_digits


def main(model_path: str, out: str) -> None:
    model = joblib.load(model_path)
    x = load_digits().data[:5]
    target = Path(out)
    if target.exists():
        shutil.rmtree(target)
    mlflow.sklearn.save_model(
        model, str(target), signature=infer_signature(x, model.predict(x)), serialization_format="cloudpickle"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
