"""``modelrunner ui``: the catalog alone over the registry, as a real process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.catalog_helpers import write_bundle
from support.cli_helpers import Cli
from support.runner_server import free_port


def test_ui_serves_the_catalog_over_the_registry(tmp_home: Path, tmp_path: Path) -> None:
    from modelrunner.registry import Registry

    with Registry.from_env() as registry:
        registry.push(write_bundle(tmp_path / "b", "digits", description="reads digits"), alias="production")
    port = free_port()
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home)}
    env.pop("MODELRUNNER_ADMIN_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelrunner", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "modelrunner ui did not answer in 30 s"
                time.sleep(0.1)
        page = httpx.get(url + "/", follow_redirects=True)
        assert page.status_code == 200 and "reads digits" in page.text
        model = httpx.get(url + "/ui/models/digits").text
        assert "curl -s http://127.0.0.1:8080/v1/endpoints/digits/predict" in model
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/ui" in out


def test_ui_refuses_another_host_without_an_admin_token(cli: Cli) -> None:
    result = cli("ui", "--host", "0.0.0.0", "--port", "0")
    assert result.code == 2 and "MODELRUNNER_ADMIN_TOKEN" in result.err
