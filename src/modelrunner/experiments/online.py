"""Online metrics per variant from the prediction log joined with feedback.

Quality metrics come from :mod:`modelrunner.evaluation.metrics` (the same functions ``modelrunner evaluate``
uses, on the same output field), so online accuracy on some rows equals offline accuracy on those rows.
Confidence intervals (95 %, two-sided):

- proportions (accuracy, exact_match, error_rate, agreement): the Wilson score interval — accurate for small n
  and near 0 or 1, where the normal approximation gives impossible bounds (an error rate of 0 ± 0);
- everything else (rmse, mae, cer, macro_f1, r2, log_loss, latency percentiles): a percentile bootstrap
  (:data:`BOOTSTRAP` resamples, fixed seed, so every worker computes the same interval). These statistics are
  not means of independent 0/1 outcomes (a percentile, a root of a mean, a ratio of sums), so no closed form
  applies; the bootstrap needs no distribution assumption.

Requests whose prediction failed (``error`` set) count in the error rate and are left out of quality metrics.
Requests, errors, latency and agreement count requests; labels and quality metrics count predicted rows (a
request of k rows with a list of k targets gives k labelled rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from modelrunner.contract import Contract
from modelrunner.evaluation import metrics as m

Z95 = 1.959963984540054  # two-sided 95 %: 2.5 % on each side
BOOTSTRAP = 400
GENERIC_DRAWS = 300  # metrics recomputed in full per resample (macro_f1, r2, log_loss)
SEED = 20240613
PRODUCTION = "production"
PROPORTIONS = frozenset({"accuracy", "exact_match", "error_rate", "agreement"})
SERVING_METRICS = ("error_rate", "p50_ms", "p99_ms", "agreement")


class LoggedRow(Protocol):
    """A prediction log row (``registry.prediction_rows``); labelled rows also have ``target``."""

    request_id: str
    variant: str
    model: str
    version: int | None
    latency_ms: float
    error: str | None
    outputs: Any


@dataclass(frozen=True)
class Estimate:
    """A metric value with its 95 % interval; ``method`` is ``wilson`` or ``bootstrap``."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _clean(self.value),
            "low": _clean(self.low),
            "high": _clean(self.high),
            "n": self.n,
            "method": self.method,
        }


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Wilson score interval of a proportion (no continuity correction)."""
    if n <= 0:
        return Estimate(None, None, None, 0, "wilson")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = centre - half, centre + half
    return Estimate(p, 0.0 if low < 1e-12 else low, 1.0 if high > 1 - 1e-12 else high, n, "wilson")


def resample_indices(n: int, draws: int = BOOTSTRAP, salt: int = 0) -> np.ndarray:
    """``(draws, n)`` row indices drawn with replacement (deterministic for a given ``n`` and ``salt``)."""
    rng = np.random.default_rng([SEED, n, salt])
    return rng.integers(0, n, size=(draws, n))


def percentile_interval(samples: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """The central interval of bootstrap ``samples`` at the two-sided level of ``z`` (1.96: 95 %)."""
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return math.nan, math.nan
    tail = 100 * 0.5 * math.erfc(z / math.sqrt(2))
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps ``(draws, n)`` resample indices to ``draws`` values of a statistic."""


@dataclass
class Sample:
    """What one metric of one variant is computed from: a point value and a vectorised statistic."""

    value: float
    n: int
    stat: Statistic | None = None  # None for proportions
    successes: int | None = None

    def estimate(self) -> Estimate:
        if self.successes is not None:
            return wilson(self.successes, self.n)
        if self.n == 0 or self.stat is None:
            return Estimate(None, None, None, self.n, "bootstrap")
        low, high = percentile_interval(self.stat(resample_indices(self.n)))
        return Estimate(self.value, low, high, self.n, "bootstrap")


@dataclass
class VariantStats:
    """Requests, errors, latency, labels and task metrics of one variant of one experiment."""

    variant: str
    model: str | None
    version: int | None
    requests: int
    errors: int
    labelled: int
    samples: dict[str, Sample] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}" if self.model else "-"

    def value(self, metric: str) -> float | None:
        s = self.samples.get(metric)
        return None if s is None or s.n == 0 else s.value

    def estimate(self, metric: str) -> Estimate | None:
        s = self.samples.get(metric)
        return None if s is None else s.estimate()

    def to_dict(self, metrics: Iterable[str] | None = None) -> dict[str, Any]:
        names = list(self.samples) if metrics is None else [n for n in metrics if n in self.samples]
        return {
            "variant": self.variant,
            "model": self.model,
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "labelled": self.labelled,
            "metrics": {n: self.samples[n].estimate().to_dict() for n in names},
        }


def _rows_by_variant(rows: Iterable[LoggedRow]) -> dict[str, list[LoggedRow]]:
    out: dict[str, list[LoggedRow]] = {}
    for r in rows:
        out.setdefault(r.variant, []).append(r)
    return out


def _latency_samples(rows: Sequence[LoggedRow]) -> dict[str, Sample]:
    lat = np.asarray([float(r.latency_ms) for r in rows if not r.error], dtype=np.float64)
    out = {}
    for name, q in (("p50_ms", 50), ("p99_ms", 99)):
        value = float(np.percentile(lat, q)) if len(lat) else math.nan
        out[name] = Sample(value, len(lat), _percentile_stat(lat, q))
    return out


def _percentile_stat(lat: np.ndarray, q: float) -> Statistic:
    def stat(idx: np.ndarray) -> np.ndarray:
        return np.asarray(np.percentile(lat[idx], q, axis=1))

    return stat


def columns_of(outputs: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-row output dicts -> columns, like the predictor's own answer."""
    names = [k for k in (outputs[0] if outputs else {}) if all(k in o for o in outputs)]
    return {k: np.asarray([o[k] for o in outputs]) for k in names}


def _request_rows(outputs: Any) -> int:
    """Rows answered by one logged request (its outputs are ``{name: [value per row]}``); 0 when unusable."""
    if not isinstance(outputs, dict) or not outputs:
        return 0
    sizes = {len(v) if isinstance(v, list) else -1 for v in outputs.values()}
    return sizes.pop() if len(sizes) == 1 and -1 not in sizes else 0


def labelled_pairs(rows: Iterable[Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Labelled log rows -> one ``(outputs of a row, target)`` per predicted row.

    A one-row request's target is the JSON the client sent; a k-row request's target must be a list of k
    values (rows whose target does not fit are left out, like failed ones)."""
    outs: list[dict[str, Any]] = []
    targets: list[Any] = []
    for r in rows:
        k = _request_rows(r.outputs) if not r.error and r.target is not None else 0
        if k == 0:
            continue
        values = [r.target] if k == 1 else r.target
        if not isinstance(values, list) or len(values) != k:
            continue
        for i in range(k):
            outs.append({name: col[i] for name, col in r.outputs.items()})
            targets.append(values[i])
    return outs, targets


def _target_array(values: Sequence[Any]) -> np.ndarray:
    arr = np.asarray(list(values))
    return arr.astype(object) if arr.dtype.kind in "U" else arr


def quality_samples(
    task: m.Task, contract: Contract, outputs: Sequence[Any], targets: Sequence[Any]
) -> dict[str, Sample]:
    """The task's metrics on these rows (:func:`evaluation.metrics.compute_metrics`) with their statistics."""
    n = len(outputs)
    if n == 0:
        return {name: Sample(math.nan, 0) for name in m.TASK_METRICS[task] if name != "log_loss"}
    cols, y = columns_of(outputs), _target_array(targets)
    values = m.compute_metrics(task, y, cols, contract)
    pred = np.asarray(cols[m.prediction_field(contract, task)])
    t, p = m._as_labels(y, pred) if task is m.Task.CLASSIFICATION else (y, pred)

    def generic(name: str) -> Statistic:
        def stat(idx: np.ndarray) -> np.ndarray:
            draws = idx[:GENERIC_DRAWS]  # a full recompute per draw: fewer draws
            return np.asarray(
                [
                    m.compute_metrics(task, y[i], {k: v[i] for k, v in cols.items()}, contract).get(
                        name, math.nan
                    )
                    for i in draws
                ]
            )

        return stat

    out: dict[str, Sample] = {}
    for name, value in values.items():
        if name in ("accuracy", "exact_match"):
            hits = (
                (t == p)
                if name == "accuracy"
                else np.asarray([a == b for a, b in zip(m._texts(y), m._texts(pred), strict=True)])
            )
            out[name] = Sample(value, n, successes=int(np.sum(hits)))
        elif name in ("rmse", "mae"):
            out[name] = Sample(value, n, _error_stat(name, y, pred))
        elif name == "cer":
            out[name] = Sample(value, n, _cer_stat(y, pred))
        else:
            out[name] = Sample(value, n, generic(name))
    return out


def _error_stat(name: str, y: np.ndarray, pred: np.ndarray) -> Statistic:
    t, p = m._pair(y, pred)
    err = (t - p) ** 2 if name == "rmse" else np.abs(t - p)

    def stat(idx: np.ndarray) -> np.ndarray:
        per_output = err[idx].mean(axis=1)  # (draws, outputs)
        return np.asarray(np.mean(np.sqrt(per_output) if name == "rmse" else per_output, axis=1))

    return stat


def _cer_stat(y: np.ndarray, pred: np.ndarray) -> Statistic:
    ts, ps = m._texts(y), m._texts(pred)
    dist = np.asarray([m.edit_distance(a, b) for a, b in zip(ts, ps, strict=True)], dtype=np.float64)
    length = np.asarray([len(a) for a in ts], dtype=np.float64)

    def stat(idx: np.ndarray) -> np.ndarray:
        total = length[idx].sum(axis=1)
        return np.where(total > 0, dist[idx].sum(axis=1) / np.where(total > 0, total, 1), math.nan)

    return stat


def _agreement(rows: Sequence[LoggedRow], production: Sequence[LoggedRow], field_name: str) -> Sample:
    """Share of requests (joined by request id: shadow) where this variant answered like production."""
    theirs = {
        r.request_id: r.outputs.get(field_name)
        for r in production
        if not r.error and isinstance(r.outputs, dict)
    }
    pairs = [
        (r.outputs.get(field_name), theirs[r.request_id])
        for r in rows
        if not r.error and isinstance(r.outputs, dict) and r.request_id in theirs
    ]
    same = sum(1 for a, b in pairs if a == b)
    return Sample(same / len(pairs) if pairs else math.nan, len(pairs), successes=same)


ContractFor = Callable[[str, int | None], Contract]


def _newest(rows: Sequence[LoggedRow]) -> LoggedRow | None:
    return rows[-1] if rows else None


def variant_stats(
    variant: str,
    rows: Sequence[LoggedRow],
    labelled: Sequence[Any],
    task: m.Task,
    contract_for: ContractFor,
    production: Sequence[LoggedRow] = (),
) -> VariantStats:
    """Stats of one variant: ``rows`` from the prediction log, ``labelled`` the joined ones with targets."""
    last = _newest(rows) or _newest(labelled)
    model, version = (last.model, last.version) if last is not None else (None, None)
    errors = sum(1 for r in rows if r.error)
    stats = VariantStats(variant, model, version, requests=len(rows), errors=errors, labelled=0)
    stats.samples["error_rate"] = Sample(
        errors / len(rows) if rows else math.nan, len(rows), successes=errors
    )
    stats.samples.update(_latency_samples(rows))
    outputs, targets = labelled_pairs(labelled)
    stats.labelled = len(targets)
    if model is not None:
        contract = contract_for(model, version)
        stats.samples.update(quality_samples(task, contract, outputs, targets))
        if variant != PRODUCTION and production:
            stats.samples["agreement"] = _agreement(rows, production, m.prediction_field(contract, task))
    return stats


def online_stats(
    rows: Iterable[LoggedRow], labelled: Iterable[Any], task: m.Task, contract_for: ContractFor
) -> dict[str, VariantStats]:
    """Per variant (production first): stats from the log ``rows`` and the ``labelled`` rows."""
    by_variant = _rows_by_variant(rows)
    labelled_by = _rows_by_variant(labelled)
    names = sorted(set(by_variant) | set(labelled_by), key=lambda v: (v != PRODUCTION, v))
    production = by_variant.get(PRODUCTION, [])
    return {
        v: variant_stats(v, by_variant.get(v, []), labelled_by.get(v, []), task, contract_for, production)
        for v in names
    }


def metric_names(task: m.Task) -> tuple[str, ...]:
    """Every metric an online rule may name for ``task``."""
    return tuple(m.TASK_METRICS[task]) + SERVING_METRICS
