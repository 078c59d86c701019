"""The code blocks of README.md and docs/*.md, and a shell session that runs them the way a user would.

A fenced block's language decides what happens to it: ``bash``/``sh`` run as written, ``console`` runs its
``$ `` lines (the other lines are output), ``python`` runs as a script; every other language (``text`` for
output and layouts, ``json``, ``http``, ``proto``, ``yaml``) is shown, not run. A block that must not run
carries ``<!-- docs-test: skip (reason) -->`` on the line before its fence.

One doc file = one bash session (``set -eo pipefail``): a ``modelrunner serve ... &`` in one block keeps
serving the next ones, ``cd`` and ``export`` carry over, and python blocks run as ``python block.py`` inside
the session. Ports: where the kernel allows it the session runs in a private network namespace
(``unshare --user --map-root-user --net``), so the docs' fixed ports (8080, 8081) are the session's own and
the text runs byte for byte; elsewhere 8080/8081 in the text are rewritten to free ports, and
``modelrunner serve``/``swap``/``rollback``/``endpoints``/``endpoint ...`` get ``--port``/``--url`` for the
rewritten 8080 when the text relies on the default.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+.-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
SKIP = re.compile(r"^skip\s*\((.+)\)$")
RUN_LANGS = frozenset({"bash", "sh", "console", "python"})
SHOWN_LANGS = frozenset({"text", "json", "http", "proto", "yaml", "toml", "ini", "diff"})
DEFAULT_PORTS = (8080, 8081)
DONE = "__docs_block_done__"
NAMESPACE = ("unshare", "--user", "--map-root-user", "--net")
MARKER = "MODELRUNNER_DOCS_SESSION"  # in the env of every process a session starts


class DocError(ValueError):
    """A doc file the harness cannot run as it stands (an untagged fence, an unknown directive...)."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and why it is skipped (if it is)."""

    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS and self.skip is None

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"

    def script(self) -> str:
        """What the shell runs: the text itself, or a console block's ``$`` commands."""
        if self.lang != "console":
            return self.code
        commands: list[str] = []
        continued = False
        for line in self.code.splitlines():
            if continued or line.startswith("$ "):
                commands.append(line if continued else line[2:])
                continued = line.rstrip().endswith("\\")
        return "\n".join(commands) + "\n"


def parse(path: Path) -> list[Block]:
    """Every fenced block of ``path``; raises DocError for an untagged fence or a bad directive."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang = match.group(1), match.group(2).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise DocError(f"{path.name}:{start + 1}: the code block is never closed")
        if not lang:
            raise DocError(
                f"{path.name}:{start + 1}: a code block without a language; tag it (bash, python, "
                "console to run it; text for output or layouts)"
            )
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", _skip_reason(path, lines, start)))
        i += 1
    return blocks


def _skip_reason(path: Path, lines: list[str], fence: int) -> str | None:
    """The reason of a ``<!-- docs-test: skip (reason) -->`` on the last non-blank line before the fence."""
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    directive = DIRECTIVE.match(lines[j].strip()) if j >= 0 else None
    if directive is None:
        return None
    skip = SKIP.match(directive.group(1))
    if skip is None:
        raise DocError(
            f"{path.name}:{j + 1}: unknown directive {directive.group(1)!r}; "
            "expected <!-- docs-test: skip (reason) -->"
        )
    return skip.group(1).strip()


@cache
def private_network() -> bool:
    """True when an unprivileged user + network namespace with a loopback can be made here (and
    ``DOCS_TEST_SHARED_NETWORK`` is not set: it forces the port-rewriting mode, to test that mode)."""
    if os.environ.get("DOCS_TEST_SHARED_NETWORK"):
        return False
    try:
        proc = subprocess.run(
            [*NAMESPACE, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Without a private network, commands that rely on the default port get the rewritten one.
DEFAULTS_WRAPPER = r"""
modelrunner() {
  case "$1" in
    serve) [[ " $* " == *" --port "* || " $* " == *" -p "* ]] || set -- serve --port __PORT__ "${@:2}" ;;
    swap|rollback|endpoints) [[ " $* " == *" --url "* ]] || set -- "$@" --url http://127.0.0.1:__PORT__ ;;
    endpoint) [[ " $* " == *" --url "* ]] || set -- "$@" --url http://127.0.0.1:__PORT__ ;;
  esac
  command modelrunner "$@"
}
"""

# A user reads curl's answer; the test must notice an HTTP error, so curl fails on one (and shows the body).
# A command that prints the status itself (`-w '%{http_code}'`) shows a refusal on purpose: left as it is.
CURL_WRAPPER = r"""
curl() {
  local a
  for a in "$@"; do
    [[ "$a" == --fail || "$a" =~ ^-[a-zA-Z]*f[a-zA-Z]*$ || "$a" == *"%{http_code}"* ]] &&
      { command curl "$@"; return; }
  done
  command curl --fail-with-body "$@"
}
"""


@dataclass
class Result:
    block: Block
    ok: bool
    output: str
    seconds: float
    exit_code: int | None = None
    log: Path | None = None  # where the block's output went (a server it left running still writes there)
    size: int = 0  # the log's size when the block ended

    def later_output(self) -> str:
        """What was written to the block's log after it ended: a background server's log lines."""
        if self.log is None or not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(self.size)
            return f.read().decode("utf-8", errors="replace")


@dataclass
class Session:
    """A bash session in ``cwd`` with ``env``; ``run`` feeds it one block at a time."""

    cwd: Path
    env: dict[str, str]
    work: Path  # where the block files and their logs go
    isolated: bool = field(default_factory=private_network)
    ports: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if not self.isolated:
            self.ports = {port: free_port() for port in DEFAULT_PORTS}
        shell = ["bash", "--noprofile", "--norc"]
        if self.isolated:
            shell = [
                *NAMESPACE,
                "bash",
                "--noprofile",
                "--norc",
                "-c",
                "ip link set lo up && exec bash --noprofile --norc",
            ]
        self.proc = subprocess.Popen(
            shell,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        prelude = "set -eo pipefail\n" + CURL_WRAPPER
        if not self.isolated:
            prelude += DEFAULTS_WRAPPER.replace("__PORT__", str(self.ports[8080]))
        self._send(prelude)
        self.count = 0
        self.busy = False  # a block is still running (it timed out)

    def rewrite(self, text: str) -> str:
        for port, new in self.ports.items():
            text = re.sub(rf"\b{port}\b", str(new), text)
        return text

    def run(self, block: Block, timeout: float) -> Result:
        """Run one block; not ok when a command fails (the session then ends) or the block times out."""
        self.count += 1
        log = self.work / f"block{self.count:02d}.log"
        if block.lang == "python":
            source = self.work / f"block{self.count:02d}.py"
            source.write_text(self.rewrite(block.code), encoding="utf-8")
            command = f"python - < {source}"  # from stdin, like a REPL: the working folder is on sys.path
        else:
            source = self.work / f"block{self.count:02d}.sh"
            source.write_text(self.rewrite(block.script()), encoding="utf-8")
            command = f"source {source} < /dev/null"
        started = time.monotonic()
        if self.proc.poll() is not None:
            return Result(
                block, False, "[not run: the session ended at an earlier block]", 0.0, self.proc.returncode
            )
        self.busy = True
        self._send(f"{command} > {log} 2>&1\necho {DONE}\n")
        finished = self._wait_done(timeout)
        self.busy = not finished
        raw = log.read_bytes() if log.exists() else b""
        output = raw.decode("utf-8", errors="replace")
        seconds = time.monotonic() - started
        if finished:
            return Result(block, True, output, seconds, log=log, size=len(raw))
        code = self.proc.poll()
        reason = f"timed out after {timeout:.0f} s" if code is None else f"exit code {code}"
        return Result(block, False, f"{output}\n[{reason}]", seconds, code)

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def _wait_done(self, timeout: float) -> bool:
        """Read the shell's stdout until the block's marker (True), its exit or the deadline (False)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    continue
                line = self.proc.stdout.readline()
                if not line:
                    self.proc.wait(timeout=5)
                    return False
                if line.strip() == DONE:
                    return True
        return False

    def close(self, timeout: float = 30.0) -> None:
        """Stop what the blocks left running (SIGTERM: servers shut down cleanly), then kill what is left."""
        if self.proc.poll() is None and not self.busy:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._send("set +e; kill $(jobs -p) 2>/dev/null; wait; exit 0\n")
                self.proc.wait(timeout=timeout)
        stop(self.env[MARKER], grace=10.0)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def stop(value: str, grace: float) -> None:
    """SIGTERM every process of the session, SIGKILL those still there after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in marked(value):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        while marked(value) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the processes' exit, bounded by the deadline


def marked(value: str) -> list[int]:
    """Every live process whose environment holds ``MARKER=value``: what one session started, and only that
    (a server's workers leave the session's process group, but not its environment)."""
    needle = f"{MARKER}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
