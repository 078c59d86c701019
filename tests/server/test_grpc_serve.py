"""``modelrunner serve --grpc-port``: N worker processes share one gRPC port (SO_REUSEPORT) next to HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

from modelrunner.contract.proto import columns_to_request_bytes, response_bytes_to_columns
from modelrunner.settings import Settings
from support.grpc_helpers import push_scalers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "MODELRUNNER_HOME": str(home), "MODELRUNNER_HEARTBEAT_S": "0.5"}
    for var in (
        "MODELRUNNER_DATABASE_URL",
        "MODELRUNNER_STORE_URL",
        "MODELRUNNER_CACHE_DIR",
        "PROMETHEUS_MULTIPROC_DIR",
        "MODELRUNNER_ADMIN_TOKEN",
    ):
        env.pop(var, None)
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modelrunner.registry.registry import Registry

    home = tmp_path_factory.mktemp("serve")
    with Registry(Settings(home=home)) as registry:
        push_scalers(registry, home / "bundles")
    return home


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[tuple[str, str]]:
    port, grpc_port = _free_port(), _free_port()
    argv = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        "--workers",
        "2",
        "-e",
        "scaler=scaler@production",
    ]
    proc = subprocess.Popen(argv, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield url, f"127.0.0.1:{grpc_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "serve exited"
        try:
            if (
                httpx.get(f"{url}/readyz", timeout=2).status_code == 200
                and len(httpx.get(f"{url}/admin/workers", timeout=2).json()) == 2
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("modelrunner serve did not become ready")


def test_two_workers_answer_v2_grpc_on_one_port(served: tuple[str, str]) -> None:
    _url, target = served
    x = np.array([[1.0, 2.0, 3.0]])
    for _ in range(6):  # a new connection each time: the kernel spreads them over the workers
        client = triton.InferenceServerClient(target)
        try:
            assert client.is_server_ready()
            inp = triton.InferInput("x", [1, 3], "FP64")
            inp.set_data_from_numpy(x)
            assert client.infer("scaler", [inp]).as_numpy("total").tolist() == [6.0]
        finally:
            client.close()


def test_contract_service_over_grpc(served: tuple[str, str]) -> None:
    url, target = served
    contract = httpx.get(f"{url}/v1/endpoints/scaler/contract").json()["contract"]
    from modelrunner.contract import Contract

    c = Contract.from_dict(contract)
    x = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    body = columns_to_request_bytes({"x": x}, c, "modelrunner.scaler")
    with grpc.insecure_channel(target) as channel:
        answer = channel.unary_unary("/modelrunner.scaler.Model/Predict")(body)
    assert response_bytes_to_columns(answer, c, "modelrunner.scaler")["total"].tolist() == [3.0, 6.0]


def test_grpc_port_taken_is_a_clear_error(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        argv = [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--port",
            "0",
            "--grpc-port",
            str(taken.getsockname()[1]),
        ]
        done = subprocess.run(argv, env=_env(home), capture_output=True, timeout=60)
    assert done.returncode == 2
    assert "cannot listen on 127.0.0.1" in done.stderr.decode()
