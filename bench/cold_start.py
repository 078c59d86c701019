"""Cold start only, repeated and interleaved: from a server's command to its first answered prediction.

``make bench`` measures each server's cold start once per repeat, inside a long run; on a shared machine one
launch can be off by half a second. This starts the chosen servers in turn, ``--repeat`` times each (digits
LR, 2 workers, the same launch as ``make bench``), and prints every launch and the medians::

    python bench/cold_start.py --servers modelrunner,bare --repeat 7

modelrunner runs with ``MODELRUNNER_STARTUP_TIMINGS=1``: each launch also prints the start-up spans of its
supervisor and workers (``modelrunner.runner.startup``), and the end a median per span.

``--shared-venv`` runs every server with this interpreter (the development environment) instead of the
servers' own environments under ``bench/.cache/venvs`` (no install; modelrunner from this checkout's
``src/``; bytecode cached under ``bench/.cache/pycache``, one uncounted launch each first).
``--baseline SRC`` also launches modelrunner from another source tree (e.g. ``git archive main src``
unpacked somewhere) as ``modelrunner-baseline``: before and after, interleaved in one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import models, procs  # noqa: E402
from bench.peers import envs, servers  # noqa: E402
from bench.peers.servers import Launch  # noqa: E402
from bench.procs import free_port  # noqa: E402

log = logging.getLogger("bench.cold_start")
Make = Callable[[models.BenchModel, int, Path, Path], Launch]
SPAN = re.compile(r"([a-z][a-z ]*?) (\d+\.\d+)/(\d+\.\d+)s")
TIMINGS_WAIT_S = 5.0


def shared(make: Make, src: Path | None) -> Make:
    """``make``'s launch, run by this interpreter; modelrunner imported from ``src``."""

    def launch(model: models.BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
        spec = make(model, port, work, joblib_path)
        spec.argv[0] = sys.executable
        spec.env.pop("PYTHONDONTWRITEBYTECODE", None)
        spec.env["PYTHONPYCACHEPREFIX"] = str(envs.CACHE / "pycache")
        if src is not None:
            spec.env["PYTHONPATH"] = str(src)
        return spec

    return launch


def from_source(make: Make, src: Path) -> Make:
    """``make``'s launch with modelrunner imported from ``src`` (first on ``sys.path``)."""

    def launch(model: models.BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
        spec = make(model, port, work, joblib_path)
        spec.env["PYTHONPATH"] = str(src)
        return spec

    return launch


def with_timings(make: Make) -> Make:
    def launch(model: models.BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
        spec = make(model, port, work, joblib_path)
        spec.env["MODELRUNNER_STARTUP_TIMINGS"] = "1"
        return spec

    return launch


def timing_lines(log_path: Path, expected: int) -> list[str]:
    """The start-up lines of the server's log (waiting a little for ``expected`` of them)."""
    deadline = time.monotonic() + TIMINGS_WAIT_S
    while True:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        lines = [
            ln[ln.index("startup ") :] for ln in text.splitlines() if "startup " in ln and ": spawn" in ln
        ]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines


def launch_once(
    name: str, make: Make, model: models.BenchModel, joblib_path: Path
) -> tuple[float, float, list[str]]:
    """Start ``name`` on a fresh work folder, time it to its first answer, collect its timings, stop it."""
    work = envs.CACHE / "work" / f"cold-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = make(model, free_port(), work, joblib_path)
    body = models.body_path(envs.CACHE, spec.body_form, 1).read_bytes()
    server = procs.Server(spec, work / "server.log")
    server.start()
    try:
        took = server.wait_ready(body)
        cpu = server.cpu_s()  # steadier than the wall time on a machine shared with other work
        expected = 1 + servers.WORKERS if "MODELRUNNER_STARTUP_TIMINGS" in spec.env else 0
        return took, cpu, timing_lines(work / "server.log", expected)
    finally:
        server.stop()


def span_medians(lines: list[str]) -> list[str]:
    """``supervisor imports: 0.52/0.40s`` per process role and span: medians over the launches."""
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for line in lines:
        who, _, rest = line.removeprefix("startup ").partition(": ")
        role = "worker" if who.startswith("w") else who
        for span, wall, cpu in SPAN.findall(rest.replace(" = ", " | total ")):
            spans.setdefault((role, span.strip()), []).append((float(wall), float(cpu)))
    return [
        f"  {role:<10} {span:<14} {statistics.median(w for w, _ in v):6.3f}s wall "
        f"{statistics.median(c for _, c in v):6.3f}s cpu  (n={len(v)})"
        for (role, span), v in spans.items()
    ]


def launchers(names: list[str], baseline: Path | None, *, shared_venv: bool) -> dict[str, Make]:
    """Server name -> how to launch it (modelrunner with its start-up timings on)."""
    makers: dict[str, Make] = {n: servers.SERVERS[n] for n in names}
    if baseline is not None:
        baseline = baseline.resolve()
        makers["modelrunner-baseline"] = from_source(servers.modelrunner, baseline)
    for name in list(makers):
        mine = name.startswith("modelrunner")
        if mine:
            makers[name] = with_timings(makers[name])
        if shared_venv:
            src = baseline if name == "modelrunner-baseline" else ROOT / "src"
            makers[name] = shared(makers[name], src if mine else None)
        else:
            envs.ensure(name.removesuffix("-baseline"))
    if baseline is not None and not shared_venv:  # byte-compiled as envs does for this checkout
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(baseline)], check=True)
    return makers


def time_cold_start(name: str, model: models.BenchModel, joblib_path: Path, cache: Path) -> float:
    """Start ``name`` serving ``model`` on a fresh work folder, time it to its first answer, stop it."""
    work = cache / "work" / f"cold-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = servers.SERVERS[name](model, procs.free_port(), work, joblib_path)
    body = models.body_path(cache, spec.body_form, 1).read_bytes()
    server = procs.Server(spec, work / "server.log")
    server.start()
    try:
        return server.wait_ready(body)
    finally:
        server.stop()


def cold_starts(
    names: list[str],
    model: models.BenchModel,
    joblib_path: Path,
    cache: Path,
    repeat: int,
    pause_s: float = 2.0,
) -> dict[str, list[float]]:
    """Each server launched ``repeat`` times, interleaved, on a machine without load: seconds to ready.

    One launch inside a long run can be off by half a second on a shared machine (measured: 1.83 and
    2.75 s for the same server in two repeats), so the tables report the median of these, and each launch
    waits for a quiet machine first (:func:`procs.wait_quiet`: at most 10 % of the CPU busy over 0.5 s)."""
    times: dict[str, list[float]] = {}
    for name in names:
        envs.ensure(servers.venv(name))
    for rep in range(repeat):
        for name in names:
            busy = procs.wait_quiet()
            try:
                took = time_cold_start(name, model, joblib_path, cache)
            except Exception:  # noqa: BLE001 - one peer failing must not lose the others' numbers
                log.exception("%s: cold start failed", name)
                continue
            times.setdefault(name, []).append(round(took, 3))
            log.info(
                "cold start %d/%d %s: %.2f s (load %.1f; CPU %.0f%% busy before the launch)",
                rep + 1,
                repeat,
                name,
                took,
                procs.loadavg(),
                busy * 100,
            )
            time.sleep(pause_s)
    return times


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="modelrunner,bare", help="comma-separated, in launch order")
    parser.add_argument("--repeat", type=int, default=5, help="launches per server, interleaved")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between launches")
    parser.add_argument("--shared-venv", action="store_true", help="run every server with this interpreter")
    parser.add_argument("--baseline", type=Path, help="also launch modelrunner from this source tree")
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    unknown = [n for n in names if n not in servers.SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(servers.SERVERS)}")
    makers = launchers(names, args.baseline, shared_venv=args.shared_venv)
    paths = models.prepare(envs.CACHE)
    model = next(m for m in models.MODELS if m.key == "lr")
    if args.shared_venv:
        for name, make in makers.items():  # fills the bytecode cache: not counted
            launch_once(name, make, model, paths[model.key])
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    timings: dict[str, list[str]] = {}
    for rep in range(args.repeat):
        for name, make in makers.items():
            busy = procs.wait_quiet()
            try:
                took, cpu, lines = launch_once(name, make, model, paths[model.key])
            except Exception:  # noqa: BLE001 - one server failing must not lose the others' numbers
                log.exception("%s: cold start failed", name)
                continue
            times.setdefault(name, []).append(round(took, 3))
            cpus.setdefault(name, []).append(round(cpu, 3))
            timings.setdefault(name, []).extend(lines)
            log.info(
                "cold start %d/%d %s: %.2f s (load %.1f; CPU %.0f%% busy before the launch)",
                rep + 1,
                args.repeat,
                name,
                took,
                os.getloadavg()[0],
                busy * 100,
            )
            for line in lines:
                log.info("  %s", line)
            time.sleep(args.pause)
    print("| server | cold start s, median | min | max | launches | CPU s until ready, median |")  # noqa: T201
    print("|---|---|---|---|---|---|")  # noqa: T201
    for name, values in times.items():
        print(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} "  # noqa: T201
            f"| {' '.join(f'{v:.2f}' for v in values)} | {statistics.median(cpus[name]):.2f} |"
        )
    for name, lines in timings.items():
        if lines:
            print(f"\n{name}: start-up spans, medians over the launches (wall / CPU)")  # noqa: T201
            print("\n".join(span_medians(lines)))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
