"""The Dockerfile, checked structurally (no docker daemon here to build it): multi-stage on a slim Python
3.11, the runtime stage as a non-root user, ``modelrunner serve`` as the entrypoint, a HEALTHCHECK on
/healthz, the ports the Kubernetes manifests use, and extras that exist in pyproject.toml."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: comments dropped, ``\\`` continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(items: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for item in items:
        if item[0] == "FROM":
            result.append([])
        assert result, f"{item[0]} before the first FROM"
        result[-1].append(item)
    return result


def test_the_dockerfile_is_a_slim_multi_stage_non_root_modelrunner_serve_image() -> None:
    items = instructions((ROOT / "Dockerfile").read_text())
    build, runtime = stages(items)
    assert re.fullmatch(r"python:3\.11-slim(@sha256:[0-9a-f]{64})? AS build", build[0][1])
    assert re.fullmatch(r"python:3\.11-slim(@sha256:[0-9a-f]{64})? AS runtime", runtime[0][1])
    words = dict(runtime)  # the last of each instruction in the final stage
    assert any(i == "COPY" and a.startswith("--from=build ") for i, a in runtime), "runtime copies the build"
    user = words["USER"].split(":")[0]
    assert user not in ("0", "root") and (not user.isdigit() or int(user) >= 1000)
    assert json.loads(words["ENTRYPOINT"]) == ["modelrunner", "serve"]
    cmd = json.loads(words["CMD"])
    assert cmd[:2] == ["--host", "0.0.0.0"] and cmd[cmd.index("--port") + 1] == "8080"
    assert set(words["EXPOSE"].split()) == {"8080", cmd[cmd.index("--grpc-port") + 1]}
    health = words["HEALTHCHECK"]
    assert "CMD" in shlex.split(health) and "http://127.0.0.1:8080/healthz" in health
    assert "MODELRUNNER_HOME=" in words["ENV"]


def test_the_extras_it_installs_exist() -> None:
    items = instructions((ROOT / "Dockerfile").read_text())
    (extras,) = [a.split("=", 1)[1] for i, a in items if i == "ARG" and a.startswith("EXTRAS=")]
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.split(",")) <= set(defined), f"unknown extras in {extras}"
    assert {"postgres", "s3"} <= set(extras.split(",")), "the image must reach PostgreSQL and S3"


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    text = "# c\nFROM a AS b\nRUN x \\\n    && y\n\n# d\nUSER 1\n"
    assert instructions(text) == [("FROM", "a AS b"), ("RUN", "x && y"), ("USER", "1")]
