"""SIGTERM on ``modelrunner serve`` (runner/workers.py): requests in flight finish, new connections are
refused at once instead of hanging in the listening socket's backlog, and the server exits within the drain
timeout."""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.runner_server import Server, save_sleepy

DRAIN_S = 6.0
IN_FLIGHT_S = 2.5
RELAY_S = 0.3  # the supervisor forwarding SIGTERM to its workers and each closing its listener


def body(seconds: float) -> dict[str, object]:
    return {"instances": [{"x": [seconds, 0.0, 0.0, 0.0]}]}


def in_flight(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r'^modelrunner_requests_in_flight{endpoint="slow"} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def attempt(url: str) -> tuple[str, float]:
    """One new connection after the signal: what happened and how long it took."""
    t0 = time.monotonic()
    try:
        with httpx.Client(timeout=3.0) as client:
            r = client.post(f"{url}/v1/endpoints/slow/predict", json=body(0.0))
        outcome = f"HTTP {r.status_code}"
        if r.status_code == 503:
            assert r.headers.get("connection") == "close", r.headers
    except httpx.ConnectError:
        outcome = "refused"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        outcome = "closed"  # accepted just before the worker stopped listening, closed unanswered
    except httpx.TimeoutException:
        outcome = "hung"
    return outcome, time.monotonic() - t0


def test_sigterm_finishes_in_flight_refuses_new_connections_and_exits_in_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_sleepy(tmp_path / "slow"), name="slow")
        reg.set_endpoint("slow", "slow@1")
    server = Server(home, workers=2, env={"MODELRUNNER_DRAIN_TIMEOUT_S": str(DRAIN_S)})
    url = f"{server.url}/v1/endpoints/slow/predict"
    with server, ThreadPoolExecutor(5) as pool:
        assert server.proc is not None
        busy = [pool.submit(httpx.post, url, json=body(IN_FLIGHT_S), timeout=30) for _ in range(4)]
        deadline = time.monotonic() + 10
        while in_flight(server.url) < 4:
            assert time.monotonic() < deadline, "the slow requests never started"
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # the signal reaches the workers through the supervisor: a connection made in that instant is a
        # request like any other (answered, after the slow ones holding the model); from then on, none may
        # wait
        first = pool.submit(attempt, server.url)
        time.sleep(RELAY_S)
        attempts = []
        while time.monotonic() - signalled < 1.5:
            attempts.append(attempt(server.url))
        early = [first.result()]
        answers = [f.result() for f in busy]
        code = server.proc.wait(DRAIN_S + 5)
        exited_in = time.monotonic() - signalled
    print(
        f"\nafter SIGTERM: {len(early)} + {len(attempts)} new connections, outcomes "
        f"{sorted({o for o, _ in attempts})}, slowest {max(s for _, s in attempts) * 1000:.0f} ms; "
        f"exit {code} after {exited_in:.1f}s"
    )
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert all(r.headers.get("connection") == "close" for r in answers), "kept alive through a drain"
    assert all(outcome != "hung" and seconds < 1.0 for outcome, seconds in attempts), attempts
    assert all(outcome != "hung" for outcome, _ in early), early
    assert attempts[-1][0] == "refused", attempts
    assert code == 0 and exited_in < DRAIN_S, f"exit {code} after {exited_in:.1f}s"
