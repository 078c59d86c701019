"""Drift monitoring in the runner: real registry, two workers' sketches merged, alerts audited once, gauges,
and the webhook posted to a real local HTTP receiver (which fails the first attempt)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrunner.bundle import save_model
from modelrunner.monitoring import metrics, webhook
from modelrunner.monitoring.status import drift_status, firing
from modelrunner.runner.runtime import Runtime
from modelrunner.settings import Settings
from support.drift_helpers import digits, shifted


class Receiver:
    """A local HTTP server recording JSON bodies; answers 500 to the first ``fail`` requests."""

    def __init__(self, fail: int = 1) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                ok = receiver.attempts > fail
                if ok:
                    receiver.bodies.append(json.loads(body))
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def digits_endpoint(registry: Any, tmp_path: Path) -> Any:
    d = digits()
    bundle = save_model(
        d.model,
        tmp_path / "digits",
        flavor="python",
        name="digits",
        sample={"pixels": d.x[:2]},
        license="MIT",
        training_data={"pixels": d.x[d.train], "label": d.y[d.train]},
    )
    assert bundle.manifest.profile == "profile.json" and bundle.profile() is not None
    registry.push(bundle.path)
    registry.set_endpoint("digits", "digits@latest")
    return registry


async def _send(rt: Runtime, rows: np.ndarray) -> None:
    ep = rt.get("digits")
    for row in rows:
        await ep.predict({"pixels": row[None, :]})


def test_two_workers_sketch_merge_score_and_alert_once(
    digits_endpoint: Any, tmp_home: Path, receiver: Receiver
) -> None:
    registry, d = digits_endpoint, digits()
    metrics.reset()
    settings = Settings(
        home=tmp_home,
        poll_interval_s=0.05,
        drift_flush_s=3600,
        drift_window_s=300,
        drift_webhook_url=receiver.url,
    )
    workers = [Runtime(registry, settings, worker_id=f"w{i}") for i in range(2)]
    rng = np.random.default_rng(5)
    t0 = (time.time() // 60) * 60 - 3600

    async def main() -> None:
        for rt in workers:
            await rt.start()
        try:
            same = d.x[rng.choice(d.test, 300)]
            await _send(workers[0], same[:140])
            await _send(workers[1], same[140:])
            for rt in workers:
                rt.monitor.flush(t0)
            report = drift_status(registry, "digits", window_s=300, now=t0 + 30)
            assert report.rows == 300 and report.status == "ok"  # both workers' rows, merged
            assert {r.worker for r in registry.sketches("digits")} == {"w0", "w1"}
            assert workers[0].monitor.check(t0 + 30)[0].status == "ok"

            moved = shifted(d.x[rng.choice(d.test, 300)], rng)
            await _send(workers[0], moved[:150])
            await _send(workers[1], moved[150:])
            for rt in workers:
                rt.monitor.flush(t0 + 600)
            first = workers[0].monitor.check(t0 + 610)
            second = workers[1].monitor.check(t0 + 610)
            assert first[0].status == second[0].status == "drift"
        finally:
            for rt in workers:
                await rt.stop()

    asyncio.run(main())
    assert "drift" in firing(registry, "digits")
    audit = registry.audit(subject="digits", action="drift.alert.firing")
    assert [a.after["kind"] for a in audit].count("drift") == 1  # two workers saw it; one audit row
    bodies = receiver.wait(1)
    drift_events = [b for b in bodies if b["kind"] == "drift"]
    assert drift_events and drift_events[0]["state"] == "firing" and drift_events[0]["features"]
    assert receiver.attempts >= 2  # the first POST got a 500 and was retried
    text = metrics.render()[0].decode()
    assert 'modelrunner_feature_drift{endpoint="digits",feature="pixels[10]",version="1"}' in text
    assert 'modelrunner_drift_alert{endpoint="digits",kind="drift"} 1.0' in text


def test_alert_resolves_when_traffic_is_back(digits_endpoint: Any) -> None:
    from modelrunner.monitoring.monitor import update_alerts
    from modelrunner.monitoring.status import served

    registry, d = digits_endpoint, digits()
    target = served(registry, "digits")
    rng = np.random.default_rng(9)
    from modelrunner.monitoring.drift import evaluate

    bad = evaluate(
        target.profile,
        d.sketch(target.profile, shifted(d.x[d.test[:300]], rng)),
        endpoint="digits",
        model="digits",
        version=1,
    )
    good = evaluate(
        target.profile,
        d.sketch(target.profile, d.x[d.test[:300]]),
        endpoint="digits",
        model="digits",
        version=1,
    )
    assert [e["kind"] for e in update_alerts(registry, bad)] == ["drift"]
    assert update_alerts(registry, bad) == []
    resolved = update_alerts(registry, good)
    assert [(e["kind"], e["state"]) for e in resolved] == [("drift", "resolved")]
    assert registry.audit(subject="digits", action="drift.alert.resolved")


def test_webhook_gives_up_on_a_client_error_and_retries_server_errors() -> None:
    r = Receiver(fail=2)
    try:
        assert webhook.post(r.url, {"kind": "drift"}, backoff_s=0.01)
        assert r.attempts == 3 and r.bodies == [{"kind": "drift"}]
        assert not webhook.post("http://127.0.0.1:9/none", {}, attempts=2, backoff_s=0.01)
    finally:
        r.close()


def test_online_accuracy_joins_logged_predictions_with_feedback(digits_endpoint: Any) -> None:
    from datetime import UTC, datetime

    from modelrunner.registry.types import PredictionRecord

    registry = digits_endpoint
    now = datetime.now(UTC)
    records = [
        PredictionRecord(
            request_id=f"r{i}",
            endpoint="digits",
            variant="main",
            model="digits",
            version=1,
            ts=now,
            latency_ms=1.0,
            outputs={"label": [i % 3], "probabilities": [[0.5, 0.5]]},
        )
        for i in range(10)
    ]
    registry.log_predictions(records)
    registry.record_feedback("digits", [(f"r{i}", i % 3 if i < 8 else 9) for i in range(10)])
    report = drift_status(registry, "digits", window_s=600)
    assert report.labelled_rows == 10 and report.online_accuracy == 0.8
