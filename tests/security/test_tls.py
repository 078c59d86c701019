"""``modelrunner serve --tls-cert --tls-key``: HTTP and gRPC over TLS, trusted through a CA made here."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from support.tls_helpers import make_ca_and_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_over_tls_refuses_plain_http(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_server(tmp_path)
    port, grpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELRUNNER_")}
    env["MODELRUNNER_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    context = ssl.create_default_context(cafile=str(ca))
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                if httpx.get(url + "/readyz", verify=context, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve over TLS did not become ready in 90 s"
                time.sleep(0.2)
        assert httpx.get(url + "/healthz", verify=context, timeout=10).json() == {"status": "ok"}
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port: no answer
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        with pytest.raises(httpx.ConnectError):  # a client not trusting the CA refuses the certificate
            httpx.get(url + "/healthz", timeout=10)
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel:
            channel.unary_unary("/inference.GRPCInferenceService/ServerLive")(b"", timeout=30)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, pytest.raises(grpc.RpcError) as err:
            channel.unary_unary("/inference.GRPCInferenceService/ServerLive")(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
