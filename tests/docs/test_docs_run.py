"""Every command and code block of README.md and docs/*.md runs as written, on a fresh clone and home.

How (tests/support/docs_blocks.py has the details): each doc file runs in its own copy of the repository's
files (what a clone holds: ``git ls-files``) with its own ``MODELRUNNER_HOME`` and ``HOME``, in one bash
session, block after block, with this interpreter's ``bin`` first on PATH (``modelrunner``, ``python``). A
block fails the test when a command in it exits non-zero (``set -eo pipefail``; curl fails on HTTP errors) or
it runs over ``BLOCK_TIMEOUT_S``; the failure names the doc, the block's line, its text and its output.

Starting state, built once per test session by running the docs' own commands:
- README.md: an empty registry, except that the OCR pipeline is already built
  (``python examples/ocr/build.py``, ~1 min); the tour's ``python examples/ocr/build.py`` then finds it
  built, as its output says.
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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import modelrunner
from support.docs_blocks import MARKER, DocError, Result, Session, parse

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK_TIMEOUT_S = 420.0  # generous: a shared 2-core machine at load 15 runs the README's evaluate in ~150 s
PREPARE_TIMEOUT_S = 600.0
DOCS_TIMEOUT_S = 1500  # per test, which may wait for the state to be built and other docs to run first
# Doc sessions at once. A page's commands run one after the other and part of a page's time is waiting
# (servers starting, curl --retry, swap --wait), so 3 sessions beside the other xdist worker still fill 2
# cores. Replaying one measured run page by page: 2 -> 3 cuts this test by ~30 %; the floor is the tour's OCR
# build plus the README.
PARALLEL = 3
State = tuple[Path, Path]  # (clone, MODELRUNNER_HOME)

# Blocks that do not run, with why; a new skip is a decision, so it is listed here as well as in the doc.
EXPECTED_SKIPS = {
    "README.md:14": "make run serves until Ctrl-C; make test runs the whole suite, this docs test among it",
    "performance.md:9": "benchmarks: make bench installs servers, runs ~25 minutes; the others 2-15 minutes",
    "deploy.md:26": "needs a PostgreSQL server and an S3 bucket reachable from several hosts",
    "deploy.md:36": "needs the fleet above",
    "deploy.md:87": "needs Docker and a container registry",
    "deploy.md:110": "needs a Kubernetes cluster, PostgreSQL and a bucket",
    "training.md:174": "runs a server and ~3000 requests for a minute or more; "
    "tests/training/test_drift_demo.py runs its shortened form",
    "onboarding.md:217": "the version number of the CNN depends on the candidates the build trained",
    "runner.md:262": "serves until stopped; tests/runner/test_ondemand_serve.py runs it over 1,000 models",
}


# `make run` serves digits and ocr with `serve --endpoint`, which leaves them in the registry's desired state.
MAKE_RUN_ENDPOINTS = (
    "from modelrunner import Registry\n"
    "with Registry.from_env() as reg:\n"
    "    reg.set_endpoint('digits', 'digits@production')\n"
    "    reg.set_endpoint('ocr', 'pipeline:digits-ocr@production')\n"
)


def runnable(doc: Path) -> bool:
    try:
        return any(b.runs for b in parse(doc))
    except DocError:
        return False  # reported by test_every_block_is_tagged_and_every_skip_listed


RUNNABLE = [doc for doc in DOCS if runnable(doc)]


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def clone_files(dest: Path) -> Path:
    """Copy what a clone of the repository holds (tracked files plus new, not ignored ones) to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an sdist, a copy): everything but the usual litter
        shutil.copytree(
            REPO,
            dest,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "bundles", "build", "test.npz"
            ),
        )
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
        OCR_CNN="0",  # the starting state's OCR build skips the CNN candidate (minutes of training)
        **{MARKER: uuid.uuid4().hex},
    )
    return env


class PrepareError(RuntimeError):
    """One of the docs' commands that build the starting state failed."""


def prepare(command: list[str], clone: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=PREPARE_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise PrepareError(
            f"preparing the docs' state: {' '.join(command)} exited {proc.returncode}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


def prepare_tour(root: Path) -> State:
    """A fresh clone and a registry holding only the OCR pipeline (the README's slowest step, done once)."""
    clone, home = clone_files(root / "tour" / "clone"), root / "tour" / "home"
    home.mkdir(parents=True)
    prepare(["examples/ocr/build.py"], clone, session_env(home, root / "user"))
    return clone, home


def prepare_make_run(tour: Future[State], root: Path) -> State:
    """What ``make run`` leaves: the tour's state, then the digits example and the two endpoints."""
    clone, home = root / "make-run" / "clone", root / "make-run" / "home"
    shutil.copytree(tour.result()[0], clone)
    shutil.copytree(tour.result()[1], home)
    env = session_env(home, root / "user")
    prepare(["examples/digits/train.py"], clone, env)
    prepare(["-c", MAKE_RUN_ENDPOINTS], clone, env)
    return clone, home


@dataclass
class Outcome:
    """How one doc file ran: the blocks that passed, the one that failed (if any)."""

    done: list[Result]
    failed: Result | None
    seconds: float
    network: str


def run_doc(doc: Path, start: Future[State], root: Path) -> Outcome:
    """Every runnable block of ``doc``, in order, in one session on a copy of ``start``."""
    work = root / doc.stem
    shutil.copytree(start.result()[0], work / "clone")
    shutil.copytree(start.result()[1], work / "home")
    (work / "user").mkdir()
    session = Session(work / "clone", session_env(work / "home", work / "user"), work / "blocks")
    started = time.monotonic()
    done: list[Result] = []
    failed = None
    try:
        for block in (b for b in parse(doc) if b.runs):
            result = session.run(block, BLOCK_TIMEOUT_S)
            if not result.ok:
                failed = result
                break
            done.append(result)
    finally:
        session.close()
    network = "private network" if session.isolated else f"ports rewritten {session.ports}"
    return Outcome(done, failed, time.monotonic() - started, network)


@pytest.fixture(scope="session")
def doc_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, Future[Outcome]]]:
    """Start every selected doc's run at once, PARALLEL at a time; the tests then collect the outcomes."""
    selected = {
        item.callspec.params["doc"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_doc_runs_as_written"
    }
    docs = [d for d in RUNNABLE if d in selected]
    root = tmp_path_factory.mktemp("docs")
    with ThreadPoolExecutor(PARALLEL) as pool:
        # Submitted in dependency order, so a job only ever waits for one that already runs.
        tour = pool.submit(prepare_tour, root)
        make_run = pool.submit(prepare_make_run, tour, root)
        runs = {d: pool.submit(run_doc, d, tour if d.name == "README.md" else make_run, root) for d in docs}
        yield runs
        for future in runs.values():
            future.cancel()


def failure(result: Result, done: list[Result]) -> str:
    block = result.block
    ran = ", ".join(f"{r.block.line} ({r.seconds:.1f} s)" for r in done) or "none"
    background = "".join(  # what servers started by earlier blocks logged since
        f"\n--- written later to the output of the block at line {r.block.line} ---\n{later[-4000:]}"
        for r in done
        if (later := r.later_output().strip())
    )
    return (
        f"{relative(block.doc)}, the {block.lang} block at line {block.line} failed "
        f"({result.seconds:.1f} s):\n{block.code}\n--- output ---\n{result.output[-6000:]}\n"
        f"--- blocks that ran before it (line, time): {ran}{background}"
    )


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


def test_shown_excerpts_match_their_files() -> None:
    """A shown block whose first line is ``# <path>`` quotes that file of the repository: each of its lines
    must be in the file as written (so examples/ocr/pipeline.yaml cannot change under the docs)."""
    quoted = 0
    for doc in DOCS:
        for block in parse(doc):
            first, *rest = block.code.splitlines()
            path = REPO / first.removeprefix("# ").strip()
            if block.runs or not first.startswith("# ") or not path.is_file():
                continue
            lines = set(path.read_text(encoding="utf-8").splitlines())
            missing = [line for line in rest if line.strip() and line not in lines]
            assert not missing, f"{block.where} quotes {relative(path)}, which has no line {missing[0]!r}"
            quoted += 1
    assert quoted >= 1  # docs/pipelines.md quotes examples/ocr/pipeline.yaml


@pytest.mark.slow
@pytest.mark.timeout(DOCS_TIMEOUT_S)
@pytest.mark.parametrize("doc", RUNNABLE, ids=relative)
def test_doc_runs_as_written(doc: Path, doc_runs: dict[Path, Future[Outcome]]) -> None:
    try:
        outcome = doc_runs[doc].result()
    except PrepareError as exc:
        pytest.fail(str(exc), pytrace=False)
    if outcome.failed is not None:
        pytest.fail(failure(outcome.failed, outcome.done), pytrace=False)
    times = ", ".join(f"{r.block.line}: {r.seconds:.1f} s" for r in outcome.done)
    print(
        f"{relative(doc)}: {len(outcome.done)} blocks in {outcome.seconds:.1f} s ({outcome.network}; "
        f"line: time {times})"
    )
