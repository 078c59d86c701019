"""Inline SVG charts for the HTML report: confusion matrices and latency histograms (no JS, no CDN)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

CELL = 28
MAX_ANNOTATED = 20
SVG_NS = "http://www.w3.org/2000/svg"


def _attrs(attrs: dict[str, Any]) -> str:
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())


def _text(x: float, y: float, body: str, **attrs: Any) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {_attrs(attrs)}>{escape(body)}</text>'


def _open(kind: str, width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" class="{kind}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
    )


def _blue(share: float) -> str:
    """White (0) to a deep blue (1)."""
    r = int(255 - share * (255 - 31))
    g = int(255 - share * (255 - 90))
    b = int(255 - share * (255 - 160))
    return f"rgb({r},{g},{b})"


def confusion_svg(labels: Sequence[Any], matrix: Sequence[Sequence[int]], title: str = "") -> str:
    """A confusion matrix (rows: true label, columns: predicted), shaded by each row's share."""
    k = len(labels)
    if k == 0:
        return ""
    cell = CELL if k <= MAX_ANNOTATED else max(6, 560 // k)
    left, top = 60, 46
    annotate = k <= MAX_ANNOTATED
    parts = [
        _open("confusion", left + k * cell + 10, top + k * cell + 30, title or "confusion matrix"),
        _text(left, 14, "predicted \u2192", class_="axis"),
        _text(4, top - 6, "true \u2193", class_="axis"),
    ]
    arr = np.asarray(matrix, dtype=float)
    totals = arr.sum(axis=1)
    for i, lab in enumerate(labels):
        y = top + i * cell
        if annotate:
            parts.append(_text(left - 6, y + cell * 0.65, str(lab), text_anchor="end"))
            parts.append(_text(left + i * cell + cell / 2, top - 6, str(lab), text_anchor="middle"))
        for j in range(k):
            share = arr[i, j] / totals[i] if totals[i] else 0.0
            x = left + j * cell
            tip = f"true {lab}, predicted {labels[j]}: {int(arr[i, j])}"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blue(share)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            if annotate and arr[i, j]:
                color = "#fff" if share > 0.55 else "#222"
                parts.append(
                    _text(
                        x + cell / 2,
                        y + cell * 0.65,
                        str(int(arr[i, j])),
                        text_anchor="middle",
                        fill=color,
                        class_="count",
                    )
                )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    samples_ms: Sequence[float], title: str, bins: int = 30, width: int = 420, height: int = 150
) -> str:
    """A latency histogram with p50 and p99 marked; log-scaled when the spread is over 10x."""
    data = np.asarray([s for s in samples_ms if math.isfinite(s) and s > 0], dtype=float)
    if data.size == 0:
        return ""
    lo, hi = float(data.min()), float(data.max())
    hi = max(hi, lo * 1.001 + 1e-9)
    scale_log = hi / lo > 10
    fwd = np.log10 if scale_log else (lambda v: v)
    counts, edges = np.histogram(fwd(data), bins=bins, range=(fwd(lo), fwd(hi)))
    left, bottom, top = 36, 28, 32
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(int(counts.max()), 1)
    bar_w = plot_w / bins
    base = top + plot_h

    def x_of(v: float) -> float:
        return left + (float(fwd(v)) - float(fwd(lo))) / (float(fwd(hi)) - float(fwd(lo))) * plot_w

    def unit(e: float) -> float:
        return float(10**e) if scale_log else e

    caption = f"{title} ({data.size} calls{', log scale' if scale_log else ''})"
    parts = [
        _open("histogram", width, height, title),
        _text(left, 13, caption, class_="title"),
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" class="axisline"/>',
    ]
    for i, c in enumerate(counts):
        h = c / peak * plot_h
        tip = f"{unit(edges[i]):.3g}-{unit(edges[i + 1]):.3g} ms: {c}"
        parts.append(
            f'<rect x="{left + i * bar_w:.1f}" y="{base - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}" class="bar"><title>{escape(tip)}</title></rect>'
        )
    for row, q in enumerate((50, 99)):
        v = float(np.percentile(data, q))
        x = x_of(v)
        right = x > left + plot_w * 0.6
        parts.append(f'<line x1="{x:.1f}" y1="{top - 12 + row * 12}" x2="{x:.1f}" y2="{base}" class="p{q}"/>')
        parts.append(
            _text(
                x - 3 if right else x + 3,
                top - 4 + row * 12,
                f"p{q} {v:.3g} ms",
                class_=f"p{q}",
                text_anchor="end" if right else "start",
            )
        )
    parts.append(_text(left, height - 8, f"{lo:.3g} ms", class_="axis"))
    parts.append(_text(left + plot_w, height - 8, f"{hi:.3g} ms", text_anchor="end", class_="axis"))
    parts.append("</svg>")
    return "".join(parts)
