"""The benchmark's tables (markdown) and its goals, computed from one results document."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

ORDER = ["modelrunner+batch", "modelrunner", "bare", "mlserver", "bentoml", "mlflow"]
MODEL_NAMES = {"lr": "digits LR", "mlp": "digits MLP"}


def _runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = results["runs"]
    return runs


def find(results: dict[str, Any], server: str, model: str, rows: int, conc: int) -> dict[str, Any] | None:
    """The cell's run; with repeats, the median of each number (failed requests: the total)."""
    runs = [
        run
        for run in _runs(results)
        if (run["server"], run["model"], run["rows"], run["connections"]) == (server, model, rows, conc)
    ]
    if len(runs) <= 1:
        return runs[0] if runs else None
    out = dict(runs[0])
    for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request", "loadavg"):
        out[key] = statistics.median(r.get(key, 0.0) for r in runs)
    out["failed"] = sum(r["failed"] for r in runs)
    out["repeats"] = len(runs)
    return out


def _ratio(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    if not ours or not theirs or not theirs["rps"]:
        return "-"
    return f"{ours['rps'] / theirs['rps']:.2f}×"


def throughput_table(results: dict[str, Any]) -> str:
    lines = [
        "| model | rows | conn | server | req/s | p50 ms | p99 ms | failed | server CPU µs/req | load | "
        "modelrunner ÷ | modelrunner+batch ÷ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["model"], r["rows"], r["connections"]) for r in _runs(results)},
        key=lambda k: (list(MODEL_NAMES).index(k[0]) if k[0] in MODEL_NAMES else 9, k[1], k[2]),
    )
    for model, rows, conc in keys:
        ours = find(results, "modelrunner", model, rows, conc)
        batched = find(results, "modelrunner+batch", model, rows, conc)
        for server in ORDER:
            run = find(results, server, model, rows, conc)
            if run is None:
                continue
            mine = server.startswith("modelrunner")
            lines.append(
                f"| {MODEL_NAMES.get(model, model)} | {rows} | {conc} | {_bold(server, mine)} | "
                f"{run['rps']:,.0f} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {run['failed']} | "
                f"{run.get('server_cpu_us_per_request', 0):,.0f} | {run['loadavg']:.1f} | "
                f"{'' if mine else _ratio(ours, run)} | {'' if mine else _ratio(batched, run)} |"
            )
    return "\n".join(lines)


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def cold_start(results: dict[str, Any], name: str) -> float | None:
    """The median of the dedicated cold-start launches when the run made them, else the cells' launches'."""
    launches = results.get("cold_starts", {}).get(name)
    if launches:
        return float(statistics.median(launches))
    value = results["servers"].get(name, {}).get("launches", {}).get("lr", {}).get("cold_start_s")
    return None if value is None else float(value)


def _cold_label(results: dict[str, Any]) -> str:
    runs = {len(v) for v in results.get("cold_starts", {}).values()}
    return f"cold start s (digits, median of {max(runs)} launches)" if runs else "cold start s (digits)"


def servers_table(results: dict[str, Any]) -> str:
    lines = [
        f"| server | version | {_cold_label(results)} | idle RSS MB (all processes) | "
        "idle RSS MB per serving process | RSS MB after load | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, info in results["servers"].items():
        lr = info.get("launches", {}).get("lr", {})
        cold = _num(cold_start(results, name), 2)
        lines.append(
            f"| {info['label']} | {info.get('version', '?')} | {cold} | "
            f"{_num(lr.get('rss_idle_mb'), 0)} | {_num(lr.get('rss_idle_per_worker_mb'), 0)} | "
            f"{_num(lr.get('rss_loaded_mb'), 0)} | {info.get('error') or ''} |"
        )
    return "\n".join(lines)


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def goals(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(goal, met or None when not measured, the measured numbers)."""
    out: list[tuple[str, bool | None, str]] = []
    batch = results["settings"]["batching"]
    off16, bare16 = find(results, "modelrunner", "lr", 1, 16), find(results, "bare", "lr", 1, 16)
    if off16 and bare16:
        ratio = off16["rps"] / bare16["rps"]
        out.append(
            (
                "1 row, c16, batching off: ≥ 0.75× bare ASGI, p99 ≤ 10 ms",
                ratio >= 0.75 and off16["p99_ms"] <= 10,
                f"{ratio:.2f}× ({off16['rps']:,.0f} vs {bare16['rps']:,.0f} req/s), "
                f"p99 {off16['p99_ms']:.1f} ms",
            )
        )
    on64, bare64 = find(results, "modelrunner+batch", "lr", 1, 64), find(results, "bare", "lr", 1, 64)
    if on64 and bare64:
        ratio = on64["rps"] / bare64["rps"]
        bound = batch["max_latency_ms"] + results.get("batch_time_ms", {}).get("lr", 0.0) + 5
        out.append(
            (
                "1 row, c64, batching on: ≥ 1.5× bare ASGI, p99 ≤ max_latency + batch time + 5 ms",
                ratio >= 1.5 and on64["p99_ms"] <= bound,
                f"{ratio:.2f}× ({on64['rps']:,.0f} vs {bare64['rps']:,.0f} req/s), "
                f"p99 {on64['p99_ms']:.1f} ms (bound {bound:.1f} ms)",
            )
        )
    mlp_on = find(results, "modelrunner+batch", "mlp", 1, 64)
    mlp_off = find(results, "modelrunner", "mlp", 1, 64)
    if mlp_on and mlp_off:
        ratio = mlp_on["rps"] / mlp_off["rps"]
        out.append(
            (
                "MLP, 1 row, c64: batching on ≥ 3× batching off",
                ratio >= 3,
                f"{ratio:.2f}× ({mlp_on['rps']:,.0f} vs {mlp_off['rps']:,.0f} req/s)",
            )
        )
    out.extend(_memory_goals(results))
    return out


def _memory_goals(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    servers = results["servers"]
    ours = servers.get("modelrunner", {}).get("launches", {}).get("lr", {})
    out: list[tuple[str, bool | None, str]] = []
    cold = cold_start(results, "modelrunner")
    if cold is not None:
        launches = results.get("cold_starts", {}).get("modelrunner") or []
        bare = cold_start(results, "bare")
        each = ", ".join(f"{v:.2f}" for v in launches)
        detail = f"{cold:.2f} s" + (f" (launches {each})" if launches else "")
        detail += f"; bare ASGI app {bare:.2f} s" if bare is not None else ""
        out.append(("cold start (serve to ready) ≤ 2 s, digits endpoint", cold <= 2.0, detail))
    mine = ours.get("rss_idle_per_worker_mb")
    peers = {
        n: s.get("launches", {}).get("lr", {}).get("rss_idle_per_worker_mb")
        for n, s in servers.items()
        if n not in ("modelrunner", "bare")
    }
    measured = {n: v for n, v in peers.items() if v is not None}
    if mine is not None and measured:
        out.append(
            (
                "idle RSS per worker below every peer's",
                all(mine < v for v in measured.values()),
                f"{mine:.0f} MB vs " + ", ".join(f"{n} {v:.0f}" for n, v in measured.items()),
            )
        )
    return out


def goals_table(results: dict[str, Any]) -> str:
    lines = ["| goal | met | measured |", "|---|---|---|"]
    for goal, met, text in goals(results):
        lines.append(f"| {goal} | {'yes' if met else ('-' if met is None else 'no')} | {text} |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    reps = results["settings"].get("repeats", 1)
    head = (
        f"{'Medians of ' + str(reps) + ' runs' if reps > 1 else 'Run'} {results['date']} on {m['cores']} "
        f"cores ({m['cpu']}), Python {m['python']}; load average "
        f"{m['loadavg_start']:.1f} at start, {m['loadavg_end']:.1f} at end. wrk -t2, "
        f"{results['settings']['duration_s']:g} s per cell after a {results['settings']['warmup_s']:g} s "
        f"warm-up; batching on = {results['settings']['batching']}."
    )
    return "\n\n".join([head, throughput_table(results), servers_table(results), goals_table(results)])


def update_doc(path: Path, sections: dict[str, str]) -> None:
    """Replace the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in ``path``."""
    text = path.read_text()
    for name, body in sections.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _old, tail = rest.split(end, 1)
            text = f"{head}{start}\n{body.strip()}\n{end}{tail}"
    path.write_text(text)


def doc_sections(results: dict[str, Any], asgi_md: str | None) -> dict[str, str]:
    m = results["machine"]
    reps = results["settings"].get("repeats", 1)
    runs = f" (each number the median of {reps} runs, servers interleaved)" if reps > 1 else ""
    head = (
        f"`make bench` of {results['date']}{runs}: {m['cores']} cores ({m['cpu']}), "
        f"Python {m['python']}, "
        f"load average {m['loadavg_start']:.1f} at the start, {m.get('loadavg_end', 0):.1f} at the end "
        "(the machine is shared; the *load* column is the 1-minute load average when each cell started). "
        "`modelrunner ÷` is modelrunner's req/s over that row's."
    )
    out = {
        "latest": "\n\n".join([head, throughput_table(results), servers_table(results)]),
        "goals": goals_table(results),
    }
    if asgi_md:
        out["asgi"] = asgi_md
    return out
