"""Virtual environments of every server, created once under ``bench/.cache/venvs`` and reused.

modelrunner gets one too (this checkout, editable, with only its ``sklearn`` extra), so no server sees
packages another one needs (e.g. scikit-learn imports pandas whenever it is installed: +65 MB per process).

Every environment pins the same scikit-learn/numpy as the environment that trains the models, so one
pickled model loads everywhere. A finished install leaves a stamp file holding its requirement list; a
changed list (or a missing stamp) reinstalls.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

log = logging.getLogger("bench.envs")

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench" / ".cache"


def _same(dist: str) -> str:
    return f"{dist}=={metadata.version(dist)}"


def requirements() -> dict[str, list[str]]:
    """Peer name -> pip requirements (versions of the model stack pinned to ours)."""
    stack = [_same("scikit-learn"), _same("numpy"), _same("scipy"), _same("joblib")]
    return {
        # modelrunner as a user installs it (editable, so the run measures this checkout): no dev extras
        "modelrunner": ["-e", f"{ROOT}[sklearn]", *stack],
        # uvloop 0.21: MLServer 1.7.1 does not start its workers with uvloop >= 0.22 (MLServer #2286)
        "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0", *stack],
        "mlflow": ["mlflow==3.17.2", "uvloop", "httptools", *stack],
        "bentoml": ["bentoml==1.4.39", "uvloop", "httptools", *stack],
        "bare": ["uvicorn==0.38.0", "uvloop", "httptools", "orjson", *stack],
    }


def venv_python(name: str) -> Path:
    return CACHE / "venvs" / name / "bin" / "python"


def ensure(name: str, reqs: list[str] | None = None) -> Path:
    """Create (or reuse) the virtual environment of peer ``name``; return its python."""
    reqs = reqs if reqs is not None else requirements()[name]
    root = CACHE / "venvs" / name
    stamp = root / ".bench-installed"
    wanted = "\n".join(reqs)
    python = venv_python(name)
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        _compile_venv(root, python)
        _compile_checkout(name, python)
        return python
    log.info("installing %s into %s (takes minutes the first time)", name, root)
    if not python.exists():
        subprocess.run([_base_python(), "-m", "venv", str(root)], check=True)
    log_file = CACHE / f"install-{name}.log"
    with log_file.open("w") as out:
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *reqs],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"installing {name} failed; see {log_file}")
    stamp.write_text(wanted)
    _compile_venv(root, python)
    _compile_checkout(name, python)
    return python


def _compile_venv(root: Path, python: Path) -> None:
    """Byte-compile everything installed in the environment, once (a ``.bench-compiled`` marker).

    pip compiles what it installs, except where PYTHONDONTWRITEBYTECODE is set (these machines: it installed
    no ``.pyc`` at all), and then every server process compiles scikit-learn, NumPy and its framework from
    source at each start: a cold start of the bare app measured 1.9-2.5 s instead of 1.3 s."""
    marker = root / ".bench-compiled"
    if marker.exists():
        return
    log.info("byte-compiling %s (once)", root)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    for site in sorted(root.glob("lib/python*/site-packages")):  # a file that fails to compile is skipped
        subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", str(site)], env=env, check=False)
    marker.write_text("")


def _compile_checkout(name: str, python: Path) -> None:
    """Byte-compile this checkout for its editable install, as ``pip install`` does for every peer.

    Otherwise, where PYTHONDONTWRITEBYTECODE is set (it is on these machines), every modelrunner process
    compiles its ~120 modules from source at start: ~0.1 s of each process's CPU in the cold start only
    modelrunner would pay."""
    if name == "modelrunner":
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}  # next to the sources
        subprocess.run(
            [str(python), "-m", "compileall", "-q", str(ROOT / "src" / "modelrunner")], env=env, check=True
        )


def _base_python() -> str:
    """The interpreter our own virtual environment was made from (venv of a venv is not allowed)."""
    return getattr(sys, "_base_executable", sys.executable) or sys.executable


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    CACHE.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or list(requirements())
    failed = []
    for name in names:
        try:
            ensure(name)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            log.error("%s: %s", name, exc)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    raise SystemExit(main())
