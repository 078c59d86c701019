"""Hand-made bundles for registry tests (no flavor needed: the registry never loads models)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelrunner.bundle.manifest import Manifest
from modelrunner.contract import Contract, DType, Field
from modelrunner.registry import Registry
from modelrunner.settings import Settings


def write_bundle(
    path: Path,
    name: str = "toy",
    *,
    inputs: tuple[str, ...] = ("x",),
    payload: bytes = b"weights-v1",
    license: str | None = "MIT",
) -> Path:
    """A minimal bundle folder: a manifest and one data file. Same arguments, same bytes."""
    path.mkdir(parents=True, exist_ok=True)
    contract = Contract.build(
        [Field(name=n, dtype=DType.FLOAT32, shape=(2,)) for n in inputs],
        [Field(name="y", dtype=DType.INT64)],
    )
    Manifest(
        name=name,
        flavor="python",
        contract=contract,
        license=license,
        description=f"{name} model",
        metrics={"accuracy": 0.9},
        tags={"team": "core"},
        example_input=None,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    ).dump(path)
    (path / "weights.bin").write_bytes(payload)
    return path


def push_in_process(home: str, db_url: str, bundle: str, barrier: Any, out: Any) -> None:
    """Child-process body of the concurrent-push test (importable by name for forkserver)."""
    try:
        barrier.wait(timeout=60)
        with Registry(Settings(home=Path(home)), database_url=db_url) as reg:
            out.put(reg.push(bundle).version)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(f"{exc.__class__.__name__}: {exc}")


@contextlib.contextmanager
def tiny_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """A small tmpfs at ``mount`` for disk-full tests (we run as root in CI and the dev container);
    the test is skipped, saying why, where mounting is not permitted."""
    mount.mkdir(parents=True, exist_ok=True)
    done = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
        if shutil.which("mount")
        else None
    )
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() if done else 'no mount command'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fetch_in_process(home: str, ref: str, downloads: str, barrier: Any, out: Any) -> None:
    """Child-process body of the concurrent-fetch test: a worker fetching ``ref``; every download from the
    store appends a line to ``downloads`` and takes 0.5 s (so the two workers' fetches overlap)."""
    import time

    from modelrunner.registry.store import ArtifactStore

    real = ArtifactStore.get_to

    def counted(self: ArtifactStore, sha: str, dest: Any) -> Path:
        with open(downloads, "a") as fh:
            fh.write(f"{sha}\n")
        time.sleep(0.5)
        return real(self, sha, dest)

    try:
        ArtifactStore.get_to = counted  # type: ignore[method-assign]
        with Registry(Settings(home=Path(home))) as reg:
            barrier.wait(timeout=60)
            out.put(str(reg.fetch(ref)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(f"{exc.__class__.__name__}: {exc}")
