"""``modelrunner optimize REF --to onnx``: a registered sklearn model -> ONNX (skl2onnx), pushed as a new
version whose lineage parent is REF, only when its outputs equal the original's.

Equal means: integer, bool and string outputs (labels) identical; float outputs (probabilities) within
``TOLERANCE`` absolute. skl2onnx computes in float32, so probabilities differ from sklearn's float64 ones
by about 1e-7; 1e-4 leaves room for that and still catches a wrong conversion. Checked on the bundle's
example input and the optional ``--data`` set (the evaluation format: input fields plus ``target``); the
first differing row refuses the version. ``quantize="dynamic"`` then stores int8 weights
(``onnxruntime.quantization.quantize_dynamic``): outputs change by design, so the change in accuracy
(against ``target``, or agreement with the original labels without ``--data``) is reported and gated
by ``requirements`` instead.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelrunner.bundle.bundle import Bundle, open_bundle, save_model
from modelrunner.bundle.predictor import Predictor
from modelrunner.contract import Contract, DType
from modelrunner.errors import FailedPrecondition, InvalidArgument, require
from modelrunner.evaluation.datasets import load_dataset
from modelrunner.evaluation.requirements import Requirement, parse_requirements
from modelrunner.evaluation.speed import (
    LoadSpec,
    http_load,
    predict_all,
    request_bodies,
    served_metrics,
    single_row_latency,
)
from modelrunner.registry.registry import Registry
from modelrunner.registry.types import ModelVersion

Columns = dict[str, np.ndarray]
TOLERANCE = 1e-4
EXTRA_METRICS = ("accuracy_change", "agreement")


@dataclass
class Speed:
    """Single-row p50 latency (ms) and batch throughput (rows/s) of one predictor, in-process."""

    p50_ms: float
    rows_per_s: float


@dataclass
class Outcome:
    """What optimize did: the new version (None when refused), speeds, metrics, failed requirements."""

    source: ModelVersion
    version: ModelVersion | None
    before: Speed
    after: Speed
    rows_checked: int
    metrics: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    served: dict[str, dict[str, float]] = field(default_factory=dict)  # "before"/"after" -> p50_ms, qps...

    @property
    def speedup(self) -> float:
        return self.before.p50_ms / self.after.p50_ms if self.after.p50_ms > 0 else float("nan")

    @property
    def throughput_gain(self) -> float:
        return self.after.rows_per_s / self.before.rows_per_s if self.before.rows_per_s > 0 else float("nan")


def _sklearn_model(bundle: Bundle, ref: str) -> Any:
    if bundle.manifest.flavor != "sklearn":
        raise InvalidArgument(
            f"optimize --to onnx converts sklearn models; {ref} has flavor {bundle.manifest.flavor}"
        )
    joblib = require("joblib", "sklearn")
    return joblib.load(bundle.path / str(bundle.manifest.flavor_options.get("file", "model.joblib")))


def _input_width(contract: Contract, ref: str) -> tuple[int, DType]:
    fields = contract.inputs
    if len(fields) != 1 or fields[0].dtype.kind != "f" or len(fields[0].shape) > 1 or -1 in fields[0].shape:
        raise InvalidArgument(
            f"optimize --to onnx needs one numeric vector input; {ref} takes "
            f"{', '.join(f'{f.name}: {f.describe()}' for f in fields)}"
        )
    shape = fields[0].shape
    return (shape[0] if shape else 1), fields[0].dtype


def to_onnx(model: Any, contract: Contract, ref: str) -> Any:
    """The skl2onnx graph of ``model``, its outputs renamed to the contract's (``label``, ``proba``...)."""
    skl2onnx = require("skl2onnx", "onnx")
    width, _ = _input_width(contract, ref)
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = skl2onnx.convert_sklearn(
                model,
                initial_types=[("input", FloatTensorType([None, width]))],
                options=options,
                target_opset=None,
            )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError for unsupported models
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidArgument(
            f"skl2onnx cannot convert {ref} ({type(model).__name__}): {first[:200]}"
        ) from exc
    _rename_outputs(onx, [f.name for f in contract.outputs], ref)
    return onx


def _rename_outputs(onx: Any, names: list[str], ref: str) -> None:
    graph = [o.name for o in onx.graph.output]
    if len(graph) != len(names):
        raise InvalidArgument(f"the ONNX graph of {ref} has outputs {graph}, the model {names}")
    mapping = dict(zip(graph, names, strict=True))
    for node in onx.graph.node:  # an output may also feed another node (probabilities -> argmax -> label)
        for names_ in (node.input, node.output):
            for i, name in enumerate(names_):
                if name in mapping:
                    names_[i] = mapping[name]
    for out in onx.graph.output:
        out.name = mapping[out.name]


def first_difference(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], tolerance: float = TOLERANCE
) -> str | None:
    """``row 3: proba differs by 0.02 ...`` for the first row where the outputs differ; None when equal."""
    for name, left in a.items():
        x, y = np.asarray(left), np.asarray(b[name])
        if x.shape != y.shape:
            return f"{name} has shape {x.shape[1:]} per row in the original, {y.shape[1:]} in ONNX"
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            bad = np.abs(x.astype(np.float64) - y.astype(np.float64)) > tolerance
        else:
            bad = x != y
        rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1)) if bad.size else np.array([], dtype=int)
        if rows.size:
            i = int(rows[0])
            return f"row {i}: {name} is {x[i].tolist()} in the original, {y[i].tolist()} in ONNX"
    return None


SPEED_ROWS = 4096
"""Batch throughput is measured over at least this many rows (the checked rows repeated), median of 5
passes: a few hundred rows take a millisecond or two, and one such pass on a shared machine is noise."""


def _speed(predictor: Predictor, columns: Columns) -> Speed:
    stats = single_row_latency(predictor, columns, calls=300, max_seconds=2.0)
    repeat = -(-SPEED_ROWS // _rows(columns))
    tiled = {k: np.concatenate([v] * repeat) for k, v in columns.items()}
    rows_per_s = float(np.median([predict_all(predictor, tiled)[1] for _ in range(5)]))
    return Speed(stats.percentile(50), rows_per_s)


def _rows(columns: Columns) -> int:
    return len(next(iter(columns.values())))


def _check_inputs(bundle: Bundle, data: str | Path | None) -> tuple[Columns, np.ndarray | None]:
    """Example rows plus the --data rows (their target too)."""
    example = bundle.example_input()
    if data is None:
        return example, None
    dataset = load_dataset(data)
    rows = dataset.inputs_for(bundle.contract)
    return {k: np.concatenate([example[k], rows[k].astype(example[k].dtype)]) for k in example}, np.asarray(
        dataset.target
    )


def _accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(labels.astype(str) == truth.astype(str))) if len(truth) else float("nan")


def _quantize(onnx_path: Path, out: Path) -> Path:
    quantization = require("onnxruntime.quantization", "onnx")
    logging.disable(logging.WARNING)  # its "consider pre-processing" advice goes to the root logger
    try:
        quantization.quantize_dynamic(str(onnx_path), str(out), weight_type=quantization.QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    return out


def _label_field(contract: Contract) -> str | None:
    names = [f.name for f in contract.outputs]
    return "label" if "label" in names else None


def _quality(
    original: Columns, new: Columns, truth: np.ndarray | None, contract: Contract, example_rows: int
) -> dict[str, float]:
    label = _label_field(contract)
    if label is None:
        return {}
    metrics = {"agreement": float(np.mean(original[label] == new[label]))}
    if truth is not None:
        before = _accuracy(original[label][example_rows:], truth)
        after = _accuracy(new[label][example_rows:], truth)
        metrics.update({"accuracy": after, "accuracy_before": before, "accuracy_change": after - before})
    return metrics


def _gate(metrics: Mapping[str, float], requirements: list[Requirement]) -> list[str]:
    return [
        f"{r} (got {metrics.get(r.metric, float('nan')):.4g})"
        for r in requirements
        if not r.check(metrics.get(r.metric))
    ]


SERVED_LOAD = LoadSpec(requests=400, concurrency=4, warmup=20, max_seconds=20.0)


def served_speed(
    before: Bundle, after: Bundle, columns: Columns, spec: LoadSpec = SERVED_LOAD
) -> dict[str, dict[str, float]]:
    """p50/p99/qps of one-row HTTP requests to each bundle, served by ``modelrunner serve`` (one worker)
    in a throw-away home on 127.0.0.1 (``evaluation.served``), one after the other."""
    from modelrunner.evaluation.candidates import Candidate
    from modelrunner.evaluation.served import serve_candidates

    cands = [
        Candidate(
            label=str(b.path),
            name=b.name,
            version=None,
            contract=b.contract,
            bundle_dir=b.path,
            flavor_options=dict(b.manifest.flavor_options),
        )
        for b in (before, after)
    ]
    bodies = request_bodies(columns, 200)
    with serve_candidates(cands) as urls:
        return {
            key: served_metrics(http_load(urls[c.ref], bodies, spec))
            for key, c in zip(("before", "after"), cands, strict=True)
        }


def optimize(
    registry: Registry,
    ref: str,
    *,
    quantize: str | None = None,
    data: str | Path | None = None,
    requirements: list[str] | None = None,
    alias: str | None = None,
    tolerance: float = TOLERANCE,
    served: bool = False,
) -> Outcome:
    """Convert ``ref`` to ONNX, check it, measure it, push it (see the module docstring)."""
    if quantize not in (None, "dynamic"):
        raise InvalidArgument(f"--quantize {quantize!r}: only 'dynamic' is supported")
    reqs = parse_requirements(requirements or [], EXTRA_METRICS)
    source = registry.resolve(ref)
    bundle = open_bundle(registry.fetch(source))
    onx = to_onnx(_sklearn_model(bundle, ref), bundle.contract, ref)
    columns, truth = _check_inputs(bundle, data)
    original = bundle.load()
    expected, _ = predict_all(original, columns)
    with tempfile.TemporaryDirectory(prefix="mr-optimize-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onx.SerializeToString())
        converted = _save(path, Path(tmp) / "float", bundle, source, None)
        got, _ = predict_all(converted.load(), columns)
        problem = first_difference(expected, got, tolerance)
        if problem is not None:
            raise FailedPrecondition(
                f"the ONNX conversion of {source.ref} is not equivalent (tolerance {tolerance:g}): {problem}"
            )
        final = converted
        if quantize is not None:
            final = _save(
                _quantize(path, Path(tmp) / "model.int8.onnx"), Path(tmp) / "q", bundle, source, quantize
            )
            got, _ = predict_all(final.load(), columns)
        new = final.load()
        outcome = Outcome(source, None, _speed(original, columns), _speed(new, columns), _rows(columns))
        outcome.metrics = _quality(expected, got, truth, bundle.contract, _rows(bundle.example_input()))
        outcome.metrics.update(
            {"inproc_p50_ms": outcome.after.p50_ms, "inproc_rows_per_s": outcome.after.rows_per_s}
        )
        if served:
            outcome.served = served_speed(bundle, final, columns)
            outcome.metrics.update(outcome.served["after"])
        outcome.failed = _gate(outcome.metrics, reqs)
        if not outcome.failed:
            outcome.version = registry.push(final.path, name=source.name, alias=alias)
    return outcome


def _save(onnx_path: Path, dest: Path, bundle: Bundle, source: ModelVersion, quantize: str | None) -> Bundle:
    tags = {"optimized_from": source.ref, "converter": "skl2onnx"}
    if quantize:
        tags["quantized"] = quantize
    kind = f"ONNX ({quantize} int8 quantized)" if quantize else "ONNX"
    return save_model(
        onnx_path,
        dest,
        flavor="onnx",
        name=source.name,
        contract=bundle.contract,
        sample=bundle.example_input(),
        license=bundle.manifest.license,
        description=f"{kind} conversion of {source.ref}",
        parent=source.ref,
        tags=tags,
    )
