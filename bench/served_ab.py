"""Served CPU per request, before and after: modelrunner from several source trees against the same-work bare
app, each served for real (1 worker unless ``--workers``, uvicorn over a socket, wrk on keep-alive
connections), interleaved.

``bench/hotpath.py`` calls the app in-process: it leaves out what a served worker also pays (uvicorn's
protocol, the socket, the worker's background tasks). This serves each variant in turn, ``--repeat`` times,
and prints the server's CPU per request (all its processes) and its ratio to the bare app's, as medians::

    python bench/served_ab.py new=src                          # this checkout against the bare app
    python bench/served_ab.py old=/tmp/base/src new=src --repeat 5 --rows 100
    python bench/served_ab.py new=src nodrift=src,MODELRUNNER_DRIFT_MONITORING=false

A variant is ``LABEL=SRC[,ENV=VALUE...]``: modelrunner imported from ``SRC`` (e.g. ``git archive main src``
unpacked somewhere) by this interpreter, with extra environment. Batching is off unless ``--batching``
(the goals' CPU cells are batching off). CPU per request is steadier than req/s on a busy machine, but not
immune: run the variants interleaved (the default) and compare medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen, models, procs  # noqa: E402
from bench.peers import envs, servers  # noqa: E402


def launch(label: str, spec: str | None, work: Path, joblib_path: Path, workers: int = 1) -> servers.Launch:
    """The bare app (``spec`` None) or modelrunner from the source tree ``spec`` names, on ``workers``."""
    servers.WORKERS = workers
    port = procs.free_port()
    if spec is None:
        return servers.bare_proba(models.MODELS[0], port, work / label, joblib_path)
    src, *extra = spec.split(",")
    made = servers.modelrunner(models.MODELS[0], port, work / label, joblib_path)
    made.argv[0] = sys.executable
    for item in extra:
        key, _, value = item.partition("=")
        made.env[key] = value
    made.env["PYTHONPATH"] = str(Path(src).resolve())
    made.env["PYTHONPYCACHEPREFIX"] = str(envs.CACHE / "pycache" / label)
    return made


def measure(label: str, made: servers.Launch, args: argparse.Namespace, work: Path) -> tuple[float, float]:
    """(server CPU µs per request, req/s) of one launch under wrk."""
    server = procs.Server(made, work / f"{label}.log")
    body = models.body_path(envs.CACHE, made.body_form, args.rows)
    server.start()
    try:
        server.wait_ready(body.read_bytes())
        if made.admin_url and not args.batching:
            procs.set_batching(made.admin_url, models.MODELS[0].endpoint, {"batch": False})
        loadgen.run_wrk(made.url, body, connections=args.connections, seconds=2)  # warm-up
        cpu = server.cpu_s()
        result = loadgen.run_wrk(made.url, body, connections=args.connections, seconds=args.duration)
        used = server.cpu_s() - cpu
        if result.failed:
            raise RuntimeError(f"{label}: {result.failed} requests failed")
        return used / max(result.requests, 1) * 1e6, result.rps
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/served_ab.py", description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="+", help="LABEL=SRC[,ENV=VALUE...]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rows", type=int, choices=models.ROWS, default=1)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--workers", type=int, default=1, help="worker processes of each server (make bench: 2)")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--batching", action="store_true", help="leave modelrunner's batching at its default")
    args = p.parse_args(argv)
    variants: list[tuple[str, str | None]] = [("bare", None)]
    for item in args.variants:
        label, sep, spec = item.partition("=")
        if not sep or not spec or label == "bare":
            p.error(f"a variant is LABEL=SRC[,ENV=VALUE...] (not 'bare'), got {item!r}")
        variants.append((label, spec))
    loadgen.ensure_wrk()
    paths = models.prepare(envs.CACHE)
    cpu: dict[str, list[float]] = {label: [] for label, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for round_ in range(args.repeat):
            for label, spec in variants:
                made = launch(label, spec, work, paths["lr"], args.workers)
                us, rps = measure(label, made, args, work)
                cpu[label].append(us)
                print(f"round {round_ + 1} {label:>12}: {us:6.0f} us/req  {rps:7.0f} req/s", flush=True)  # noqa: T201
    base = statistics.median(cpu["bare"])
    setup = f"{args.rows} row(s), {args.connections} connections, {args.workers} worker(s)"
    print(f"\n{setup}, load {procs.loadavg():.1f}")  # noqa: T201
    for label, values in cpu.items():
        mid = statistics.median(values)
        print(f"{label:>12}: {mid:6.0f} us/req (median of {len(values)}), {mid / base:.2f}x bare")  # noqa: T201
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
