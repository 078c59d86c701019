"""Drift reports: quiet on same-distribution traffic over many windows, loud on a shifted one; CBPE."""

from __future__ import annotations

import numpy as np

from modelrunner.monitoring.drift import Thresholds, calibrated, evaluate
from support.drift_helpers import digits, shifted


def test_no_alert_on_held_out_traffic_over_many_windows_and_alert_on_shifted() -> None:
    d = digits()
    profile = d.profile()
    rng = np.random.default_rng(7)
    alarms = [evaluate(profile, d.sketch(profile, d.x[rng.choice(d.test, 200)])).status for _ in range(60)]
    assert alarms.count("drift") <= 1  # measured: 0 of 200 windows of 200 rows (docs/monitoring.md)
    assert set(alarms) <= {"ok", "drift"}
    for _ in range(5):
        report = evaluate(profile, d.sketch(profile, shifted(d.x[rng.choice(d.test, 200)], rng)))
        assert report.status == "drift"
        assert report.drifted >= report.needed
        top = max(report.features, key=lambda f: f.score)
        assert top.side == "input" and top.score > top.threshold


def test_confidence_based_estimate_follows_true_accuracy() -> None:
    d = digits()
    profile = d.profile()
    rng = np.random.default_rng(3)
    x = d.x[d.test]
    same = evaluate(profile, d.sketch(profile, x))
    noisy = shifted(x, rng, noise=4.0)
    worse = evaluate(profile, d.sketch(profile, noisy))
    true_same = float(np.mean(d.model.labels(x) == d.y[d.test]))
    true_worse = float(np.mean(d.model.labels(noisy) == d.y[d.test]))
    assert same.estimated_accuracy is not None and worse.estimated_accuracy is not None
    assert abs(same.estimated_accuracy - true_same) < 0.06
    assert worse.estimated_accuracy < same.estimated_accuracy - 0.01  # falls with the true one
    assert true_worse < true_same


def test_thresholds_floor_on_heavy_traffic_and_calibration_on_small_windows() -> None:
    ref = tuple(int(c) for c in np.full(10, 100))
    small, large = calibrated(ref, 50, True, 0.99), calibrated(ref, 100_000, True, 0.99)
    assert small > 0.2 > large  # small windows: chance alone passes the floor; heavy traffic: it does not
    d = digits()
    profile = d.profile()
    report = evaluate(profile, d.sketch(profile, d.x[d.test[:50]]), Thresholds(min_rows=10))
    numeric = [f for f in report.features if f.kind == "numeric"]
    assert max(f.threshold for f in numeric) > 0.2


def test_too_few_rows_is_not_an_alarm() -> None:
    d = digits()
    profile = d.profile()
    report = evaluate(profile, d.sketch(profile, shifted(d.x[d.test[:20]], np.random.default_rng(1))))
    assert report.status == "too few rows"


def test_thresholds_from_json_keeps_known_keys() -> None:
    t = Thresholds.from_json({"psi": "0.3", "min_rows": 50, "bogus": 1})
    assert t.psi == 0.3 and t.min_rows == 50 and t.js == Thresholds().js
