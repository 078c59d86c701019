"""The wheel is complete: built from a copy of the source and installed into a fresh venv (dependencies seen
through a .pth file pointing at this venv's site-packages, never its editable modelrunner),
``python -m modelrunner.demo`` trains, pushes, serves and answers from it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [  # what the code reads next to itself, and what the demo runs
    "modelrunner/py.typed",
    "modelrunner/catalog/templates/base.html",
    "modelrunner/catalog/static/style.css",
    "modelrunner/catalog/static/htmx.min.js",
    "modelrunner/evaluation/templates/report.html.j2",
    "modelrunner/cli/templates/init/train.py.tmpl",
    "modelrunner/cli/templates/init/dot-github/workflows/ci.yml.tmpl",
    "modelrunner/registry/migrations/env.py",
    "modelrunner/registry/migrations/script.py.mako",
    "modelrunner/registry/migrations/versions/0001_initial_schema.py",
    "modelrunner-0.1.0.data/data/share/modelrunner/examples/digits/train.py",
    "modelrunner-0.1.0.data/data/share/modelrunner/examples/ocr/build.py",
    "modelrunner-0.1.0.data/data/share/modelrunner/examples/ocr/pipeline.yaml",
    "modelrunner-0.1.0.data/data/share/modelrunner/examples/ocr/example.png",
]


def run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=timeout
    )
    assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of a clean copy of the repository (the build writes build/ and *.egg-info into its source)."""
    src = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "test.npz")
    for name in ("src", "examples"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        timeout=300,
    )
    return next(tmp_path.glob("modelrunner-*.whl"))


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A venv with only the wheel installed; its dependencies come from this venv's site-packages (.pth)."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = run([str(python), "-c", where]).stdout.strip()
    # A directory listed in a .pth file is added to sys.path, but the .pth files inside it (this venv's
    # editable install of modelrunner) are not processed.
    Path(purelib, "shared-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        timeout=300,
    )
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_demo_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in SHIPPED if n not in names] == []

    python = fresh_venv(tmp_path, wheel)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MODELRUNNER_HOME"] = str(home)
    code = "import modelrunner.demo as d; print(d.__file__); print(d.examples_dir())"
    where = run([str(python), "-c", code], cwd=work, env=env, timeout=60).stdout.split()
    venv = python.parent.parent
    assert Path(where[0]).is_relative_to(venv), where  # the wheel's modelrunner, not the editable one
    assert Path(where[1]) == venv / "share" / "modelrunner" / "examples", where

    port = free_port()
    demo = run(
        [
            str(python),
            "-m",
            "modelrunner.demo",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-ocr",
            "--exit-when-ready",
        ],
        cwd=work,
        env=env,
        timeout=300,
    )
    out = demo.stdout
    assert "digits version 1 @production" in out
    assert f"serving endpoint 'digits' -> digits@production at http://127.0.0.1:{port}" in out
    label_line = next(line for line in out.splitlines() if line.startswith("# predict: this row is a "))
    expected = label_line.split("this row is a ")[1].split(";")[0]
    assert f"the server answered: label {expected} from digits@1" in label_line
    assert (home / "demo" / "bundles" / "digits-lr" / "modelrunner.yaml").is_file()
    assert (home / "demo" / "test.npz").is_file()
    assert not list((venv / "share").rglob("test.npz"))  # nothing written next to the installed examples
    assert "Traceback" not in demo.stderr
