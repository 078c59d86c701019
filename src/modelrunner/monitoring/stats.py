"""Drift statistics on binned counts: PSI, Kolmogorov-Smirnov on the binned CDF, Jensen-Shannon, chi-square.

Every function takes two count vectors over the same bins (reference, current) and works without scipy
(the tests compare them with scipy). Counts rather than raw values: the online side keeps only fixed-bin
sketches, so scores cost O(bins), whatever the traffic.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-4
"""Floor of a bin's proportion in PSI (an empty bin would make the log infinite)."""


def _props(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    out: np.ndarray = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    return out


def psi(ref: np.ndarray, cur: np.ndarray) -> float | np.ndarray:
    """Population stability index ``sum((q - p) * ln(q / p))`` with proportions floored at :data:`EPS`.

    Works on the last axis, so a (R, bins) array of windows gives R scores."""
    p = np.maximum(_props(ref), EPS)
    q = np.maximum(_props(cur), EPS)
    out = np.sum((q - p) * np.log(q / p), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def ks_statistic(ref: np.ndarray, cur: np.ndarray) -> float | np.ndarray:
    """Largest gap between the two empirical CDFs, read at the bin edges (the binned two-sample K-S D)."""
    gap = np.abs(np.cumsum(_props(ref), axis=-1) - np.cumsum(_props(cur), axis=-1))
    out = gap.max(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def ks_pvalue(d: float, n: float, m: float) -> float:
    """Asymptotic p-value of a two-sample K-S statistic ``d`` for samples of ``n`` and ``m`` rows
    (Kolmogorov's distribution with Stephens' small-sample correction, as in Numerical Recipes)."""
    if n <= 0 or m <= 0:
        return 1.0
    ne = n * m / (n + m)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    return _kolmogorov_sf(lam)


def _kolmogorov_sf(lam: float) -> float:
    if lam < 1e-3:
        return 1.0
    total, sign = 0.0, 1.0
    for k in range(1, 101):
        term = sign * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
        sign = -sign
    return float(min(1.0, max(0.0, 2.0 * total)))


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> float | np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]): the square root of the divergence, like scipy's."""
    p, q = np.broadcast_arrays(_props(ref), _props(cur))
    m = (p + q) / 2
    div = (_kl(p, m) + _kl(q, m)) / 2
    out = np.sqrt(np.maximum(div, 0.0))
    return float(out) if np.ndim(out) == 0 else out


def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ratio = np.divide(a, b, out=np.ones_like(a), where=(a > 0) & (b > 0))
    out: np.ndarray = np.sum(np.where(a > 0, a * np.log2(ratio), 0.0), axis=-1)
    return out


def chi_square(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity of the two count vectors: (statistic, p-value).

    Bins empty in both are dropped; dof = bins - 1 (like ``scipy.stats.chi2_contingency`` without
    Yates' correction)."""
    table = np.vstack([np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, chi2_sf(stat, table.shape[1] - 1)


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution: the regularised upper incomplete gamma
    Q(k/2, x/2)."""
    if x <= 0:
        return 1.0
    return _gammaq(dof / 2.0, x / 2.0)


def _gammaq(a: float, x: float) -> float:
    if x < a + 1.0:  # series for P(a, x)
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a)))
    return _gammaq_cf(a, x)


def _gammaq_cf(a: float, x: float) -> float:
    """Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - math.lgamma(a)) * h)
