"""The drift statistics against scipy on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from modelrunner.monitoring import stats


def _binned(a: np.ndarray, b: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(np.concatenate([a, b]), np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    return np.histogram(a, edges)[0], np.histogram(b, edges)[0]


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_ks_statistic_and_pvalue_match_scipy_on_binned_normals(shift: float) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 3000), rng.normal(shift, 1, 800)
    ref, cur = _binned(a, b, bins=50)
    d = stats.ks_statistic(ref, cur)
    exact = sps.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(exact.statistic, abs=0.02)  # the binned CDF is read at the bin edges only
    assert stats.ks_pvalue(exact.statistic, len(a), len(b)) == pytest.approx(exact.pvalue, rel=0.05, abs=1e-6)


@pytest.mark.parametrize("lam", [0.3, 0.6, 1.0, 1.5, 2.5])
def test_kolmogorov_tail_matches_scipy(lam: float) -> None:
    assert stats._kolmogorov_sf(lam) == pytest.approx(sps.kstwobign.sf(lam), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(("x", "dof"), [(0.5, 1), (3.0, 2), (12.0, 9), (40.0, 9), (150.0, 120), (7.0, 30)])
def test_chi2_survival_matches_scipy(x: float, dof: int) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(sps.chi2.sf(x, dof), rel=1e-7, abs=1e-14)


def test_chi_square_test_matches_scipy_contingency() -> None:
    ref, cur = np.array([500, 300, 150, 50, 0]), np.array([40, 35, 20, 10, 0])
    stat, p = stats.chi_square(ref, cur)
    expected = sps.chi2_contingency(np.vstack([ref[:4], cur[:4]]), correction=False)
    assert stat == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)


def test_jensen_shannon_matches_scipy() -> None:
    p, q = np.array([10, 20, 30, 0]), np.array([5, 5, 20, 10])
    assert stats.jensen_shannon(p, q) == pytest.approx(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    assert stats.jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-7)


def test_psi_by_hand_and_vectorised_over_windows() -> None:
    ref, cur = np.array([50, 30, 20]), np.array([20, 30, 50])
    p, q = ref / 100, cur / 100
    assert stats.psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    windows = np.vstack([cur, ref])
    assert np.allclose(stats.psi(ref, windows), [stats.psi(ref, cur), 0.0])
