"""Onboarding test helpers: real MLflow model folders (written by mlflow-skinny) and a served registry."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np

# Requirements are given so MLflow does not infer them (that runs the model in a subprocess: ~20 s).
PIP = ["scikit-learn", "pandas"]


class AddColumns(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """An MLflow python model (module level: cloudpickle stores a reference): a + b; b is optional."""

    def predict(self, context, model_input, params=None):
        # (no annotations: MLflow reads type hints as a schema and warns on Any)
        b = model_input["b"].fillna(0.0) if "b" in model_input else 0.0
        return model_input["a"] + b


class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A tensor model: twice its (n, 3) float32 input."""

    def predict(self, context, model_input, params=None):
        return np.asarray(model_input) * 2


def write_pyfunc_tensor(path: Path) -> None:
    from mlflow.models import infer_signature

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            str(path),
            python_model=Doubler(),
            signature=infer_signature(x, x * 2),
            input_example=x,
            pip_requirements=["numpy"],
        )


def write_pyfunc(path: Path) -> None:
    """A python_function-only model with a column signature whose column ``b`` is optional."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("double", "a"), ColSpec("double", "b", required=False)])
    signature = ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))
    import pandas as pd

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            str(path),
            python_model=AddColumns(),
            signature=signature,
            input_example=example,
            pip_requirements=["pandas"],
        )


def iris_frame() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    return x, y


def write_sklearn_frame(path: Path, fmt: str = "cloudpickle") -> Any:
    """A LogisticRegression fitted on a DataFrame with spaced column names, a run id and metadata."""
    import mlflow.sklearn
    from mlflow.models import Model, infer_signature
    from sklearn.linear_model import LogisticRegression

    x, y = iris_frame()
    model = LogisticRegression(max_iter=300).fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format=fmt,
            pip_requirements=PIP,
            signature=infer_signature(x, model.predict(x)),
            input_example=x[:3],
            mlflow_model=Model(run_id="0123456789abcdef"),
            metadata={"team": "risk"},
        )
    return model


def write_sklearn_tensor(path: Path) -> Any:
    """A LogisticRegression on a numpy matrix, pickle format: a tensor signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    x, y = iris_frame()
    xn = x.to_numpy()
    model = LogisticRegression(max_iter=300).fit(xn, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format="pickle",
            pip_requirements=PIP,
            signature=infer_signature(xn, model.predict_proba(xn)),
            input_example=xn[:2],
        )
    return model


def post(url: str, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/endpoints/{endpoint}/predict", json=body, timeout=30)


@contextmanager
def served(home: Path, endpoint: str, ref: str) -> Iterator[str]:
    """The registry under ``home`` served for real on 127.0.0.1 with ``endpoint`` -> ``ref``."""
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.settings import Settings
    from support.server_helpers import ServerThread

    settings = Settings(home=home, poll_interval_s=0.05, heartbeat_s=0.2)
    registry = Registry(settings)
    registry.set_endpoint(endpoint, ref)
    runtime = Runtime(registry, settings)
    try:
        with ServerThread(create_app(runtime, settings)) as server:
            yield server.url
    finally:
        registry.close()


def close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=1e-9))
