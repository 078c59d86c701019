"""Small in-test predictors, deployments and bundles for runner unit tests.

Hand-made bundles carry a ``behaviour.json`` telling the in-test :class:`Loader` (a stand-in flavor that
still fetches through the registry) what to build: a working model, a load error or a warm-up error.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from modelrunner.bundle.manifest import Manifest
from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract
from modelrunner.contract.types import DType, Field
from modelrunner.runner.endpoint import Deployment
from modelrunner.runner.runtime import Runtime
from modelrunner.settings import Settings

CONTRACT = Contract.build(
    [Field(name="x", dtype=DType.FLOAT64, shape=(2,))], [Field(name="y", dtype=DType.INT64)]
)


class TagPredictor(Predictor):
    """Answers every row with its tag; optionally blocks on ``gate`` so a request stays in flight."""

    def __init__(self, tag: int, gate: threading.Event | None = None, size_mb: int = 0) -> None:
        self.contract = CONTRACT
        self.tag = tag
        self.gate = gate
        self.entered = threading.Event()
        self.threads: list[str] = []
        self.closed = 0
        self.payload = np.ones(size_mb * 1024 * 1024 // 8) if size_mb else None

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if self.gate is not None and not self.gate.wait(10):
            raise RuntimeError("gate never opened")
        n = len(columns["x"])
        return {"y": np.full(n, self.tag, dtype=np.int64)}

    def close(self) -> None:
        self.closed += 1
        self.payload = None


def deployment(predictor: TagPredictor, endpoint: str = "ep", model: str = "m") -> Deployment:
    return Deployment(
        endpoint=endpoint,
        model=model,
        version=predictor.tag,
        ref=f"{model}@{predictor.tag}",
        target=f"{model}@{predictor.tag}",
        contract=predictor.contract,
        predictor=predictor,
        sha256=f"sha{predictor.tag}",
    )


def batch(n: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.zeros((n, 2))}


BEHAVIOUR = "behaviour.json"


def make_contract(inputs: tuple[str, ...] = ("x",)) -> Contract:
    return Contract.build(
        [Field(name=n, dtype=DType.FLOAT64, shape=(2,)) for n in inputs], [Field(name="y", dtype=DType.INT64)]
    )


def write_bundle(path: Path, name: str, tag: int, mode: str = "ok", inputs: tuple[str, ...] = ("x",)) -> Path:
    """A bundle folder whose ``behaviour.json`` tells :func:`loader` what to build."""
    path.mkdir(parents=True, exist_ok=True)
    Manifest(
        name=name,
        flavor="python",
        contract=make_contract(inputs),
        license="MIT",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        example_input=None,
    ).dump(path)
    (path / BEHAVIOUR).write_text(json.dumps({"tag": tag, "mode": mode, "inputs": list(inputs)}))
    return path


class BundlePredictor(Predictor):
    def __init__(self, contract: Contract, tag: int, mode: str) -> None:
        self.contract = contract
        self.tag = tag
        self.mode = mode
        self.closed = False

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        if self.mode == "warmup_error":
            raise RuntimeError("model exploded on its example input")
        if self.mode == "fails_on_data" and any(np.any(c) for c in columns.values()):
            raise RuntimeError("model exploded on real data")  # passes the warm-up (zeros), fails later
        n = len(next(iter(columns.values())))
        return {"y": np.full(n, self.tag, dtype=np.int64)}

    def close(self) -> None:
        self.closed = True


class Loader:
    """The in-test flavor: fetches the bundle through the registry and builds a BundlePredictor."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.predictors: list[BundlePredictor] = []

    def __call__(self, registry: Any, mv: Any) -> tuple[Predictor, dict[str, np.ndarray]]:
        self.loaded.append(mv.ref)
        spec = json.loads((registry.fetch(mv) / BEHAVIOUR).read_text())
        if spec["mode"] == "load_error":
            raise ValueError("pickle data was truncated")
        if spec["mode"] == "import_race_once" and self.loaded.count(mv.ref) == 1:  # what two threads
            # unpickling sklearn models at once used to hit: fails once, then loads
            raise ImportError(
                "cannot import name 'BaseLibSVM' from partially initialized module "
                "'sklearn.svm._base' (most likely due to a circular import)"
            )
        predictor = BundlePredictor(mv.contract, spec["tag"], spec["mode"])
        self.predictors.append(predictor)
        return predictor, {n: np.zeros((2, 2)) for n in spec["inputs"]}


def runtime(reg: Any, home: Path, loader: Any, **kw: Any) -> Runtime:
    settings = Settings(home=home, poll_interval_s=0.02, heartbeat_s=0.1, drain_timeout_s=2.0)
    return Runtime(reg, settings, worker_id="test-w0", loader=loader, **kw)


async def served(rt: Runtime, name: str = "ep") -> int:
    out = await rt.get(name).predict({"x": np.zeros((1, 2))})
    return int(out.columns["y"][0])


def run(coro: Any) -> Any:
    async def guarded():
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait([task], timeout=8)
        if not done:
            for t in asyncio.all_tasks():
                t.print_stack()
            raise AssertionError("hung")
        return task.result()

    return asyncio.run(guarded())


async def _started(reg: Any, home: Path, loader: Any, worker: str = "test-w0", **settings: Any) -> Runtime:
    rt = runtime(reg, home, loader)
    rt.worker_id = worker
    for key, value in settings.items():
        setattr(rt.predictions, key, value)
    await rt.start()
    return rt
