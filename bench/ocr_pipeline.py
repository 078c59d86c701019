"""The OCR pipeline endpoint against the same steps as a plain function behind the bare app, in one run.

Builds the digit-string OCR service of ``examples/ocr`` (``build.py``, recogniser ``svc`` only, no CNN) into
a throw-away registry under ``bench/.cache/ocr``, then launches in turn, 2 workers each, one BLAS thread:

- ``modelrunner serve --endpoint ocr=pipeline:digits-ocr@production`` (decode -> segment -> recognise ->
  assemble, as docs/pipelines.md describes), and
- the bare ASGI app running the same steps as one plain function (``bench/peers/bare_ocr_app.py``: PIL
  decode, the example's segmenter, one ``predict_proba`` of the same recogniser file, labels joined),

and loads each with wrk posting ``examples/ocr/example.png`` as the multipart form ``curl -F image=@...``
sends, at 1 and 16 connections. Reports PNG lines per second, p50/p99 and server CPU per line, and the
pipeline's overhead as ratios (served ÷ plain function). Both run on this interpreter's environment (it
needs modelrunner's ``images`` extra: Pillow). ``make bench`` runs it as its ``ocr`` section.

    python bench/ocr_pipeline.py [--duration 10] [--warmup 2] [--connections 1,16] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen, procs  # noqa: E402
from bench.peers import envs  # noqa: E402
from bench.peers.servers import ONE_THREAD, WORKERS, Launch  # noqa: E402

log = logging.getLogger("bench.ocr")

OCR = ROOT / "examples" / "ocr"
PNG = OCR / "example.png"
BOUNDARY = "benchocrboundary7d1f"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
RESULTS = ROOT / "bench" / "results"
SERVERS = ("pipeline", "plain")
LABELS = {
    "pipeline": "modelrunner serve, pipeline:digits-ocr@production (2 workers)",
    "plain": "bare ASGI app, the same steps as one plain function (uvicorn 2 workers)",
}


def form_body(png: bytes) -> bytes:
    """The multipart form of ``curl -F image=@example.png``."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="example.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def build(home: Path, quick: bool) -> Path:
    """Build the OCR service into ``home`` (once); return the recogniser's joblib file for the plain app."""
    from modelrunner.registry.registry import Registry
    from modelrunner.settings import Settings

    env = _env(home, OCR_CNN="0")
    lines = ["--train-lines", "200", "--test-lines", "50"] if quick else []
    argv = [sys.executable, str(OCR / "build.py"), "--candidates", "svc", *lines]
    log.info("ocr: building the pipeline into %s", home)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"examples/ocr/build.py failed: {(out.stderr or out.stdout).strip()[-400:]}")
    with Registry(Settings(home=home)) as registry:
        folder = registry.fetch(registry.resolve("digit-recognizer@production"))
    recognizer = folder / "model.joblib"
    if not recognizer.exists():
        raise RuntimeError(f"digit-recognizer@production is not a joblib (sklearn) bundle: {folder}")
    return recognizer


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "PROMETHEUS_"))}
    env.update(ONE_THREAD, MODELRUNNER_HOME=str(home), **extra)
    return env


def launch(name: str, port: int, home: Path, recognizer: Path) -> Launch:
    base = f"http://127.0.0.1:{port}"
    if name == "pipeline":
        argv = [sys.executable, "-m", "modelrunner", "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(WORKERS), "--endpoint", "ocr=pipeline:digits-ocr@production"]
        return Launch(argv, f"{base}/v1/endpoints/ocr/predict", "form", home, _env(home))
    path = os.pathsep.join(p for p in (str(OCR), os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "uvicorn", "bare_ocr_app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    argv += ["--log-level", "warning"]
    env = _env(home, PYTHONPATH=path, BENCH_OCR_RECOGNIZER=str(recognizer))
    return Launch(argv, f"{base}/predict", "form", ROOT / "bench" / "peers", env)


def post_form(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": CONTENT_TYPE})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_ready(server: procs.Server, body: bytes, timeout_s: float = 180.0) -> tuple[float, bytes]:
    """Seconds from start to the first answered PNG, and that answer."""
    assert server.proc is not None
    while time.monotonic() < server.started + timeout_s:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}; see {server.log_path}")
        status, answer = post_form(server.launch.url, body, timeout=5.0)
        if status == 200:
            return time.monotonic() - server.started, answer
        if status >= 400 and status != 503:
            raise RuntimeError(f"{server.launch.url} answered {status}: {answer[:300]!r}")
        time.sleep(0.05)
    raise RuntimeError(f"server not ready after {timeout_s:.0f}s; see {server.log_path}")


def cells(name: str, server: procs.Server, body: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for conc in args.connections:
        if args.warmup:
            loadgen.run_wrk(
                server.launch.url, body, connections=conc, seconds=args.warmup, content_type=CONTENT_TYPE
            )
        load, cpu0 = procs.loadavg(), server.cpu_s()
        res = loadgen.run_wrk(
            server.launch.url, body, connections=conc, seconds=args.duration, content_type=CONTENT_TYPE
        )
        cpu_us = (server.cpu_s() - cpu0) / max(res.requests, 1) * 1e6
        out.append(
            {
                "server": name,
                "connections": conc,
                "lines_per_s": round(res.rps, 1),
                "p50_ms": round(res.p50_ms, 2),
                "p99_ms": round(res.p99_ms, 2),
                "failed": res.failed,
                "requests": res.requests,
                "server_cpu_us_per_line": round(cpu_us, 1),
                "loadavg": round(load, 2),
            }
        )
        log.info(
            "ocr %-8s c%-3d %7.0f lines/s p50 %6.1f ms p99 %6.1f ms failed %d, server CPU %.0f us/line",
            name,
            conc,
            res.rps,
            res.p50_ms,
            res.p99_ms,
            res.failed,
            cpu_us,
        )
    return out


def run(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    loadgen.ensure_wrk()
    root = cache / "ocr"
    home = root / ("home-quick" if args.quick else "home")
    recognizer = build(home, args.quick)
    body = root / "body.bin"
    body.write_bytes(form_body(PNG.read_bytes()))
    doc: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": round(procs.loadavg(), 2),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "workers": WORKERS},
        "servers": {},
        "runs": [],
    }
    for name in SERVERS:
        work = root / "work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        server = procs.Server(launch(name, procs.free_port(), home, recognizer), work / "server.log")
        server.start()
        try:
            cold, answer = wait_ready(server, body.read_bytes())
            doc["servers"][name] = {"label": LABELS[name], "cold_start_s": round(cold, 3)}
            doc["servers"][name]["text"] = json.loads(answer).get("text")
            doc["runs"] += cells(name, server, body, args)
        finally:
            server.stop()
    return doc


def _find(doc: dict[str, Any], name: str, conc: int) -> dict[str, Any] | None:
    return next((r for r in doc["runs"] if (r["server"], r["connections"]) == (name, conc)), None)


def report(doc: dict[str, Any]) -> str:
    """The markdown of one OCR document: the cells, then the pipeline's overhead as ratios."""
    if doc.get("error"):
        return f"OCR pipeline: not measured ({doc['error']})."
    lines = [
        f"OCR pipeline endpoint (bench/ocr_pipeline.py), `examples/ocr/example.png` posted as a form, "
        f"{doc['settings']['duration_s']:g} s per cell ({doc['date']}, "
        f"load average {doc['loadavg_start']:.1f} at its start). `pipeline` is the served pipeline, "
        "`plain` the same steps as one function behind the bare ASGI app; both read the line as "
        + " / ".join(repr(s.get("text")) for s in doc["servers"].values())
        + ".",
        "",
        "| server | conn | lines/s | p50 ms | p99 ms | server CPU µs/line | failed | load | "
        "pipeline ÷ plain, lines/s | pipeline ÷ plain, CPU/line |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(doc["runs"], key=lambda r: (r["connections"], r["server"])):
        ours = _find(doc, "pipeline", run["connections"])
        mine = run["server"] == "pipeline"
        ratio = cpu = ""
        if not mine and ours and run["lines_per_s"] and run["server_cpu_us_per_line"]:
            ratio = f"{ours['lines_per_s'] / run['lines_per_s']:.2f}×"
            cpu = f"{ours['server_cpu_us_per_line'] / run['server_cpu_us_per_line']:.2f}×"
        lines.append(
            f"| {'**pipeline**' if mine else run['server']} | {run['connections']} | "
            f"{run['lines_per_s']:,.0f} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} | "
            f"{run['server_cpu_us_per_line']:,.0f} | {run['failed']} | {run['loadavg']:.1f} | "
            f"{ratio} | {cpu} |"
        )
    return "\n".join(lines)


def measure(cache: Path, duration: float, warmup: float, quick: bool = False) -> dict[str, Any]:
    """What ``make bench`` calls: the OCR section's document (:func:`report` reads it)."""
    args = argparse.Namespace(duration=duration, warmup=warmup, connections=[1, 16], quick=quick)
    return run(args, cache)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    p = argparse.ArgumentParser(prog="bench/ocr_pipeline.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each cell")
    p.add_argument("--connections", default="1,16")
    p.add_argument("--quick", action="store_true", help="3 s cells, 1 s warm-up, a smaller build")
    args = p.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",")]
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    doc = run(args, envs.CACHE)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ocr-latest.json").write_text(json.dumps(doc, indent=1))
    md = report(doc)
    (RESULTS / "ocr-latest.md").write_text(md + "\n")
    print("\n" + md)  # noqa: T201 - the table is this command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
