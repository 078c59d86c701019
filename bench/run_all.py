"""``make bench``: modelrunner against the servers users would pick instead, side by side, in one run.

Installs each peer in its own virtual environment under ``bench/.cache`` (reused), trains the models once,
then for every server and model: starts it (2 workers), times it to its first answer (cold start), reads its
idle memory, and loads it with wrk (1-row and 100-row bodies, 16 and 64 connections). modelrunner is measured
twice per launch: batching off, then on (switched live through the admin API). Prints the tables and saves
``bench/results/<date>.json`` (+ ``latest.json`` and ``latest.md``).

Then the optional sections, each in its own launches: ``protocols`` (bench/protocols.py: JSON against
protobuf and gRPC V2, 1 and 100 rows) and ``ocr`` (bench/ocr_pipeline.py: the served OCR pipeline against
the same steps as a plain function behind the bare app). The goals table puts the run before beside this
one (``bench/results/latest.json``, else the tables of docs/performance.md).

    python bench/run_all.py [--servers modelrunner,bare] [--models lr] [--duration 10] [--quick]
                            [--sections peers,protocols,ocr]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import baseline, loadgen, models, procs, report  # noqa: E402
from bench.cold_start import cold_starts  # noqa: E402
from bench.peers import envs, servers  # noqa: E402

free_port = procs.free_port  # where asgi_servers.py and swap_under_load.py import it from

log = logging.getLogger("bench")

RESULTS = ROOT / "bench" / "results"
SERVER_ORDER = ["bare", "bare-proba", "modelrunner", "mlserver", "bentoml", "mlflow"]
SECTIONS = ["peers", "paired", "protocols", "ocr"]
C1_SERVERS = {"bare", "bare-proba", "modelrunner", "modelrunner+batch"}
"""The servers measured at 1 connection too (the latency goal); the peers only at 16 and 64."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run_all.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=",".join(SERVER_ORDER), help="comma-separated; default all")
    p.add_argument("--models", default="lr,mlp")
    p.add_argument("--rows", default="1,100")
    p.add_argument(
        "--connections", default="1,16,64", help="c1 cells are run for modelrunner and the bare apps only"
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each cell")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="max_batch_size with batching on (default: the endpoint's default, auto: 64 rows, 5 ms)",
    )
    p.add_argument("--batch-latency-ms", type=float, default=None, help="max_latency_ms with batching on")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the whole matrix N times, servers interleaved; tables show medians",
    )
    p.add_argument(
        "--cold-starts",
        type=int,
        default=5,
        help="before any load: launch each server N times (digits LR, interleaved) and report the "
        "median cold start; 0 = only the one launch of each cell run",
    )
    p.add_argument("--quick", action="store_true", help="3 s cells, 1 s warm-up (a smoke run)")
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated: peers (the servers' matrix), paired (the goals' cells: modelrunner and the "
        "same-work bare app in turn, 5 rounds), protocols (JSON vs protobuf/gRPC), ocr (the OCR pipeline "
        "endpoint); default all",
    )
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="results JSON of the run to compare with (default: bench/results/latest.json, else the "
        "tables of docs/performance.md)",
    )
    p.add_argument("--no-save", action="store_true", help="print only; write nothing to bench/results")
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="also put the tables into docs/performance.md (a full run's results)",
    )
    args = p.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if args.quick:
        args.duration, args.warmup, args.cold_starts = 3.0, 1.0, min(args.cold_starts, 1)
    return args


DEFAULT_BATCH = 64
"""modelrunner's default max_batch_size (runner.batching.DEFAULT_BATCH_SIZE)."""


def batching_config(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint config of the "batching on" cells: the default one (``batch: null``: auto, on for the
    sklearn flavor, a lone request run at once) unless ``--batch``/``--batch-latency-ms`` ask for sizes."""
    if args.batch is None and args.batch_latency_ms is None:
        return {"batch": None}
    return {"max_batch_size": args.batch or DEFAULT_BATCH, "max_latency_ms": args.batch_latency_ms or 5.0}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": procs.loadavg(),
    }


def batch_time_ms(model: models.BenchModel, joblib_path: Path, rows: int) -> float:
    """Median in-process time of one modelrunner predict call on ``rows`` rows (the model's batch time)."""
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits

    x = load_digits().data[:rows].astype(np.float64)
    est = joblib.load(joblib_path)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        est.predict(x)
        est.predict_proba(x)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache = envs.CACHE
        self.work = self.cache / "work"
        self.repeat = 0
        self.results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "wrk_threads": loadgen.THREADS,
                "repeats": args.repeat,
                "workers": servers.WORKERS,
                "blas_threads": 1,
                "batching": batching_config(args),
            },
            "servers": {},
            "runs": [],
            "batch_time_ms": {},
        }

    def run(self) -> dict[str, Any]:
        sections = self.args.sections.split(",")
        if "peers" in sections:
            self.peers()
        if "paired" in sections:
            self.section("paired", self.paired)
        if "protocols" in sections:
            self.section("protocols", self.protocols)
        if "ocr" in sections:
            self.section("ocr", self.ocr)
        self.results["machine"]["loadavg_end"] = procs.loadavg()
        return self.results

    def section(self, name: str, measure: Any) -> None:
        try:
            self.results[name] = measure()
        except Exception as exc:  # noqa: BLE001 - an optional section failing must not lose the others
            log.exception("section %s failed", name)
            self.results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}

    def paired(self) -> Any:
        from bench import paired

        lr = next(m for m in models.MODELS if m.key == "lr")
        paths = models.prepare(self.cache)
        a = self.args
        return paired.measure(
            self.cache,
            lr,
            paths[lr.key],
            self.results["settings"]["batching"],
            rounds=1 if a.quick else 5,
            duration=min(a.duration, 5.0),
            warmup=min(a.warmup, 1.0),
        )

    def protocols(self) -> dict[str, Any]:
        from bench import protocols

        a = self.args
        return protocols.measure(workers=servers.WORKERS, duration=a.duration, warmup=a.warmup)

    def ocr(self) -> dict[str, Any]:
        from bench import ocr_pipeline

        a = self.args
        return ocr_pipeline.measure(self.cache, duration=a.duration, warmup=a.warmup, quick=a.quick)

    def peers(self) -> None:
        loadgen.ensure_wrk()
        paths = models.prepare(self.cache)
        chosen = [m for m in models.MODELS if m.key in self.args.models.split(",")]
        for model in chosen:
            self.results["batch_time_ms"][model.key] = batch_time_ms(
                model, paths[model.key], self.args.batch or DEFAULT_BATCH
            )
        names = [s for s in SERVER_ORDER if s in self.args.servers.split(",")]
        lr = next((m for m in models.MODELS if m.key == "lr"), None)
        if self.args.cold_starts and lr is not None:
            self.results["cold_starts"] = cold_starts(
                [n for n in names if n != "bare-proba"], lr, paths[lr.key], self.cache, self.args.cold_starts
            )
        for rep in range(self.args.repeat):
            self.repeat = rep
            for name in names:
                self.server(name, chosen, paths)

    def server(self, name: str, chosen: list[models.BenchModel], paths: dict[str, Path]) -> None:
        info: dict[str, Any] = self.results["servers"].setdefault(
            name, {"label": servers.LABELS[name], "launches": {}, "repeats": {}}
        )
        try:
            envs.ensure(servers.venv(name))
            info["version"] = servers.version(name)
            for model in chosen:
                launch = self.launch(name, model, paths[model.key])
                info["repeats"].setdefault(model.key, []).append(launch)
                info["launches"][model.key] = median_launch(info["repeats"][model.key])
        except Exception as exc:  # noqa: BLE001 - one peer failing must not lose the others' numbers
            log.exception("%s failed", name)
            info["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"

    def launch(self, name: str, model: models.BenchModel, joblib_path: Path) -> dict[str, Any]:
        work = self.work / f"{name}-{model.key}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = servers.SERVERS[name](model, procs.free_port(), work, joblib_path)
        server = procs.Server(spec, work / "server.log")
        one_row = models.body_path(self.cache, spec.body_form, 1).read_bytes()
        log.info("%s/%s: starting", name, model.key)
        server.start()
        try:
            cold = server.wait_ready(one_row)
            time.sleep(2.0)  # let every worker finish starting before reading memory
            idle = server.rss_by_pid()
            out: dict[str, Any] = {
                "cold_start_s": round(cold, 3),
                "processes": len(idle),
                "rss_idle_mb": round(sum(idle.values()), 1),
            }
            cpu0 = server.cpu_by_pid()
            if spec.admin_url:  # batching is on by default for sklearn models: these cells measure it off
                self.batching_on(spec.admin_url, model, {"batch": False})
            self.cells(name, model, spec, server)
            out.update(serving_memory(idle, cpu0, server.cpu_by_pid()))
            log.info(
                "%s/%s: ready in %.2fs, idle RSS %.0f MB (%.0f MB per serving process)",
                name,
                model.key,
                cold,
                out["rss_idle_mb"],
                out["rss_idle_per_worker_mb"],
            )
            if spec.admin_url:
                self.batching_on(spec.admin_url, model)
                self.cells(f"{name}+batch", model, spec, server)
            out["rss_loaded_mb"] = round(server.rss_mb(), 1)
            return out
        finally:
            server.stop()

    def batching_on(
        self, admin_url: str, model: models.BenchModel, config: dict[str, Any] | None = None
    ) -> None:
        config = config if config is not None else self.results["settings"]["batching"]
        procs.set_batching(admin_url, model.endpoint, config)

    def cells(self, server: str, model: models.BenchModel, spec: servers.Launch, proc: procs.Server) -> None:
        for rows in [int(r) for r in self.args.rows.split(",")]:
            body = models.body_path(self.cache, spec.body_form, rows)
            status, answer = procs.post(spec.url, body.read_bytes())
            if status != 200:
                raise RuntimeError(f"{server}: {rows}-row request answered {status}: {answer[:300]!r}")
            for conc in [int(c) for c in self.args.connections.split(",")]:
                if conc == 1 and server not in C1_SERVERS:
                    continue
                cell = procs.load_cell(spec.url, body, proc, conc, self.args.duration, self.args.warmup)
                run = {
                    "server": server,
                    "model": model.key,
                    "rows": rows,
                    "connections": conc,
                    "repeat": self.repeat,
                    **cell,
                }
                self.results["runs"].append(run)
                log.info(
                    "%-18s %-3s %3d rows c%-3d %8.0f req/s p50 %6.1f ms p99 %6.1f ms failed %d, "
                    "server CPU %.0f us/request",
                    server,
                    model.key,
                    rows,
                    conc,
                    run["rps"],
                    run["p50_ms"],
                    run["p99_ms"],
                    run["failed"],
                    run["server_cpu_us_per_request"],
                )


def median_launch(launches: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each number over the repeated launches of one server and model."""
    out = dict(launches[-1])
    for key in ("cold_start_s", "rss_idle_mb", "rss_idle_per_worker_mb", "rss_loaded_mb"):
        values = [la[key] for la in launches if la.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
    return out


def serving_memory(idle: dict[int, float], cpu0: dict[int, float], cpu1: dict[int, float]) -> dict[str, Any]:
    """Idle RSS of the processes that served (used >= 5 % of the tree's CPU under load): the workers.

    Supervisors, arbiters and parents that only watch are left out, whatever the server calls them.
    """
    used = {pid: cpu1.get(pid, 0.0) - cpu0.get(pid, 0.0) for pid in idle}
    total = sum(max(v, 0.0) for v in used.values()) or 1.0
    serving = [pid for pid, v in used.items() if v >= 0.05 * total]
    per = [idle[pid] for pid in serving] or list(idle.values())
    return {
        "serving_processes": len(serving),
        "rss_idle_per_worker_mb": round(sum(per) / len(per), 1),
        "rss_idle_by_process_mb": {str(pid): round(v, 1) for pid, v in idle.items()},
    }


def save(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("+0000", "Z")
    path = RESULTS / f"{stamp}.json"
    text = json.dumps(results, indent=1)
    path.write_text(text)
    if results["runs"]:  # a run of the optional sections only leaves the servers' latest tables alone
        (RESULTS / "latest.json").write_text(text)
        (RESULTS / "latest.md").write_text(report.markdown(results) + "\n")
    for name, markdown in report.extra_sections(results).items():
        (RESULTS / f"{name}-latest.json").write_text(json.dumps(results[name], indent=1))
        (RESULTS / f"{name}-latest.md").write_text(markdown + "\n")
    return path


def update_docs(results: dict[str, Any]) -> None:
    asgi = RESULTS / "asgi_servers-latest.md"
    report.update_doc(
        ROOT / "docs" / "performance.md",
        report.doc_sections(results, asgi.read_text() if asgi.exists() else None),
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    before = baseline.load(RESULTS, ROOT / "docs" / "performance.md", args.before)
    bench = Bench(args)
    if before is not None:
        before.pop("before", None)  # one level: the saved document does not grow run after run
        bench.results["before"] = before
    results = bench.run()
    print(report.markdown(results))  # noqa: T201 - the table is this command's output
    if not args.no_save:
        log.info("saved %s", save(results))
    if args.update_docs:
        update_docs(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
