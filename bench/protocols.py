"""Protocols side by side, in one run: the same digits requests over every wire format modelrunner speaks.

Starts ``modelrunner serve --grpc-port`` (a throw-away registry with one LogisticRegression on sklearn's
digits), then sends the same 1-row and 100-row requests over native JSON (``/v1``), V2 JSON (``/v2``),
protobuf over HTTP (``application/x-protobuf`` on ``/v1``), V2 gRPC (``ModelInfer`` with
``raw_input_contents``, as tritonclient sends) and the endpoint's own gRPC ``Predict``. Each cell is a closed
loop of ``--concurrency`` connections for ``--duration`` seconds after a warm-up; bodies are built once, so
the client measures the server (and its protocol), not client-side encoding. Prints req/s, p50, p99 and the
server's CPU per request (its process tree, during the measured seconds) per protocol, and by how much the
binary protocols beat JSON (protobuf/HTTP over native JSON, V2 gRPC over V2 JSON); writes
``bench/results/protocols-latest.{json,md}``. ``make bench`` runs it as its ``protocols`` section
(:func:`measure`, 2 workers, 16 connections).

    python bench/protocols.py [--workers 1] [--concurrency 8] [--duration 5] [--warmup 1] [--protocols ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import procs  # noqa: E402
from bench.protoclient import make_calls, measure_cell  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PROTOBUF = "application/x-protobuf"
READY_TIMEOUT_S = 300.0  # generous: on a loaded shared machine a start took over 2 minutes


@dataclass
class Cell:
    protocol: str
    rows: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_request: float = 0.0


# -- the server ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(home: Path) -> np.ndarray:
    """Push digits@1 (LogisticRegression) into a registry under ``home``; return the digits inputs."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import modelrunner as mr
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=200).fit(x, y)
    mr.save_model(model, home / "bundle", name="digits", sample=x[:2], license="MIT")
    with Registry(Settings(home=home)) as registry:
        registry.push(home / "bundle")
    return np.asarray(x, dtype=np.float64)


def start_server(home: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, str]:
    port, grpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELRUNNER_")}
    env.update(MODELRUNNER_HOME=str(home), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
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
        str(workers),
        "-e",
        "digits=digits@1",
    ]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"modelrunner serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, url, f"127.0.0.1:{grpc_port}"
        except OSError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"modelrunner serve was not ready in {READY_TIMEOUT_S:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- the requests -------------------------------------------------------------------------------------------


def bodies(x: np.ndarray, contract: Any) -> dict[str, tuple[str, str, bytes]]:
    """protocol -> (HTTP path or gRPC method, content type, body bytes) for the rows in ``x``."""
    from modelrunner.contract.proto import columns_to_request_bytes
    from modelrunner.server.proto import grpc_predict_v2_pb2 as pb

    n = len(x)
    native = json.dumps({"instances": [{"input": row} for row in x.tolist()]}).encode()
    v2 = json.dumps(
        {"inputs": [{"name": "input", "shape": [n, 64], "datatype": "FP64", "data": x.reshape(-1).tolist()}]}
    ).encode()
    proto = columns_to_request_bytes({"input": x}, contract, "modelrunner.digits")
    infer = pb.ModelInferRequest(model_name="digits")
    infer.inputs.add(name="input", datatype="FP64", shape=[n, 64])
    infer.raw_input_contents.append(x.astype("<f8").tobytes())
    return {
        "native JSON": ("/v1/endpoints/digits/predict", "application/json", native),
        "V2 JSON": ("/v2/models/digits/infer", "application/json", v2),
        "protobuf/HTTP": ("/v1/endpoints/digits/predict", PROTOBUF, proto),
        "V2 gRPC": ("/inference.GRPCInferenceService/ModelInfer", "grpc", infer.SerializeToString()),
        "gRPC Predict": ("/modelrunner.digits.Model/Predict", "grpc", proto),
    }


def cell(protocol: str, rows: int, latencies: list[float], errors: int, elapsed: float, cpu_s: float) -> Cell:
    ms = sorted(v * 1000 for v in latencies) or [float("nan")]
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    cpu_us = cpu_s / max(len(latencies), 1) * 1e6
    return Cell(
        protocol, rows, len(latencies), errors, len(latencies) / elapsed, statistics.median(ms), p99, cpu_us
    )


async def run_all(
    url: str,
    grpc_target: str,
    x: np.ndarray,
    contract: Any,
    args: argparse.Namespace,
    server_cpu: Callable[[], float],
) -> list[Cell]:
    out = []
    for rows in (1, 100):
        for protocol, spec in bodies(x[:rows], contract).items():
            if args.protocols and protocol not in args.protocols:
                continue
            calls = make_calls(url, grpc_target, spec, args.concurrency)
            try:
                latencies, errors, elapsed, cpu_s = await measure_cell(
                    calls, args.duration, args.warmup, server_cpu
                )
            finally:
                await asyncio.gather(*(c.close() for c in calls))
            out.append(cell(protocol, rows, latencies, errors, elapsed, cpu_s))
            c = out[-1]
            print(
                f"{protocol:14} {rows:4} rows  {c.rps:8.0f} req/s  p50 {c.p50_ms:6.2f} ms  "
                f"p99 {c.p99_ms:6.2f} ms  server CPU {c.server_cpu_us_per_request:6.0f} us/req  "
                f"errors {errors}",
                flush=True,
            )
    return out


def table(cells: list[Cell]) -> str:
    lines = [
        "| protocol | rows | req/s | p50 ms | p99 ms | server CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.protocol} | {c.rows} | {c.rps:,.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | "
        f"{c.server_cpu_us_per_request:,.0f} | {c.errors} |"
        for c in cells
    ]
    return "\n".join(lines)


PAIRS = [("protobuf/HTTP", "native JSON"), ("V2 gRPC", "V2 JSON"), ("gRPC Predict", "native JSON")]
"""(binary, the JSON it replaces): the comparisons the summary states."""


def wins(cells: list[Cell]) -> list[dict[str, Any]]:
    """For each pair of :data:`PAIRS` and row count: req/s and server CPU per request, binary ÷ JSON."""
    by = {(c.protocol, c.rows): c for c in cells}
    out = []
    for binary, json_ in PAIRS:
        for rows in (1, 100):
            b, j = by.get((binary, rows)), by.get((json_, rows))
            if b is None or j is None or not j.rps or not b.server_cpu_us_per_request:
                continue
            out.append(
                {
                    "binary": binary,
                    "json": json_,
                    "rows": rows,
                    "rps_ratio": round(b.rps / j.rps, 2),
                    "cpu_ratio": round(b.server_cpu_us_per_request / j.server_cpu_us_per_request, 2),
                }
            )
    return out


def summary(cells: list[Cell]) -> str:
    """One sentence per comparison: how much the binary protocol wins (req/s and server CPU per request)."""
    lines = []
    for w in wins(cells):
        lines.append(
            f"- {w['rows']} row{'s' if w['rows'] > 1 else ''}: **{w['binary']}** answers "
            f"{w['rps_ratio']:.2f}× "
            f"the req/s of {w['json']}, with {w['cpu_ratio']:.2f}× its server CPU per request"
        )
    return "\n".join(lines)


def report(doc: dict[str, Any]) -> str:
    """The markdown of one protocols document (as :func:`measure` returns it)."""
    if doc.get("error"):
        return f"Protocols: not measured ({doc['error']})."
    meta = doc["meta"]
    cells = [Cell(**c) for c in doc["cells"]]
    return (
        f"Protocols (bench/protocols.py), digits LogisticRegression, {meta['workers']} worker(s), "
        f"{meta['concurrency']} connections (Python asyncio client on the same cores), "
        f"{meta['duration']:g} s "
        f"per cell ({meta['date']}, load average {meta.get('loadavg', 0):.1f}).\n\n{table(cells)}\n\n"
        f"Binary against JSON, same run:\n\n{summary(cells)}"
    )


def measure(
    workers: int = 1,
    concurrency: int = 16,
    duration: float = 5.0,
    warmup: float = 1.0,
    protocols: list[str] | None = None,
) -> dict[str, Any]:
    """Serve digits on a throw-away registry, load every protocol; the document :func:`report` reads."""
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    args = argparse.Namespace(
        workers=workers, concurrency=concurrency, duration=duration, warmup=warmup, protocols=protocols
    )
    load = procs.loadavg()
    with tempfile.TemporaryDirectory(prefix="modelrunner-bench-") as tmp:
        home = Path(tmp)
        x = prepare(home)
        with Registry(Settings(home=home)) as registry:
            contract = registry.resolve("digits@1").contract
        proc, url, grpc_target = start_server(home, workers)
        try:
            cpu = lambda: sum(procs.cpu_s(pid) for pid in procs.tree(proc.pid))  # noqa: E731
            cells = asyncio.run(run_all(url, grpc_target, x, contract, args, cpu))
        finally:
            stop_server(proc)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg": load,
        **vars(args),
    }
    return {"meta": meta, "cells": [asdict(c) for c in cells], "wins": wins(cells)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/protocols.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument(
        "--protocols",
        type=lambda v: [s.strip() for s in v.split(",")],
        default=None,
        help="comma-separated subset, e.g. 'native JSON,V2 gRPC' (default: all)",
    )
    args = p.parse_args(argv)
    doc = measure(args.workers, args.concurrency, args.duration, args.warmup, args.protocols)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "protocols-latest.json").write_text(json.dumps(doc, indent=2))
    md = report(doc) + "\n"
    (RESULTS / "protocols-latest.md").write_text(md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
