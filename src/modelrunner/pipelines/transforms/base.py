"""What a built-in transform is, and helpers shared by transforms."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelrunner.contract import Contract
from modelrunner.errors import PipelineError

Columns = dict[str, np.ndarray]
TransformFn = Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], Columns]


@dataclass(frozen=True)
class TransformInfo:
    """A built-in transform: its name, contract, options (name -> default) and function."""

    name: str
    description: str
    contract: Contract
    fn: TransformFn
    options: Mapping[str, Any] = field(default_factory=dict)

    def check_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; PipelineError on an unknown option or a wrong type."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise PipelineError(
                f"transform {self.name!r}: unknown option(s) {', '.join(unknown)} (options: {known})"
            )
        merged = dict(self.options)
        for key, value in given.items():
            default = self.options[key]
            if default is not None and not isinstance(value, type(default)):
                raise PipelineError(
                    f"transform {self.name!r}: option {key!r} must be {type(default).__name__}, got {value!r}"
                )
            merged[key] = value
        return merged


def ragged(parts: Sequence[Any]) -> np.ndarray:
    """Stack per-row values into one column; rows of different shapes give an object array."""
    if all(isinstance(p, str | bytes) for p in parts):
        return np.array(list(parts) + [None], dtype=object)[:-1]
    arrays = [np.asarray(p) for p in parts]
    if arrays and len({(a.shape, a.dtype) for a in arrays}) == 1 and arrays[0].dtype != object:
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out
