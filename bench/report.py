"""The benchmark's tables (markdown) and its goals, computed from one results document."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import goals

ORDER = ["modelrunner+batch", "modelrunner", "bare-proba", "bare", "mlserver", "bentoml", "mlflow"]
LEGEND = (
    "`bare` is the bare ASGI app answering the labels only; `bare-proba` the same app doing modelrunner's "
    "work (one `predict_proba`, the label as its argmax, label + 10 probabilities per row in the answer): "
    "the same-work ceiling. `modelrunner ÷` is modelrunner's req/s over that row's, `CPU ÷` its server CPU "
    "per request over that row's (batching off)."
)
MODEL_NAMES = {"lr": "digits LR", "mlp": "digits MLP"}


def _runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = results["runs"]
    return runs


find = goals.find


def _ratio(ours: dict[str, Any] | None, theirs: dict[str, Any] | None, key: str = "rps") -> str:
    if not ours or not theirs or not theirs.get(key):
        return "-"
    return f"{ours.get(key, 0.0) / theirs[key]:.2f}×"


def throughput_table(results: dict[str, Any]) -> str:
    lines = [
        "| model | rows | conn | server | req/s | p50 ms | p99 ms | failed | server CPU µs/req | load | "
        "modelrunner ÷ | modelrunner+batch ÷ | CPU ÷ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
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
                f"{'' if mine else _ratio(ours, run)} | {'' if mine else _ratio(batched, run)} | "
                f"{'' if mine else _ratio(ours, run, 'server_cpu_us_per_request')} |"
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


def goals_table(results: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    table = goals.table(results, before if before is not None else results.get("before"))
    paired = results.get("paired")
    if isinstance(paired, list) and paired:
        from bench import paired as paired_cells

        table += "\n\n" + paired_cells.report(paired)
    return table


def extra_sections(results: dict[str, Any]) -> dict[str, str]:
    """The optional sections of the run (protocols, OCR pipeline) that it measured, as markdown."""
    from bench import ocr_pipeline, protocols

    out = {}
    if results.get("protocols"):
        out["protocols"] = protocols.report(results["protocols"])
    if results.get("ocr"):
        out["ocr"] = ocr_pipeline.report(results["ocr"])
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    reps = results["settings"].get("repeats", 1)
    head = (
        f"{'Medians of ' + str(reps) + ' runs' if reps > 1 else 'Run'} {results['date']} on {m['cores']} "
        f"cores ({m['cpu']}), Python {m['python']}; load average "
        f"{m['loadavg_start']:.1f} at start, {m['loadavg_end']:.1f} at end. wrk -t2, "
        f"{results['settings']['duration_s']:g} s per cell after a {results['settings']['warmup_s']:g} s "
        f"warm-up; batching on = {_batching(results['settings']['batching'])}."
    )
    parts = [head, LEGEND, throughput_table(results), servers_table(results), goals_table(results)]
    parts += [text for text in extra_sections(results).values()]
    return "\n\n".join(parts)


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
        "(the machine is shared; the *load* column is the 1-minute load average when each cell started)."
    )
    out = {
        "latest": "\n\n".join([head, LEGEND, throughput_table(results), servers_table(results)]),
        "goals": goals_table(results),
        **extra_sections(results),
    }
    if asgi_md:
        out["asgi"] = asgi_md
    return out


def _batching(config: dict[str, Any]) -> str:
    """How the "batching on" cells were configured (``{"batch": None}``: the endpoint's default)."""
    if config == {"batch": None}:
        return "the default (auto: on for the sklearn flavor, max_batch_size 64, max_latency_ms 5)"
    return str(config)
