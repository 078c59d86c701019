"""``python -m modelrunner.demo`` (what ``make run`` runs): trains, pushes, serves, answers, prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_demo_serves_digits_and_prints_commands(tmp_home: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home)}
    cmd = [
        sys.executable,
        "-m",
        "modelrunner.demo",
        "--port",
        str(port),
        "--workers",
        "1",
        "--bundles",
        str(tmp_path / "bundles"),
        "--test-set",
        str(tmp_path / "test.npz"),
        "--exit-when-ready",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "digits version 1 @production" in out
    assert f"serving endpoint 'digits' -> digits@production at http://127.0.0.1:{port}" in out
    assert f"web catalog (models, endpoints, swaps, audit): http://127.0.0.1:{port}/ui" in out
    label_line = next(line for line in out.splitlines() if line.startswith("# predict: this row is a "))
    expected = label_line.split("this row is a ")[1].split(";")[0]
    assert f"the server answered: label {expected} from digits@1" in label_line
    assert f"modelrunner swap digits digits@2 --wait --url http://127.0.0.1:{port}" in out
    assert "modelrunner experiment start digits --candidate digits@2 --mode canary --percent 50" in out
    assert (tmp_path / "bundles" / "digits-lr" / "modelrunner.yaml").is_file()
    ocr_line = next(line for line in out.splitlines() if line.startswith("# this PNG reads "))
    truth = ocr_line.split("this PNG reads ")[1].split(";")[0]
    assert truth.isdigit() and "the server read: " in ocr_line
    assert f"curl -s http://127.0.0.1:{port}/v1/endpoints/ocr/predict -F image=@" in out
    assert "Traceback" not in proc.stderr


def test_demo_refuses_a_busy_port(tmp_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "MODELRUNNER_HOME": str(tmp_home)}
        proc = subprocess.run(
            [sys.executable, "-m", "modelrunner.demo", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 2
    assert f"port {port} is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
