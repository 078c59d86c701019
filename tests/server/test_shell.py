"""A worker's ASGI app (server/shell.py): predictions and health first, the rest once the routed app is up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelrunner.server.shell import WorkerApp
from modelrunner.settings import Settings
from support.server_helpers import ServerThread, StaticRuntime

BODY = {"instances": [{"x": [1.0, 2.0, 3.0, -1.0]}]}


def blocked_build(
    runtime: StaticRuntime, settings: Settings, gate: threading.Event, fail: bool = False
) -> Callable[[], Any]:
    def build() -> Any:
        from modelrunner.server.app import create_app

        gate.wait(20)
        if fail:
            raise RuntimeError("routed app broke")
        return create_app(runtime, settings)

    return build


@pytest.fixture
def gated(toy_runtime: StaticRuntime, settings: Settings) -> Iterator[tuple[str, threading.Event, WorkerApp]]:
    gate = threading.Event()
    app = WorkerApp(toy_runtime, settings, blocked_build(toy_runtime, settings, gate))
    with ServerThread(app) as server:
        yield server.url, gate, app
        gate.set()


def test_predictions_and_health_are_answered_before_the_routed_app(
    gated: tuple[str, threading.Event, WorkerApp], toy_server: str
) -> None:
    url, gate, app = gated
    with httpx.Client(base_url=url, timeout=10) as client, httpx.Client(base_url=toy_server) as routed:
        one_id = {"x-request-id": "one-id"}
        r = client.post("/v1/endpoints/toy/predict", json=BODY, headers=one_id)
        same = routed.post("/v1/endpoints/toy/predict", json=BODY, headers=one_id)
        assert r.status_code == 200 and r.json() == same.json()
        assert r.headers["x-modelrunner-version"] == same.headers["x-modelrunner-version"]
        broken: dict[str, Any] = {"content": b"{nope", "headers": {"content-type": "application/json"}}
        bad = client.post("/v1/endpoints/toy/predict", **broken)
        assert bad.status_code == 400
        assert bad.json() == routed.post("/v1/endpoints/toy/predict", **broken).json()
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            503,
            {
                "status": "not ready",
                "waiting_for": ["empty"],
                "not_serving": {"empty": {"state": "empty", "error": None}},
            },
        )
        assert ready.json() == routed.get("/readyz").json()
    assert app.app is None, "the routed app was built although its build is still blocked"


def test_other_requests_wait_for_the_routed_app_then_go_to_it(
    gated: tuple[str, threading.Event, WorkerApp],
) -> None:
    url, gate, app = gated
    with httpx.Client(base_url=url, timeout=20) as client, ThreadPoolExecutor(2) as pool:
        v2 = pool.submit(client.get, "/v2/models/toy")
        traced = pool.submit(client.post, "/v1/endpoints/toy/predict?trace=1", json=BODY)
        time.sleep(0.3)
        assert not v2.done() and not traced.done(), "answered before the routed app existed"
        gate.set()
        assert v2.result().status_code == 200 and v2.result().json()["name"] == "toy"
        assert traced.result().status_code == 200 and "trace" in traced.result().json()
        assert app.app is not None
        assert client.get("/openapi.json").status_code == 200  # health and the rest now from the routed app


def test_a_routed_app_that_fails_to_build_answers_500_and_predictions_go_on(
    toy_runtime: StaticRuntime, settings: Settings
) -> None:
    gate = threading.Event()
    gate.set()
    app = WorkerApp(toy_runtime, settings, blocked_build(toy_runtime, settings, gate, fail=True))
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.get("/v2/models/toy")
        assert r.status_code == 500 and r.json() == {"error": "internal error: RuntimeError"}
        assert "Traceback" not in r.text
        assert client.post("/v1/endpoints/toy/predict", json=BODY).status_code == 200


def test_lifespan_starts_and_stops_runtime_and_grpc_in_order(settings: Settings) -> None:
    calls: list[str] = []

    class Part:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        async def start(self) -> None:
            calls.append(f"{self.name} start")
            if self.fail:
                raise RuntimeError("no model")

        async def stop(self) -> None:
            calls.append(f"{self.name} stop")

    async def lifespan(app: WorkerApp) -> list[dict[str, Any]]:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: Any) -> None:
            sent.append(dict(message))

        await app({"type": "lifespan"}, receive, send)
        if app._building is not None:
            await app._building
        return sent

    built = WorkerApp(Part("runtime"), settings, lambda: "routed", grpc=Part("grpc"))  # type: ignore[arg-type,return-value]
    sent = asyncio.run(lifespan(built))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == ["runtime start", "grpc start", "grpc stop", "runtime stop"]
    assert built.app == "routed"

    calls.clear()
    sent = asyncio.run(lifespan(WorkerApp(Part("runtime", fail=True), settings, lambda: "x")))  # type: ignore[arg-type,return-value]
    assert sent == [{"type": "lifespan.startup.failed", "message": "RuntimeError: no model"}]
    assert calls == ["runtime start"]


def test_a_worker_does_not_import_fastapi_before_it_takes_traffic(tmp_home: Path) -> None:
    """Nor protobuf or gRPC (on the first request that needs them). (Its registry is a fresh one under
    ``tmp_home``, not the user's default.)"""
    code = (
        "import sys; from modelrunner.runner.child import parse_args; "
        "from modelrunner.server import compose; "
        "compose.worker_server(parse_args(['--fd', '0', '--slot', '0', '--port', '1'])); "
        "print(sorted(m for m in ('fastapi', 'starlette', 'google.protobuf', 'grpc') if m in sys.modules))"
    )
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_a_start_still_waiting_is_abandoned_when_the_server_is_asked_to_exit(settings: Settings) -> None:
    """SIGTERM while a worker waits for ``serve``'s targets: it stops at once, not after the 30 s wait."""
    events: list[str] = []
    exiting = [False]

    class WaitingRuntime:
        async def start(self) -> None:
            events.append("start")
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                events.append("start cancelled")
                raise

        async def stop(self) -> None:
            events.append("stop")

    async def scenario() -> tuple[list[str], float]:
        app = WorkerApp(
            WaitingRuntime(),
            settings,
            lambda: "routed",  # type: ignore[arg-type,return-value]
            exiting=lambda: exiting[0],
        )
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[str] = []

        async def send(message: Any) -> None:
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                await inbox.put({"type": "lifespan.shutdown"})

        await inbox.put({"type": "lifespan.startup"})
        asyncio.get_running_loop().call_later(0.2, lambda: exiting.__setitem__(0, True))
        t0 = time.monotonic()
        await asyncio.wait_for(app({"type": "lifespan"}, inbox.get, send), 5)
        assert app._building is None, "an abandoned start must not build the routed app"
        return sent, time.monotonic() - t0

    sent, took = asyncio.run(scenario())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["start", "start cancelled", "stop"]
    assert took < 2
