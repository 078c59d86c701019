"""Server test helpers: a real uvicorn server on 127.0.0.1 in a background thread, toy and real models."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np
import uvicorn

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract, DType, Field
from modelrunner.runner.endpoint import Deployment, Endpoint

TOY_CONTRACT = Contract.build(
    [
        Field(name="x", dtype=DType.FLOAT64, shape=(4,), description="four numbers"),
        Field(name="scale", dtype=DType.FLOAT32, optional=True, default=1.0),
    ],
    [
        Field(name="label", dtype=DType.INT64),
        Field(name="total", dtype=DType.FLOAT64),
        Field(name="proba", dtype=DType.FLOAT64, shape=(2,)),
    ],
)
ONE_INPUT = Contract.build(
    [Field(name="text", dtype=DType.STRING)], [Field(name="length", dtype=DType.INT64)]
)


class SumPredictor(Predictor):
    """label = 1 when sum(x) * scale > 0; total = the scaled sum; proba = [p0, p1]."""

    def __init__(self) -> None:
        self.contract = TOY_CONTRACT

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        total = columns["x"].sum(axis=1) * columns["scale"]
        label = (total > 0).astype(np.int64)
        proba = np.stack([1.0 - label, label.astype(np.float64)], axis=1)
        return {"label": label, "total": total.astype(np.float64), "proba": proba}


class LengthPredictor(Predictor):
    def __init__(self) -> None:
        self.contract = ONE_INPUT

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        return {"length": np.array([len(s) for s in columns["text"]], dtype=np.int64)}


def toy_deployment(
    endpoint: str, predictor: Predictor, version: int = 3, model: str | None = None
) -> Deployment:
    model = model or endpoint
    return Deployment(
        endpoint=endpoint,
        model=model,
        version=version,
        ref=f"{model}@{version}",
        target=f"{model}@production",
        contract=predictor.contract,
        predictor=predictor,
    )


class StaticRuntime:
    """A runtime over fixed endpoints (no registry): for data-plane tests."""

    def __init__(self, endpoints: dict[str, Endpoint], registry: Any = None) -> None:
        self.endpoints = endpoints
        self.registry = registry
        self.started = self.stopped = False

    def get(self, name: str) -> Endpoint:
        from modelrunner.errors import NotFound

        try:
            return self.endpoints[name]
        except KeyError:
            raise NotFound(f"no endpoint {name!r}") from None

    @property
    def ready(self) -> bool:
        return self.started and all(ep.ready for ep in self.endpoints.values())

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


class ServerThread:
    """Runs an ASGI app with uvicorn on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name="uvicorn-test")

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


# -- the full stack: a real registry (SQLite), real sklearn bundles, the real Runtime ----------------------

ADMIN_TOKEN = "s3cret-token"


class Stack:
    """A served registry-backed runtime: ``url``, ``registry``, ``runtime``, ``admin`` (authorized client)."""

    def __init__(self, url: str, registry: Any, runtime: Any) -> None:
        self.url = url
        self.registry = registry
        self.runtime = runtime
        self.admin = httpx.Client(
            base_url=url, timeout=30, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        self.anon = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self.admin.close()
        self.anon.close()


def push_sklearn_models(registry: Any, root: Any, versions: int = 3) -> None:
    """digits@1, digits@2 (compatible), digits@3 (iris: an incompatible contract); the first ``versions``."""
    from sklearn.datasets import load_digits, load_iris
    from sklearn.linear_model import LogisticRegression

    import modelrunner as mr

    x, y = load_digits(return_X_y=True)
    for version, c in ((1, 1.0), (2, 0.1))[:versions]:
        model = LogisticRegression(C=c, max_iter=40).fit(x[:200], y[:200])  # fast; accuracy is not tested
        mr.save_model(model, root / f"digits{version}", sample=x[:5], license="MIT", name="digits")
        registry.push(root / f"digits{version}", alias="production" if version == 1 else None)
    if versions < 3:
        return
    xi, yi = load_iris(return_X_y=True)
    iris = LogisticRegression(max_iter=40).fit(xi, yi)
    mr.save_model(iris, root / "iris", sample=xi[:5], license="MIT", name="digits")
    registry.push(root / "iris")


class ServeProcess:
    """``python -m modelrunner serve --workers N`` on a free port (a real multi-process server)."""

    def __init__(self, home: Any, *args: str, workers: int = 2) -> None:
        import os
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MODELRUNNER_HOME": str(home), "MODELRUNNER_HEARTBEAT_S": "0.5"}
        for var in (
            "MODELRUNNER_DATABASE_URL",
            "MODELRUNNER_STORE_URL",
            "MODELRUNNER_CACHE_DIR",
            "MODELRUNNER_ADMIN_TOKEN",
            "PROMETHEUS_MULTIPROC_DIR",
        ):
            self.env.pop(var, None)
        self.argv = [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *args,
        ]
        self.proc: Any = None

    def __enter__(self) -> ServeProcess:
        import subprocess

        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with self.proc.stderr:
                    raise RuntimeError(f"serve exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("serve did not become ready in 90 s")

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except Exception:  # noqa: BLE001 - last resort: our own child only
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
