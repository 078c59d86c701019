"""The HTML report: parsed with html.parser; checks the table, verdicts, charts and self-containment."""

from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from modelrunner.evaluation.charts import confusion_svg, histogram_svg
from modelrunner.evaluation.evaluate import Options, evaluate
from modelrunner.evaluation.report import render_html, write_report


class _Report(HTMLParser):
    """Collects the results table (rows of cell texts, per-row attributes), tags and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []
        self.headers: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._in_table = self._in_head = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))
        if tag == "link" or (tag == "script"):
            self.external.append(tag)
        if tag == "table" and a.get("id") == "results":
            self._in_table = True
        elif self._in_table and tag == "thead":
            self._in_head = True
        elif self._in_table and tag == "tr" and not self._in_head:
            self.rows.append({"attrs": a, "cells": []})
        elif self._in_table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            (self.headers if self._in_head else self.rows[-1]["cells"]).append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_report_table_verdicts_and_charts(digits_reg: Any, digits_npz: Path, tmp_path: Path) -> None:
    run = evaluate(
        digits_reg,
        ["digits@1", "digits@2"],
        digits_npz,
        ["accuracy>=0.85"],
        options=Options(served=False, single_calls=20),
    )
    path = write_report(run, tmp_path / "out" / "report.html")
    parsed = _Report()
    parsed.feed(path.read_text(encoding="utf-8"))
    assert parsed.headers[:4] == ["candidate", "accuracy", "macro F1", "log-loss"]
    assert parsed.headers[-2:] == ["gates passed", "verdict"] and "in-proc p99 ms" in parsed.headers
    assert "p99 ms" not in parsed.headers  # served speed was not measured
    first, second = parsed.rows
    assert first["attrs"]["data-candidate"] == "digits@2" and first["attrs"]["data-passed"] == "true"
    assert first["cells"][0] == "digits@2best"  # the candidate and its "best" badge
    assert first["cells"][1] == "0.8894" and first["cells"][-2:] == ["1/1", "pass"]
    assert second["cells"][0] == "digits@1" and second["cells"][-1] == "fail: accuracy 0.4506 < 0.85"
    assert "best" in (first["attrs"].get("class") or "")
    assert parsed.tags.count("svg") == 4  # a confusion matrix and an in-process histogram per candidate
    assert parsed.external == []  # no scripts, stylesheets, images or links to fetch


def test_report_escapes_and_handles_no_best(digits_reg: Any, digits_npz: Path) -> None:
    run = evaluate(
        digits_reg,
        ["digits@1"],
        digits_npz,
        ["accuracy>=0.99"],
        options=Options(served=False, single_calls=5),
        store=False,
    )
    run.dataset = type(run.dataset)(
        name="<b>x</b>.npz", columns=run.dataset.columns, target=run.dataset.target, sha256=run.dataset.sha256
    )
    html = render_html(run, generated_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert "&lt;b&gt;x&lt;/b&gt;.npz" in html and "<b>x</b>" not in html
    assert "No candidate passes every gate." in html and "2026-01-02 00:00:00 UTC" in html


def test_charts() -> None:
    svg = confusion_svg([0, 1], [[5, 1], [0, 4]], "cm")
    assert svg.startswith("<svg") and svg.count("<rect") == 4 and ">5</text>" in svg
    assert confusion_svg([], []) == ""
    hist = histogram_svg([1.0, 2.0, 2.5, 3.0, 100.0], "lat")
    assert "log scale" in hist and "p50 2.5 ms" in hist and "p99" in hist
    assert histogram_svg([], "none") == ""
