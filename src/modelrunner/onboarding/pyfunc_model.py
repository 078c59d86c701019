"""An MLflow ``python_function`` model kept inside a bundle (python flavor).

The python flavor copies this module's source into the bundle and pickles the instance's state: the MLflow
model folder's files (bytes) and how contract fields map to the MLflow columns. Loading writes the files to a
private temporary folder and calls ``mlflow.pyfunc.load_model``, so mlflow must be importable where the
bundle is served. Self-contained on purpose (the flavor runs this file under a private module name).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np


class MlflowPyfunc:
    """``predict(columns) -> columns`` over a loaded MLflow pyfunc model."""

    def __init__(self, files: dict[str, bytes], originals: dict[str, str], tensor: bool) -> None:
        self.files = files  # path inside the MLflow folder -> bytes
        self.originals = originals  # contract field -> MLflow column name
        self.tensor = tensor  # a tensor-based signature: one array (or a dict of arrays), not a DataFrame
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "originals": self.originals, "tensor": self.tensor}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.files, self.originals, self.tensor = state["files"], state["originals"], state["tensor"]
        self._model = None

    def _loaded(self) -> Any:
        if self._model is None:
            try:
                import mlflow.pyfunc
            except ImportError as exc:
                raise RuntimeError(
                    "this MLflow python_function model needs mlflow: pip install mlflow-skinny"
                ) from exc
            folder = Path(tempfile.mkdtemp(prefix="mr-mlflow-"))
            weakref.finalize(self, shutil.rmtree, folder, True)
            for rel, data in self.files.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self._model = mlflow.pyfunc.load_model(str(folder))
        return self._model

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = self._loaded()
        if self.tensor:
            arrays = {self.originals.get(k, k): v for k, v in columns.items()}
            data: Any = next(iter(arrays.values())) if len(arrays) == 1 else arrays
        else:
            import pandas as pd

            data = pd.DataFrame(
                {self.originals.get(k, k): list(v) if v.ndim > 1 else v for k, v in columns.items()}
            )
        return _columns(model.predict(data))


def _name(label: Any) -> str:
    text = re.sub(r"[^0-9A-Za-z_]+", "_", str(label)).strip("_") or "output"
    return f"f_{text}" if text[0].isdigit() else text


def _columns(out: Any) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {_name(k): np.asarray(v) for k, v in out.items()}
    if type(out).__name__ == "DataFrame":
        if len(out.columns) == 1:
            return {"prediction": out.iloc[:, 0].to_numpy()}
        return {_name(c): out[c].to_numpy() for c in out.columns}
    if hasattr(out, "to_numpy"):
        return {"prediction": out.to_numpy()}
    return {"prediction": np.asarray(out)}
