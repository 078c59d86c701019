"""Prometheus metrics: recording helpers, and correct totals across worker processes (multiprocess mode)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrunner.monitoring import metrics
from support.metrics_workers import record_requests

REQUESTS = "modelrunner_requests_total"


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Single-process collectors, fresh for the test (and dropped after it)."""
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    metrics.reset()
    yield
    metrics.reset()


def test_single_process_recording(fresh: None) -> None:
    metrics.observe_request("digits", 3, "rest", 0.002)
    metrics.observe_request("digits", 3, "rest", 0.004)
    metrics.observe_error("digits", None, "unavailable")
    metrics.in_flight("digits").inc()
    metrics.swap_started("digits")
    metrics.swap_failed("digits", "incompatible")
    metrics.swap_started("digits")
    metrics.swap_succeeded("digits")
    metrics.observe_swap("digits", 1.5)
    metrics.set_loaded("digits", 4, 1)
    metrics.set_loaded("digits", 3, 0)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert _value(text, "modelrunner_requests_total", endpoint="digits", version="3", protocol="rest") == 2
    assert _value(text, "modelrunner_request_duration_seconds_count", endpoint="digits", version="3") == 2
    assert _value(text, "modelrunner_request_duration_seconds_bucket", endpoint="digits", le="0.0025") == 1
    errors = "modelrunner_request_errors_total"
    assert _value(text, errors, endpoint="digits", version="", code="unavailable") == 1
    assert _value(text, "modelrunner_requests_in_flight", endpoint="digits") == 1
    assert _value(text, "modelrunner_swaps_started_total", endpoint="digits") == 2
    assert _value(text, "modelrunner_swaps_succeeded_total", endpoint="digits") == 1
    assert _value(text, "modelrunner_swaps_failed_total", endpoint="digits", reason="incompatible") == 1
    assert _value(text, "modelrunner_swap_duration_seconds_count", endpoint="digits") == 1
    assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="4") == 1
    assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="3") == 0


def test_totals_are_correct_across_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    try:
        path = metrics.setup_multiprocess(tmp_path / "prom")
        assert os.environ[metrics.ENV_VAR] == str(path)
        ctx = multiprocessing.get_context("spawn")  # workers inherit the variable, as the supervisor's do
        procs = [ctx.Process(target=record_requests, args=(n, True)) for n in (3, 4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        text = metrics.render()[0].decode()  # the supervisor (or any worker) sees every process
        assert _value(text, REQUESTS, endpoint="digits", version="2", protocol="rest") == 7
        assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="2") == 2
        assert _value(text, "modelrunner_requests_in_flight", endpoint="digits") == 2
        metrics.mark_process_dead(procs[0].pid)  # a dead worker's live gauges go, its counts stay
        text = metrics.render()[0].decode()
        assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="2") == 1
        assert _value(text, REQUESTS, endpoint="digits", version="2", protocol="rest") == 7
    finally:
        os.environ.pop(metrics.ENV_VAR, None)
        metrics.reset()
    metrics.observe_request("after", 1, "rest", 0.1)  # back in single-process mode
    assert _value(metrics.render()[0].decode(), REQUESTS, endpoint="after") == 1


def test_a_forked_child_records_in_its_own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pid that names a process's files is cached (no getpid per inc) and refreshed in a forked child:
    the parent's and the child's counts both reach the total, in two files."""
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    try:
        path = metrics.setup_multiprocess(tmp_path / "prom")
        metrics.observe_request("forked", 1, "rest", 0.01)
        child = multiprocessing.get_context("fork").Process(
            target=metrics.observe_request, args=("forked", 1, "rest", 0.01)
        )
        child.start()
        child.join(60)
        assert child.exitcode == 0
        metrics.observe_request("forked", 1, "rest", 0.01)
        assert _value(metrics.render()[0].decode(), REQUESTS, endpoint="forked") == 3
        assert {f.name for f in path.glob("counter_*.db")} == {
            f"counter_{os.getpid()}.db",
            f"counter_{child.pid}.db",
        }
    finally:
        os.environ.pop(metrics.ENV_VAR, None)
        metrics.reset()


def _record_endpoint(name: str) -> None:
    metrics.observe_request(name, 1, "rest", 0.002)
    metrics.observe_error(name, 1, "invalid_argument")
    metrics.in_flight(name).inc()
    metrics.in_flight(name).dec()
    metrics.swap_started(name)
    metrics.swap_succeeded(name)
    metrics.observe_swap(name, 0.5)
    metrics.observe_batch(name, 4)
    metrics.set_loaded(name, 1, 1)


def _endpoints_in(text: str) -> set[str]:
    return {
        line.split('endpoint="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if 'endpoint="' in line and not line.startswith("#")
    }


def test_a_deleted_endpoint_leaves_metrics_single_process(fresh: None) -> None:
    _record_endpoint("digits")
    _record_endpoint("digitz")
    assert _endpoints_in(metrics.render()[0].decode()) == {"digits", "digitz"}
    metrics.forget_endpoint("digitz")
    text = metrics.render()[0].decode()
    assert _endpoints_in(text) == {"digits"}, text
    assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="1") == 1
    metrics.endpoint_added("digitz")  # created again: reported again, from scratch
    metrics.set_loaded("digitz", 2, 1)
    text = metrics.render()[0].decode()
    assert _value(text, "modelrunner_loaded_version", endpoint="digitz", version="2") == 1
    with pytest.raises(AssertionError):
        _value(text, "modelrunner_loaded_version", endpoint="digitz", version="1")


def test_a_deleted_endpoint_leaves_metrics_multiprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.ENV_VAR, raising=False)
    try:
        metrics.setup_multiprocess(tmp_path / "prom")
        _record_endpoint("digits")
        _record_endpoint("digitz")
        assert _endpoints_in(metrics.render()[0].decode()) == {"digits", "digitz"}
        metrics.forget_endpoint("digitz")
        text = metrics.render()[0].decode()
        assert _endpoints_in(text) == {"digits"}, text
        metrics.endpoint_added("digitz")  # served again: its gauge was zeroed, not left at 1
        text = metrics.render()[0].decode()
        assert _value(text, "modelrunner_loaded_version", endpoint="digitz", version="1") == 0
    finally:
        # Not monkeypatch.delenv: it would record the value setup_multiprocess exported and put it back at
        # teardown, leaving every later test of this process rendering that folder's files as /metrics.
        os.environ.pop(metrics.ENV_VAR, None)
        metrics.reset()


def test_the_prometheus_observer_records_a_swap_as_the_loaded_versions(fresh: None) -> None:
    from modelrunner.monitoring.prometheus import PROMETHEUS

    observer = PROMETHEUS
    observer.endpoint_added("digits")
    observer.swap_started("digits")
    observer.swap_succeeded("digits", 0.5, 1, None)
    observer.swap_succeeded("digits", 0.5, 2, 1)
    observer.request_started("digits")
    observer.request_answered("digits", 2, "rest", 0.001)
    observer.request_ended("digits")
    text = metrics.render()[0].decode()
    assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="2") == 1
    assert _value(text, "modelrunner_loaded_version", endpoint="digits", version="1") == 0
    assert _value(text, "modelrunner_swaps_succeeded_total", endpoint="digits") == 2
    assert _value(text, "modelrunner_requests_in_flight", endpoint="digits") == 0
    assert _value(text, REQUESTS, endpoint="digits", version="2", protocol="rest") == 1
