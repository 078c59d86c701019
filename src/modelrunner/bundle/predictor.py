"""The loaded thing: ``predict(columns) -> columns`` on a batch, columnar numpy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelrunner.contract import Contract
from modelrunner.contract.tabular import columns_frame, frame_inputs, is_frame
from modelrunner.contract.validate import batch_size, validate_batch

Columns = dict[str, np.ndarray]


class Predictor(ABC):
    """A model ready to answer. ``predict`` must be safe to call from several threads at once."""

    contract: Contract
    batch_safe: bool = False
    """Each row's answer depends on that row only, so concurrent requests may be merged into one call
    (the runner batches such models by default). Set by the flavor (docs/runner.md)."""

    @abstractmethod
    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        """Predict on a batch: ``{input field: array (n, *shape)}`` -> ``{output field: array (n, ...)}``."""

    def predict_valid(self, columns: Columns) -> Columns:
        """Predict on a batch already validated against ``contract.inputs`` (``validate_batch``: exactly
        those fields, coerced): the runner validates each request once, then calls this. By default the
        same as :meth:`predict`; a predictor that checks its inputs itself skips that check here."""
        return self.predict(columns)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the model holds (memory, sessions). Called once, after the last request."""


PredictFn = Callable[[Columns], Mapping[str, Any]]


class FunctionPredictor(Predictor):
    """A :class:`Predictor` over a flavor's predict function: checks inputs, normalises outputs.

    Inputs are checked with ``contract.validate.validate_batch`` (extra columns are dropped, safe casts
    applied, optional fields filled). Outputs are numpy arrays with ``n`` rows; numpy unicode/bytes arrays
    become ``object`` arrays (the columnar convention for strings).
    """

    def __init__(
        self,
        contract: Contract,
        fn: PredictFn,
        on_close: Callable[[], None] | None = None,
        *,
        batch_safe: bool = False,
    ) -> None:
        self.contract = contract
        self.batch_safe = batch_safe
        self._fn = fn
        self._on_close = on_close

    def predict(self, columns: Mapping[str, np.ndarray], *, as_frame: bool | None = None) -> Any:
        """Predict on a batch of columns, or on a pandas DataFrame (a column per input, labelled with the
        field's name or the column label it was saved from). The answer is a dict of output columns, or a
        DataFrame (on the input's index) when given one or when ``as_frame`` is true."""
        index = None
        if is_frame(columns):
            index = columns.index  # type: ignore[attr-defined]
            columns = frame_inputs(columns, self.contract.inputs)
            as_frame = True if as_frame is None else as_frame
        result = self._predict(columns)
        return columns_frame(result, index) if as_frame else result

    def _predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        batch, n = check_inputs(self.contract, columns)
        return self._outputs(self._fn(batch), n)

    def predict_valid(self, columns: Columns) -> Columns:
        """:meth:`predict` on a batch ``validate_batch`` already checked against ``contract.inputs``."""
        for col in columns.values():
            return self._outputs(self._fn(columns), len(col))
        return self._predict(columns)  # no input fields: the general path

    @staticmethod
    def _outputs(out: Any, n: int) -> Columns:
        """The model's answer as numpy columns of ``n`` rows (text as ``object`` arrays)."""
        if type(out) is not dict and not isinstance(out, Mapping):
            raise TypeError(f"model returned {type(out).__name__}, expected a dict of columns")
        result: Columns = {}
        for name, values in out.items():
            arr = values if type(values) is np.ndarray else np.asarray(values)
            if arr.dtype.kind in ("U", "S"):
                arr = arr.astype(object)
            if arr.ndim == 0 or len(arr) != n:
                raise ValueError(f"model output {name!r} has shape {arr.shape}, expected {n} rows")
            result[name] = arr
        return result

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


def check_inputs(contract: Contract, columns: Mapping[str, Any]) -> tuple[Columns, int]:
    """The batch restricted to the contract's inputs, coerced safely, and its size; ValidationError else."""
    batch = validate_batch(contract.inputs, columns, allow_extra=True)
    return batch, batch_size(batch)
