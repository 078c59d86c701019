"""Serve candidates behind a real HTTP endpoint on 127.0.0.1 for the served speed measurement.

The candidates' bundles are pushed into a throw-away registry in a temporary home (the real registry and
its endpoints are never touched), and ``python -m modelrunner serve`` runs as a subprocess on a free
loopback port with one endpoint per candidate. The server is stopped when the context exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelrunner.errors import Unavailable
from modelrunner.evaluation.candidates import Candidate

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
_ENV_DROP = ("MODELRUNNER_DATABASE_URL", "MODELRUNNER_STORE_URL", "MODELRUNNER_CACHE_DIR", "MODELRUNNER_HOME")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stage(candidates: Sequence[Candidate], home: Path) -> dict[str, str]:
    """Push every candidate into a registry under ``home``; return ``{endpoint name: target}``."""
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    endpoints = {}
    with Registry(Settings(home=home)) as reg:
        for i, cand in enumerate(candidates):
            if cand.pipeline is not None:
                _stage_steps(cand, reg)
            mv = reg.push(cand.bundle_dir, name=cand.name, actor="evaluation")
            endpoints[f"candidate{i}"] = ("pipeline:" if cand.pipeline is not None else "") + mv.ref
    return endpoints


def _stage_steps(cand: Candidate, reg: Registry) -> None:
    """Copy the exact step versions a pipeline resolved to, under the names and aliases its spec uses."""
    from modelrunner.bundle.manifest import Manifest
    from modelrunner.pipelines.package import read_bundle
    from modelrunner.registry.refs import parse_ref

    pv, source = cand.pipeline, cand.source
    if pv is None or source is None:
        raise Unavailable(f"{cand.ref}: not a pipeline read from a registry")
    spec = read_bundle(pv.directory, Manifest.read(pv.directory))
    for name, step in spec.steps.items():
        if not step.model:
            continue
        ref = parse_ref(step.model)
        step_mv = pv.steps[name].mv
        if step_mv is None:
            raise Unavailable(f"{cand.ref}: step {name!r} did not resolve to a registry version")
        mv = reg.push(source.fetch(step_mv), name=ref.name, actor="evaluation")
        if ref.version is not None and ref.version != mv.version:
            raise Unavailable(
                f"{cand.ref}: step {name!r} pins {step.model}; the served measurement of a "
                "pipeline needs alias refs for its steps (use --no-served)"
            )
        if ref.alias is not None and not ref.is_latest:
            reg.set_alias(ref.name, ref.alias, mv.version, actor="evaluation", force=True)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"the evaluation server exited with code {proc.returncode}: {_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise Unavailable(f"the evaluation server was not ready within {timeout:.0f}s: {_tail(log_path)}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def serve_candidates(
    candidates: Sequence[Candidate], *, workers: int = 1, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[dict[str, str]]:
    """Serve ``candidates`` over HTTP on 127.0.0.1; yield ``{candidate.ref: predict URL}``."""
    with tempfile.TemporaryDirectory(prefix="modelrunner-eval-") as tmp:
        home = Path(tmp)
        endpoints = _stage(candidates, home)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        env["MODELRUNNER_HOME"] = str(home)
        cmd = [
            sys.executable,
            "-m",
            "modelrunner",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        for name, target in endpoints.items():
            cmd += ["--endpoint", f"{name}={target}"]
        log_path = home / "server.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, log_path, ready_timeout_s)
            yield {c.ref: f"{base}/v1/endpoints/candidate{i}/predict" for i, c in enumerate(candidates)}
        finally:
            _stop(proc)
