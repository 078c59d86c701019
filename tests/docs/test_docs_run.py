"""Every command and code block of README.md and docs/*.md runs as written, on a fresh clone and home.

How (docs_blocks.py has the details): each doc file runs in its own copy of the repository's files (what a
clone holds: ``git ls-files``) with its own ``MODELRUNNER_HOME`` and ``HOME``, in one bash session, block
after block, with this interpreter's ``bin`` first on PATH (``modelrunner``, ``python``). A block fails the
test when a command in it exits non-zero (``set -eo pipefail``; curl fails on HTTP errors) or it runs over
``BLOCK_TIMEOUT_S``; the failure names the doc, the block's line, its text and its output.

Starting state, built once per test session by running the docs' own commands:
- README.md: an empty registry, except that the OCR pipeline is already built (``python examples/ocr/build.py``,
  ~1 min); the tour's ``python examples/ocr/build.py`` then finds it built, as its output says.
- docs/*.md: what ``make run`` leaves — the OCR pipeline, then ``python examples/digits/train.py`` (digits
  versions 1-3, ``production`` -> 1, ``staging`` -> 2, ``bundles/``, ``examples/digits/test.npz``) —
  without a server: a page that needs one starts it, as docs/index.md says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from docs_blocks import MARKER, Block, DocError, Result, Session, parse

import modelrunner

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK_TIMEOUT_S = 240.0
PREPARE_TIMEOUT_S = 600.0

# Blocks that do not run, with why; a new skip is a decision, so it is listed here as well as in the doc.
EXPECTED_SKIPS = {
    "README.md:14": "make run serves until Ctrl-C; make test runs the whole suite, this docs test among it",
    "performance.md:9": "benchmarks: make bench installs servers and runs ~25 minutes; the others 2-15 minutes",
}


# `make run` serves digits and ocr with `serve --endpoint`, which leaves them in the registry's desired state.
MAKE_RUN_ENDPOINTS = (
    "from modelrunner import Registry\n"
    "with Registry.from_env() as reg:\n"
    "    reg.set_endpoint('digits', 'digits@production')\n"
    "    reg.set_endpoint('ocr', 'pipeline:digits-ocr@production')\n"
)


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def clone_files(dest: Path) -> Path:
    """Copy what a clone of the repository holds (tracked files plus new, not ignored ones) to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=False)
    if listed.returncode != 0:  # not a git checkout (an sdist, a copy): everything but the usual litter
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "bundles", "build", "test.npz"))
        return dest
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def session_env(home: Path, user_home: Path) -> dict[str, str]:
    """This environment minus MODELRUNNER_*, with the interpreter's bin first and this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELRUNNER_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(Path(modelrunner.__file__).resolve().parents[1]),
        PYTHONDONTWRITEBYTECODE="1",
        MODELRUNNER_HOME=str(home),
        HOME=str(user_home),
        **{MARKER: uuid.uuid4().hex},
    )
    return env


def prepare(command: list[str], clone: Path, env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, *command], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=PREPARE_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        pytest.fail(f"preparing the docs' state: {' '.join(command)} exited {proc.returncode}\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """``{"tour": (clone, home), "make-run": (clone, home)}``: the two starting states, built once."""
    root = tmp_path_factory.mktemp("docs-state")
    clone, home = clone_files(root / "tour" / "clone"), root / "tour" / "home"
    home.mkdir(parents=True)
    env = session_env(home, root / "user")
    prepare(["examples/ocr/build.py"], clone, env)
    demo_clone, demo_home = root / "make-run" / "clone", root / "make-run" / "home"
    shutil.copytree(clone, demo_clone)
    shutil.copytree(home, demo_home)
    demo_env = session_env(demo_home, root / "user")
    prepare(["examples/digits/train.py"], demo_clone, demo_env)
    prepare(["-c", MAKE_RUN_ENDPOINTS], demo_clone, demo_env)
    return {"tour": (clone, home), "make-run": (demo_clone, demo_home)}


def failure(result: Result, done: list[Result]) -> str:
    block = result.block
    ran = ", ".join(f"{r.block.line} ({r.seconds:.1f} s)" for r in done) or "none"
    return (f"{relative(block.doc)}, the {block.lang} block at line {block.line} failed "
            f"({result.seconds:.1f} s):\n{block.code}\n--- output ---\n{result.output[-6000:]}\n"
            f"--- blocks that ran before it (line, time): {ran}")


def test_every_block_is_tagged_and_every_skip_listed() -> None:
    """A fence without a language could hide a command that never runs; a skip is a reviewed decision."""
    skips = {}
    errors = []
    for doc in DOCS:
        try:
            skips.update({b.where: b.skip for b in parse(doc) if b.skip})
        except DocError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)
    assert skips == EXPECTED_SKIPS, f"skipped blocks: {skips}"


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_doc_runs_as_written(doc: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    blocks: list[Block] = [b for b in parse(doc) if b.runs]
    if not blocks:
        return  # nothing to run: its blocks are output, layouts, messages (checked to be tagged above)
    state: dict[str, tuple[Path, Path]] = request.getfixturevalue("prepared")
    clone, home = state["tour" if doc.name == "README.md" else "make-run"]
    shutil.copytree(clone, tmp_path / "clone")
    shutil.copytree(home, tmp_path / "home")
    (tmp_path / "user").mkdir()
    env = session_env(tmp_path / "home", tmp_path / "user")
    session = Session(tmp_path / "clone", env, tmp_path / "blocks")
    done: list[Result] = []
    started = time.monotonic()
    try:
        for block in blocks:
            result = session.run(block, BLOCK_TIMEOUT_S)
            if not result.ok:
                pytest.fail(failure(result, done), pytrace=False)
            done.append(result)
    finally:
        session.close()
    print(f"{relative(doc)}: {len(done)} blocks in {time.monotonic() - started:.1f} s "
          f"({'private network' if session.isolated else f'ports {session.ports}'})")
