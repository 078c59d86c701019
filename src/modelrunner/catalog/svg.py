"""Inline SVG pictures (no JavaScript, no library): metric sparklines and the pipeline DAG.

Every text goes through ``html.escape``; the result is ``Markup`` so templates embed it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

NODE_W, NODE_H, COL_W, ROW_H, PAD = 190, 50, 300, 100, 20


def sparkline(
    points: Sequence[tuple[int, float | None]], label: str, width: int = 160, height: int = 36
) -> Markup:
    """A metric across versions: a line through the versions that have it, a dot on the newest."""
    known = [(v, float(y)) for v, y in points if isinstance(y, int | float) and not isinstance(y, bool)]
    if len(known) < 2:
        return Markup("")
    lo, hi = min(y for _, y in known), max(y for _, y in known)
    span = (hi - lo) or 1.0
    xs = [4 + i * (width - 8) / (len(known) - 1) for i in range(len(known))]
    ys = [height - 4 - (y - lo) / span * (height - 8) for _, y in known]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    title = ", ".join(f"v{v}: {y:.4g}" for v, y in known)
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)} by version"><title>{escape(label)}: {escape(title)}</title>'
        f'<polyline points="{path}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
        f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.5"/></svg>'
    )


def _columns(graph: Any) -> dict[str, int]:
    """Each node's column: inputs 0, a step one right of its furthest dependency, outputs last."""
    col: dict[str, int] = {"input": 0}
    for step in graph.order:
        col[step] = 1 + max((col[d] for d in graph.deps[step]), default=0)
    col["output"] = 1 + max((col[s] for s in graph.order), default=0)
    return col


def _edges(graph: Any) -> dict[tuple[str, str], list[str]]:
    """(from node, to node) -> labels ``field -> input: type``."""
    edges: dict[tuple[str, str], list[str]] = {}
    for step in graph.order:
        for field, src in graph.spec.steps[step].sources().items():
            kind = graph.values[src].describe() if src in graph.values else "?"
            edges.setdefault((src.step or "input", step), []).append(f"{src.field} → {field}: {kind}")
    for name, src in graph.spec.output_sources().items():
        kind = graph.values[src].describe() if src in graph.values else "?"
        edges.setdefault((src.step or "input", "output"), []).append(f"{src.field} → {name}: {kind}")
    return edges


def _node(x: float, y: float, title: str, detail: str, kind: str) -> str:
    cx = x + NODE_W / 2
    return (
        f'<g class="node {kind}"><rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" '
        f'rx="6"/><text x="{cx:.0f}" y="{y + 20:.0f}" class="title">{escape(title)}</text>'
        f'<text x="{cx:.0f}" y="{y + 38:.0f}" class="detail">{escape(detail[:34])}</text></g>'
    )


def dag(graph: Any, runs: dict[str, str]) -> Markup:
    """The pipeline ``graph`` (from ``pipelines.graph.build_graph``): steps with what each runs
    (``runs``: step -> model ref or transform), edges labelled with field and type."""
    col = _columns(graph)
    rows: dict[int, list[str]] = {}
    for node in ["input", *graph.order, "output"]:
        rows.setdefault(col[node], []).append(node)
    height = PAD * 2 + max(len(r) for r in rows.values()) * ROW_H
    width = PAD * 2 + (max(rows) + 1) * COL_W
    pos = {
        n: (PAD + c * COL_W, PAD + i * ROW_H + (height - 2 * PAD - len(ns) * ROW_H) / 2)
        for c, ns in rows.items()
        for i, n in enumerate(ns)
    }
    parts = []
    for (a, b), labels in _edges(graph).items():
        (ax, ay), (bx, by) = pos[a], pos[b]
        x1, y1, x2, y2 = ax + NODE_W, ay + NODE_H / 2, bx, by + NODE_H / 2
        mid = (x1 + x2) / 2
        parts.append(
            f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} '
            f'{x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>'
        )
        for i, label in enumerate(labels):
            ty = (y1 + y2) / 2 - 6 - (len(labels) - 1 - i) * 13
            parts.append(f'<text class="edge-label" x="{mid:.0f}" y="{ty:.0f}">{escape(label)}</text>')
    inputs = ", ".join(f.name for f in graph.spec.input_fields())
    outputs = ", ".join(graph.spec.output_sources())
    parts.append(_node(*pos["input"], "input", inputs, "io"))
    parts.append(_node(*pos["output"], "output", outputs, "io"))
    for step in graph.order:
        parts.append(_node(*pos[step], step, runs.get(step, ""), "step"))
    return Markup(
        f'<svg class="dag" width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" '
        f'role="img" aria-label="pipeline {escape(graph.name)}"><defs><marker id="arrow" '
        f'viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z"/></marker>'
        f"</defs>{''.join(parts)}</svg>"
    )
