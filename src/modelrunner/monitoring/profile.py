"""Reference profiles: what a model's inputs and outputs looked like in training, as fixed-bin counts.

A profile is the list of monitored features (:class:`~modelrunner.monitoring.sketch.FeatureSpec`: numeric
features with quantile bin edges, categorical ones with their categories) plus a reference :class:`Sketch`
over the same slots, so reference and live traffic are compared bin by bin. ``save_model(training_data=...)``
writes one into the bundle (``profile.json``, named in the manifest); a bundle saved without training data
gets one later from live traffic (``modelrunner monitor baseline``), counted on generic bins
(:func:`generic_specs`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelrunner.contract import Contract, Field
from modelrunner.contract.types import DType
from modelrunner.monitoring.sketch import (
    CATEGORICAL,
    HASH_BUCKETS,
    NUMERIC,
    Binner,
    FeatureSpec,
    Sketch,
    category_key,
    flat_rows,
    is_missing,
    row_count,
)

log = logging.getLogger(__name__)

PROFILE_FILE = "profile.json"
FORMAT = 1
BINS = 10
"""Quantile bins per numeric feature: deciles. Enough resolution for PSI/K-S to see a shift of a fraction
of a standard deviation; few enough that a window of a few hundred rows fills every bin."""
MAX_ELEMENTS = 1024
"""Array fields with more elements per row than this (images) are not profiled element by element."""
MAX_CATEGORIES = 50
MAX_ROWS = 50_000
"""Training sets larger than this are profiled on an evenly spaced sample of rows."""
GENERIC_EDGES = tuple(sorted({0.0, *(s * 10.0**k for s in (-1, 1) for k in range(-3, 7))}))
"""Bins of a numeric feature whose range is unknown (no training data): 0 and +-10^-3 .. +-10^6."""


@dataclass
class Profile:
    """Monitored features, their reference counts, and the reference confidence of a classifier."""

    specs: list[FeatureSpec]
    reference: Sketch
    source: str = "training_data"  # or "baseline"
    confidence: dict[str, Any] | None = None  # {"output", "mean", "accuracy"}

    def binner(self) -> Binner:
        return Binner(self.specs, (self.confidence or {}).get("output"))

    def feature_counts(self) -> list[np.ndarray]:
        """The reference counts of every feature (its run of slots)."""
        return split_counts(self.specs, self.reference.counts)

    def to_json(self) -> dict[str, Any]:
        features = []
        for spec, counts in zip(self.specs, self.feature_counts(), strict=True):
            features.append({**spec.to_json(), "counts": counts.tolist()})
        return {
            "format": FORMAT,
            "source": self.source,
            "rows": self.reference.rows,
            "confidence": self.confidence,
            "features": features,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        specs = [FeatureSpec.from_json(f) for f in data["features"]]
        counts = [np.asarray(f["counts"], dtype=np.int64) for f in data["features"]]
        flat = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
        conf = data.get("confidence")
        ref = Sketch(flat, int(data.get("rows", 0)))
        return cls(specs, ref, str(data.get("source", "training_data")), dict(conf) if conf else None)

    def write(self, directory: Path) -> Path:
        path = directory / PROFILE_FILE
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Profile:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def split_counts(specs: Sequence[FeatureSpec], counts: np.ndarray) -> list[np.ndarray]:
    out, start = [], 0
    for spec in specs:
        out.append(counts[start : start + spec.slots])
        start += spec.slots
    return out


def build_profile(
    contract: Contract,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any] | None = None,
    labels: Any = None,
    bins: int = BINS,
) -> Profile:
    """The profile of a training set: ``inputs`` (columns of the contract's inputs), the model's
    ``outputs`` on them, and the true ``labels`` when known (for the confidence calibration)."""
    conf_output = confidence_output(contract.outputs, outputs)
    # class probabilities are watched through the predicted labels and the confidence (CBPE), not one PSI per
    # class: on training data a model is overconfident, so per-class bins alarm on any held-out traffic
    out_fields = [f for f in contract.outputs if f.name != conf_output]
    specs = [*_specs("input", contract.inputs, inputs, bins), *_specs("output", out_fields, outputs, bins)]
    binner = Binner(specs, conf_output)
    reference = Sketch(binner.count(inputs, outputs), row_count(inputs))
    confidence = None
    if conf_output is not None and outputs is not None:
        total, rows = binner.confidence(outputs)
        confidence = {
            "output": conf_output,
            "mean": total / rows if rows else None,
            "accuracy": _accuracy(outputs[conf_output], labels, contract.outputs, outputs),
        }
    return Profile(specs, reference, "training_data", confidence)


def _specs(
    side: str, fields: Sequence[Field], columns: Mapping[str, Any] | None, bins: int
) -> list[FeatureSpec]:
    out: list[FeatureSpec] = []
    if columns is None:
        return out
    for f in fields:
        col = columns.get(f.name)
        if col is None or not _monitorable(f):
            continue
        flat = flat_rows(col, row_count(columns))
        for i in range(flat.shape[1]):
            name, index = (f"{f.name}[{i}]", i) if f.shape else (f.name, None)
            if _categorical(f, side):
                out.append(
                    FeatureSpec(name, f.name, index, CATEGORICAL, side, categories=_categories(flat[:, i]))
                )
            else:
                out.append(
                    FeatureSpec(name, f.name, index, NUMERIC, side, edges=quantile_edges(flat[:, i], bins))
                )
    return out


def _monitorable(f: Field) -> bool:
    if f.dtype is DType.BYTES and f.shape:
        return False
    if any(d < 1 for d in f.shape):
        return False
    return int(np.prod(f.shape)) <= MAX_ELEMENTS if f.shape else True


def _categorical(f: Field, side: str) -> bool:
    """Strings, bytes and bools are categories; so are integer labels a model outputs (predicted classes)."""
    return not f.dtype.is_numeric or (side == "output" and f.dtype.kind in "iu" and not f.shape)


def quantile_edges(values: np.ndarray, bins: int = BINS) -> tuple[float, ...]:
    """Min, the distinct inner quantile cut points, max (ties collapse: a 0..16 pixel gets fewer bins)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not len(x):
        return GENERIC_EDGES
    qs = np.quantile(x, np.linspace(0, 1, bins + 1))
    lo, hi = float(qs[0]), float(qs[-1])
    inner = sorted({float(q) for q in qs[1:-1] if lo < q <= hi})
    if inner and inner[-1] == hi:
        inner = inner[:-1]
    return (lo, *inner, hi)


def _categories(values: np.ndarray) -> tuple[str, ...]:
    keys = [category_key(v) for v in values if not is_missing(v)]
    if not keys:
        return ()
    uniq, counts = np.unique(np.asarray(keys, dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return tuple(str(uniq[i]) for i in order[:MAX_CATEGORIES])


def confidence_output(fields: Sequence[Field], outputs: Mapping[str, Any] | None) -> str | None:
    """The output holding class probabilities: a float (n, k>=2) field whose rows sum to 1 (on the
    given outputs), preferring one named like ``prob``."""
    candidates = [f for f in fields if f.dtype.kind == "f" and len(f.shape) == 1 and f.shape[0] >= 2]
    candidates.sort(key=lambda f: "prob" not in f.name.lower())
    for f in candidates:
        col = None if outputs is None else outputs.get(f.name)
        if col is None:
            continue
        arr = np.asarray(col, dtype=np.float64)
        if arr.ndim == 2 and len(arr) and np.allclose(arr.sum(axis=1), 1.0, atol=1e-3) and arr.min() >= -1e-6:
            return f.name
    return None


def _accuracy(probs: Any, labels: Any, fields: Sequence[Field], outputs: Mapping[str, Any]) -> float | None:
    """Accuracy of the model's predicted label on the reference rows, when labels are known."""
    if labels is None:
        return None
    label_field = next((f for f in fields if not f.shape and f.dtype.kind in "iuSb"), None)
    y = np.asarray(labels).ravel()
    if label_field is not None and label_field.name in outputs:
        predicted = np.asarray(outputs[label_field.name]).ravel()
    else:
        predicted = np.argmax(np.asarray(probs), axis=1)
    if len(predicted) != len(y) or not len(y):
        return None
    return float(np.mean([category_key(a) == category_key(b) for a, b in zip(predicted, y, strict=True)]))


def generic_specs(contract: Contract) -> list[FeatureSpec]:
    """Features on generic bins, for a version without a profile: its live traffic is still sketched, and
    ``monitor baseline`` can turn a window of it into the reference."""
    specs: list[FeatureSpec] = []
    for side, fields in (("input", contract.inputs), ("output", contract.outputs)):
        for f in fields:
            if not _monitorable(f):
                continue
            n = int(np.prod(f.shape)) if f.shape else 1
            for i in range(n):
                name, index = (f"{f.name}[{i}]", i) if f.shape else (f.name, None)
                if _categorical(f, side):
                    cats = tuple(f"#{b}" for b in range(HASH_BUCKETS))
                    specs.append(
                        FeatureSpec(name, f.name, index, CATEGORICAL, side, categories=cats, hashed=True)
                    )
                else:
                    specs.append(FeatureSpec(name, f.name, index, NUMERIC, side, edges=GENERIC_EDGES))
    return specs


def sample_rows(columns: Mapping[str, Any], limit: int = MAX_ROWS) -> dict[str, Any]:
    """At most ``limit`` evenly spaced rows of every column."""
    n = row_count(columns)
    if n <= limit:
        return dict(columns)
    idx = np.linspace(0, n - 1, limit).astype(np.int64)
    return {k: np.asarray(v)[idx] for k, v in columns.items()}


def profile_training_data(contract: Contract, predict: Any, training_data: Any) -> Profile | None:
    """The profile of ``training_data`` (an array for a one-input model, a DataFrame or a dict of arrays;
    one extra column is taken as the true labels), with ``predict``'s outputs on it. None when the data
    cannot be read as the model's inputs (bytes, a path: then it is only hashed)."""
    from modelrunner.contract.derive import as_columns
    from modelrunner.contract.validate import validate_batch

    if isinstance(training_data, bytes | bytearray | memoryview | str | Path):
        return None
    default = contract.inputs[0].name if len(contract.inputs) == 1 else "input"
    try:
        columns = sample_rows(as_columns(training_data, default))
        names = {f.name for f in contract.inputs} | {f.alias for f in contract.inputs if f.alias}
        extra = [k for k in columns if k not in names]
        labels = columns.pop(extra[0]) if len(extra) == 1 else None
        inputs = validate_batch(contract.inputs, {k: v for k, v in columns.items() if k in names})
    except Exception as exc:  # noqa: BLE001 - data that does not fit the inputs is hashed, not profiled
        log.warning("training_data is not profiled: %s", exc)
        return None
    try:
        outputs = dict(predict(inputs))
    except Exception as exc:  # noqa: BLE001 - the inputs are still worth a profile
        log.warning("the model failed on training_data; profiling its inputs only: %s", exc)
        outputs = None
    return build_profile(contract, inputs, outputs, labels)
