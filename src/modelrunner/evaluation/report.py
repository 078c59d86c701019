"""A self-contained HTML report of an evaluation: the table, gates, confusion matrices, latency histograms.

One file, rendered with jinja2; charts are inline SVG; no scripts and nothing fetched (opens from disk).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from modelrunner.evaluation.charts import confusion_svg, histogram_svg
from modelrunner.evaluation.evaluate import CandidateResult, EvaluationRun
from modelrunner.evaluation.gates import fmt
from modelrunner.evaluation.metrics import TASK_METRICS

TEMPLATES = Path(__file__).parent / "templates"
SPEED_COLUMNS = [
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("qps", "qps"),
    ("inproc_p50_ms", "in-proc p50 ms"),
    ("inproc_p99_ms", "in-proc p99 ms"),
    ("inproc_rows_per_s", "in-proc rows/s"),
]
TITLES = {
    "accuracy": "accuracy",
    "macro_f1": "macro F1",
    "log_loss": "log-loss",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R\u00b2",
    "exact_match": "exact match",
    "cer": "CER",
}


def table_columns(run: EvaluationRun) -> list[tuple[str, str]]:
    """``(metric, heading)`` of the table: the task's metrics that were measured, custom ones, then speed."""
    measured = {k for r in run.results for k in r.metrics}
    quality = [(k, TITLES[k]) for k in TASK_METRICS[run.task] if k in measured]
    speed = [(k, t) for k, t in SPEED_COLUMNS if k in measured]
    known = {k for k, _ in quality + speed} | {"error_rate"}
    custom = sorted(k for k in measured if k not in known and k not in TITLES)
    return quality + [(k, k) for k in custom] + speed


def _charts(r: CandidateResult) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    if r.confusion is not None:
        labels, matrix = r.confusion
        out["confusion"] = Markup(confusion_svg(labels, matrix, f"confusion matrix of {r.ref}"))  # noqa: S704
    for kind, title in (("inproc", "in-process single-row predict"), ("served", "served over HTTP")):
        samples = r.latencies.get(kind)
        if samples:
            out[kind] = Markup(histogram_svg(samples, f"{r.ref}: {title}"))  # noqa: S704
    return out


def context(run: EvaluationRun, *, generated_at: datetime | None = None) -> dict[str, Any]:
    best = run.best
    rows = []
    for r in run.ranked():
        rows.append(
            {
                "ref": r.ref,
                "best": best is not None and r is best,
                "passed": r.passed,
                "verdict": r.verdict,
                "gates_passed": r.gates_passed(),
                "gates": r.gates,
                "values": r.metrics,
                "evaluation_id": r.evaluation_id,
                "charts": _charts(r),
            }
        )
    return {
        "run": run,
        "rows": rows,
        "columns": table_columns(run),
        "fmt": fmt,
        "best": best,
        "generated_at": (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def render_html(run: EvaluationRun, *, generated_at: datetime | None = None) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context(run, generated_at=generated_at))


def write_report(run: EvaluationRun, path: str | Path) -> Path:
    """Render the report to ``path`` (folders created); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(run), encoding="utf-8")
    return out
