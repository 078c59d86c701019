"""Drift scores of a window of traffic against a reference profile, thresholds calibrated on the reference.

Numeric features: PSI over the reference's quantile bins (plus out-of-range bins) decides; the binned K-S
statistic and its p-value are reported beside it. Categorical features (strings, bools, predicted labels):
Jensen-Shannon distance decides; chi-square and its p-value are reported. A feature drifts when its score
passes ``max(floor, calibrated)``:

* ``calibrated``: the ``quantile`` (0.99) of the same score over ``RESAMPLES`` windows of the window's size
  drawn from the reference itself (NannyML's approach) -- what chance alone gives at this traffic;
* ``floor``: the smallest shift worth an alert (PSI 0.2, JS 0.1) -- on heavy traffic the calibrated value
  tends to 0 and any tiny, harmless difference would alarm (what p-value tests do: evidently#50).

The model-level drift alert fires when at least ``max(1, ceil(5 %))`` of the features drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from modelrunner.monitoring import stats
from modelrunner.monitoring.profile import Profile, split_counts
from modelrunner.monitoring.sketch import NUMERIC, FeatureSpec, Sketch

RESAMPLES = 400
SEED = 20261206


@dataclass(frozen=True)
class Thresholds:
    """Per-model alert settings (``modelrunner monitor set``); defaults in docs/monitoring.md."""

    psi: float = 0.2
    js: float = 0.1
    quantile: float = 0.99
    min_rows: int = 200
    min_features: float = 0.05
    nan: float = 0.05
    out_of_range: float = 0.05
    unseen: float = 0.05
    accuracy_drop: float = 0.05

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Thresholds:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        values: dict[str, Any] = {k: (int(v) if k == "min_rows" else float(v)) for k, v in known.items()}
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureDrift:
    feature: str
    side: str
    kind: str
    test: str  # "psi" or "jensen-shannon"
    score: float
    threshold: float
    statistic: float  # K-S D or chi-square
    p_value: float
    rows: int
    nan_rate: float
    out_of_range: float  # numeric: outside the reference range; categorical: unseen categories
    status: str  # ok, drift, quality, too few rows


@dataclass
class DriftReport:
    endpoint: str
    model: str
    version: int
    rows: int
    window: tuple[float, float] | None
    status: str  # ok, drift, too few rows, no reference
    drifted: int = 0
    needed: int = 1
    quality: list[str] = field(default_factory=list)
    features: list[FeatureDrift] = field(default_factory=list)
    confidence: float | None = None  # mean highest class probability in the window
    estimated_accuracy: float | None = None
    reference_accuracy: float | None = None
    online_accuracy: float | None = None  # from feedback (monitoring.online), when labels came back
    labelled_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    profile: Profile,
    current: Sketch,
    thresholds: Thresholds = Thresholds(),
    *,
    endpoint: str = "",
    model: str = "",
    version: int = 0,
    window: tuple[float, float] | None = None,
) -> DriftReport:
    """Score every feature of ``current`` against ``profile``; the report says which drift and why."""
    report = DriftReport(endpoint, model, version, current.rows, window, "ok")
    _confidence(report, profile, current)
    refs = split_counts(profile.specs, profile.reference.counts)
    curs = split_counts(profile.specs, current.counts)
    for spec, ref, cur in zip(profile.specs, refs, curs, strict=True):
        report.features.append(_feature(spec, ref, cur, current.rows, thresholds))
    report.needed = max(1, math.ceil(thresholds.min_features * len(profile.specs)))
    report.drifted = sum(f.status == "drift" for f in report.features)
    report.quality = [f.feature for f in report.features if f.status == "quality"]
    if current.rows < thresholds.min_rows:
        report.status = "too few rows"
    elif report.drifted >= report.needed:
        report.status = "drift"
    return report


def _feature(spec: FeatureSpec, ref: np.ndarray, cur: np.ndarray, rows: int, t: Thresholds) -> FeatureDrift:
    numeric = spec.kind == NUMERIC
    ref_cmp, cur_cmp = ref[:-1], cur[:-1]  # the last slot is NaN / missing
    n = int(cur_cmp.sum())
    nan_rate = float(cur[-1]) / rows if rows else 0.0
    ref_nan = float(ref[-1]) / max(1, int(ref.sum()))
    if numeric:
        score = float(stats.psi(ref_cmp, cur_cmp))
        statistic = float(stats.ks_statistic(ref_cmp, cur_cmp))
        p_value = stats.ks_pvalue(statistic, float(ref_cmp.sum()), float(n))
        outside = float(cur_cmp[0] + cur_cmp[-1]) / n if n else 0.0
        ref_outside = float(ref_cmp[0] + ref_cmp[-1]) / max(1, int(ref_cmp.sum()))
        floor, test, limit = t.psi, "psi", t.out_of_range
    else:
        score = float(stats.jensen_shannon(ref_cmp, cur_cmp))
        statistic, p_value = stats.chi_square(ref_cmp, cur_cmp)
        outside = float(cur_cmp[-1]) / n if n else 0.0
        ref_outside = float(ref_cmp[-1]) / max(1, int(ref_cmp.sum()))
        floor, test, limit = t.js, "jensen-shannon", t.unseen
    threshold = max(floor, calibrated(tuple(int(c) for c in ref_cmp), n, numeric, t.quantile))
    if rows < t.min_rows:
        status = "too few rows"
    elif score > threshold:
        status = "drift"
    elif nan_rate - ref_nan > t.nan or outside - ref_outside > limit:
        status = "quality"
    else:
        status = "ok"
    return FeatureDrift(
        spec.name,
        spec.side,
        spec.kind,
        test,
        score,
        threshold,
        statistic,
        p_value,
        rows,
        nan_rate,
        outside,
        status,
    )


@lru_cache(maxsize=4096)
def calibrated(ref: tuple[int, ...], n: int, numeric: bool, quantile: float) -> float:
    """The ``quantile`` of the score between a reference and a window of ``n`` rows both drawn from the
    reference's bins (:data:`RESAMPLES` multinomial pairs): the score chance alone passes with probability
    ``1 - quantile`` -- the window's sampling noise and the reference's own (a reference of a thousand rows
    is not the population)."""
    counts = np.asarray(ref, dtype=np.float64)
    total = counts.sum()
    if n <= 0 or total <= 0:
        return 0.0
    rng = np.random.default_rng(SEED + n)
    probs = counts / total
    refs = rng.multinomial(int(total), probs, size=RESAMPLES)
    windows = rng.multinomial(_bucket(n), probs, size=RESAMPLES)
    scores = stats.psi(refs, windows) if numeric else stats.jensen_shannon(refs, windows)
    return float(np.quantile(np.asarray(scores), quantile))


def _bucket(n: int) -> int:
    """``n`` rounded down to 2 significant digits, so nearby window sizes share one calibration."""
    digits = max(0, len(str(n)) - 2)
    return max(1, int(n // 10**digits) * int(10**digits))


def _confidence(report: DriftReport, profile: Profile, current: Sketch) -> None:
    """Confidence-based performance estimate (like NannyML's CBPE): expected accuracy = mean highest
    probability, scaled by reference accuracy / reference mean confidence (the model's calibration)."""
    ref = profile.confidence or {}
    report.reference_accuracy = ref.get("accuracy")
    if not current.conf_rows:
        return
    report.confidence = current.conf_sum / current.conf_rows
    ratio = 1.0
    if ref.get("accuracy") is not None and ref.get("mean"):
        ratio = float(ref["accuracy"]) / float(ref["mean"])
    report.estimated_accuracy = min(1.0, report.confidence * ratio)
