"""The docs harness itself: what it parses, what it runs, and that a failing block fails."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from support.docs_blocks import MARKER, Block, DocError, Session, marked, parse


def write(tmp_path: Path, text: str) -> Path:
    doc = tmp_path / "page.md"
    doc.write_text(text, encoding="utf-8")
    return doc


def session(tmp_path: Path, *, isolated: bool = False) -> Session:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        MARKER: f"harness-test-{os.getpid()}-{tmp_path.name}",
    }
    return Session(tmp_path, env, tmp_path / "blocks", isolated=isolated)


def test_parse_tags_lines_and_skips(tmp_path: Path) -> None:
    doc = write(
        tmp_path,
        "# t\n\n```bash\necho hi\n```\n\n<!-- docs-test: skip (takes an hour) -->\n"
        "```python\nprint(1)\n```\n```text\noutput\n```\n",
    )
    blocks = parse(doc)
    assert [(b.line, b.lang, b.skip, b.runs) for b in blocks] == [
        (3, "bash", None, True),
        (8, "python", "takes an hour", False),
        (11, "text", None, False),
    ]
    assert blocks[0].code == "echo hi\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```\nmake run\n```\n", "page.md:1: a code block without a language"),
        ("<!-- docs-test: skipp (x) -->\n```bash\nls\n```\n", "page.md:1: unknown directive 'skipp (x)'"),
        ("```bash\nls\n", "page.md:1: the code block is never closed"),
    ],
)
def test_parse_refuses_what_could_hide_a_command(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DocError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse(write(tmp_path, text))


def test_console_runs_the_prompt_lines_only(tmp_path: Path) -> None:
    text = '$ echo a \\\n    b\noutput line\n$ echo c\n{"json": 1}\n'
    block = Block(tmp_path / "p.md", 1, "console", text)
    assert block.script() == "echo a \\\n    b\necho c\n"


def test_a_session_keeps_state_and_stops_at_the_failing_block(tmp_path: Path) -> None:
    doc = tmp_path / "p.md"
    s = session(tmp_path)
    try:
        first = s.run(Block(doc, 1, "bash", "export GREETING=hello\ncd /\nsleep 60 &\n"), 30)
        second = s.run(Block(doc, 5, "bash", 'test "$GREETING" = hello && test "$PWD" = /\necho fine\n'), 30)
        code = "import os\nprint(os.environ['GREETING'])\nraise SystemExit(3)\n"
        third = s.run(Block(doc, 9, "python", code), 30)
        after = s.run(Block(doc, 13, "bash", "echo never\n"), 30)
    finally:
        s.close()
    assert first.ok and second.ok and second.output == "fine\n"
    assert not third.ok and third.exit_code == 3 and third.output.startswith("hello\n")
    assert not after.ok  # the session ended with the failing block
    assert marked(s.env[MARKER]) == []  # the background sleep is gone


def test_a_block_that_runs_too_long_fails(tmp_path: Path) -> None:
    s = session(tmp_path)
    try:
        result = s.run(Block(tmp_path / "p.md", 1, "bash", "sleep 30\n"), 0.5)
    finally:
        s.close()
    assert not result.ok and "timed out" in result.output


def test_without_a_private_network_the_docs_ports_are_rewritten(tmp_path: Path) -> None:
    s = session(tmp_path, isolated=False)
    try:
        result = s.run(Block(tmp_path / "p.md", 1, "bash", "echo http://127.0.0.1:8080 18080 8081\n"), 30)
    finally:
        s.close()
    assert result.ok
    assert result.output == f"http://127.0.0.1:{s.ports[8080]} 18080 {s.ports[8081]}\n"
    assert 8080 not in s.ports.values() and 8081 not in s.ports.values()


def test_curl_fails_on_an_http_error(tmp_path: Path) -> None:
    s = session(tmp_path)
    try:
        serve = (
            "python -m http.server --bind 127.0.0.1 8080 &\n"
            "curl -s --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null http://127.0.0.1:8080/\n"
        )
        served = s.run(Block(tmp_path / "p.md", 1, "bash", serve), 60)
        missing = s.run(Block(tmp_path / "p.md", 5, "bash", "curl -s http://127.0.0.1:8080/nothing\n"), 30)
    finally:
        s.close()
    assert served.ok, served.output
    assert not missing.ok and "404" in missing.output
