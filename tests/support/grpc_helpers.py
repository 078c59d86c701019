"""Helpers for the gRPC / protobuf tests: a registry-backed server with gRPC attached, protoc in the test."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np

from modelrunner.contract import Contract, DType, Field
from modelrunner.settings import Settings
from support.server_helpers import ADMIN_TOKEN, ServerThread, push_sklearn_models


@dataclass
class GrpcStack:
    url: str
    grpc: str
    registry: Any
    runtime: Any
    admin: httpx.Client
    http: httpx.Client


def stack_settings(home: Path) -> Settings:
    return Settings(
        home=home,
        admin_token=ADMIN_TOKEN,
        poll_interval_s=0.05,
        heartbeat_s=0.2,
        drain_timeout_s=5.0,
        max_request_bytes=1024 * 1024,
    )


@contextmanager
def grpc_stack(
    home: Path,
    push: Callable[[Any, Path], None] = push_sklearn_models,
    endpoints: Mapping[str, str] | None = None,
) -> Iterator[GrpcStack]:
    """Registry (SQLite) + pushed models + the real Runtime, served over HTTP and gRPC on 127.0.0.1."""
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app
    from modelrunner.server.grpc.server import attach

    settings = stack_settings(home)
    registry = Registry(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: accuracy is not what these tests check
        push(registry, home / "bundles")
    for name, target in (endpoints or {"digits": "digits@production"}).items():
        registry.set_endpoint(name, target)
    runtime = Runtime(registry, settings)
    app = create_app(runtime, settings)
    server = attach(app)
    try:
        with (
            ServerThread(app) as http,
            httpx.Client(
                base_url=http.url, timeout=30, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as admin,
            httpx.Client(base_url=http.url, timeout=30) as anon,
        ):
            yield GrpcStack(http.url, f"127.0.0.1:{server.port}", registry, runtime, admin, anon)
    finally:
        registry.close()


def compile_proto(text: str, module: str, dest: Path, load: bool = True) -> tuple[ModuleType, ModuleType]:
    """Compile ``.proto`` text with grpcio-tools' protoc as a client would; import ``(pb2, pb2_grpc)``.

    Generated modules register their messages process-wide: import one package's stub once per process
    (``load=False`` only checks that protoc accepts the file).
    """
    from grpc_tools import protoc

    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{module}.proto").write_text(text)
    code = protoc.main(
        [
            "protoc",
            f"-I{dest}",
            f"--python_out={dest}",
            f"--grpc_python_out={dest}",
            str(dest / f"{module}.proto"),
        ]
    )
    assert code == 0, f"protoc failed on the served .proto:\n{text}"
    if not load:
        return ModuleType(f"{module}_pb2"), ModuleType(f"{module}_pb2_grpc")
    sys.path.insert(0, str(dest))
    try:
        return importlib.import_module(f"{module}_pb2"), importlib.import_module(f"{module}_pb2_grpc")
    finally:
        sys.path.remove(str(dest))


def push_scalers(registry: Any, root: Path) -> None:
    """scaler@1 (x[3] -> total), @2 (+ optional scale, + output double: compatible), @3 (x[4]: breaking)."""
    import modelrunner as mr
    from support.scaler_model import Scaler

    mr.save_model(Scaler(), root / "s1", sample={"x": np.zeros((2, 3))}, name="scaler", license="MIT")
    registry.push(root / "s1", alias="production")
    for version, width in ((2, 3), (3, 4)):
        contract = Contract.build(
            [
                Field(name="x", dtype=DType.FLOAT64, shape=(width,)),
                Field(name="scale", dtype=DType.FLOAT64, optional=True, default=1.0),
            ],
            [],
        )
        mr.save_model(
            Scaler(extended=True), root / f"s{version}", contract=contract, name="scaler", license="MIT"
        )
        registry.push(root / f"s{version}")
