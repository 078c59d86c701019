"""A push in a child process that stops half way through its upload, for SIGKILL tests.

Run as a script: ``python killed_push.py BUNDLE``. The child uploads half the packed bundle to the store's
``tmp/*.part``, prints ``HALF`` and waits; the parent kills it (or lets it go on by closing its stdin).
Only fsspec's local copy is replaced in the child: everything of modelrunner runs for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

HALF = "HALF"


def _half_then_wait(self: Any, lpath: str, rpath: str, **kwargs: Any) -> None:
    size = os.path.getsize(lpath)
    with open(lpath, "rb") as src, open(rpath, "wb") as dst:
        dst.write(src.read(size // 2))
        dst.flush()
        print(HALF, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or kills us)
        dst.write(src.read())


def start(bundle: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the child; return once it has stopped half way through the upload."""
    import modelrunner

    paths = [str(Path(modelrunner.__file__).parents[1]), str(Path(__file__).parent)]
    child_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.Popen(
        [sys.executable, __file__, str(bundle)],
        env=child_env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # blocks until the child is half way (or dies)
    if line != HALF:
        proc.kill()
        raise AssertionError(f"push child did not reach the upload: {line!r} {proc.communicate()[1]}")
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def main() -> None:
    from fsspec.implementations.local import LocalFileSystem

    from modelrunner.registry import Registry

    LocalFileSystem.put_file = _half_then_wait  # type: ignore[method-assign]
    with Registry.from_env() as reg:
        mv = reg.push(sys.argv[1])
    print(f"pushed {mv.ref}", flush=True)


if __name__ == "__main__":
    main()
