"""Live figures from Prometheus text: req/s, error rate, p99 (catalog/live.py)."""

from __future__ import annotations

import math

import pytest

from modelrunner.catalog.live import figures, parse, quantile


def exposition(requests: float, errors: float, buckets: dict[str, float]) -> str:
    lines = [
        "# TYPE modelrunner_requests counter",
        f'modelrunner_requests_total{{endpoint="toy",version="1",protocol="json"}} {requests}',
        "# TYPE modelrunner_request_errors counter",
        f'modelrunner_request_errors_total{{endpoint="toy",version="1",code="invalid_argument"}} {errors}',
        "# TYPE modelrunner_request_duration_seconds histogram",
    ]
    lines += [
        f'modelrunner_request_duration_seconds_bucket{{endpoint="toy",version="1",le="{le}"}} {n}'
        for le, n in buckets.items()
    ]
    return "\n".join(lines) + "\n"


def test_quantile_interpolates_inside_the_bucket() -> None:
    assert quantile(0.99, {0.01: 0.0, 0.1: 100.0, math.inf: 100.0}) == pytest.approx(0.0991)
    assert quantile(0.5, {0.001: 50.0, 0.01: 100.0, math.inf: 100.0}) == pytest.approx(0.001)
    assert quantile(0.99, {0.1: 0.0, math.inf: 0.0}) is None
    assert quantile(0.99, {0.1: 0.0, math.inf: 10.0}) == 0.1  # beyond the last bound: the last bound


def test_figures_over_a_window_between_two_readings() -> None:
    old = parse(exposition(100, 0, {"0.01": 100, "0.1": 100, "+Inf": 100}), at=10.0)
    new = parse(exposition(300, 2, {"0.01": 101, "0.1": 300, "+Inf": 300}), at=12.0)
    f = figures(new, old, "toy")
    assert f.req_per_s == pytest.approx(100.0)
    assert f.error_rate == pytest.approx(2 / 202)
    assert f.p99_ms == pytest.approx((0.01 + 0.09 * (198 - 1) / 199) * 1000)
    first = figures(new, None, "toy")
    assert first.req_per_s is None and first.requests == 300
    assert figures(new, old, "other").req_per_s == 0.0
