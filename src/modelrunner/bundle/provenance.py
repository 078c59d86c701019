"""Where a bundle came from: environment requirements, git commit, training-data hash, creation time."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from modelrunner.errors import BundleError

log = logging.getLogger(__name__)

# Some packages ship under several distribution names (xgboost-cpu installs the "xgboost" module).
_ALIASES: dict[str, tuple[str, ...]] = {"xgboost": ("xgboost", "xgboost-cpu")}


def python_version() -> str:
    return platform.python_version()


def requirements(packages: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution in ``packages`` (missing ones are skipped)."""
    out: list[str] = []
    for package in dict.fromkeys(packages):
        for dist in _ALIASES.get(package, (package,)):
            try:
                out.append(f"{dist}=={importlib.metadata.version(dist)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def created_at() -> datetime:
    """Now (UTC), or ``SOURCE_DATE_EPOCH`` when set, so rebuilding a bundle can give identical bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return datetime.now(tz=UTC).replace(microsecond=0)


def git_commit(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git repository around ``cwd``; (None, None) outside a repo or without git."""
    try:
        head = _git(["rev-parse", "HEAD"], cwd)
        if head is None:
            return None, None
        status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
        return head, (bool(status) if status is not None else None)
    except OSError:
        return None, None


def _git(args: list[str], cwd: Path | None) -> str | None:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def sha256_of(data: Any) -> str:
    """sha256 of training data: bytes, a file or folder path, a numpy array, a DataFrame or dict of arrays."""
    h = hashlib.sha256()
    if isinstance(data, bytes | bytearray | memoryview):
        h.update(bytes(data))
    elif isinstance(data, str | Path):
        _hash_path(h, Path(data))
    elif isinstance(data, np.ndarray):
        _hash_array(h, data)
    elif type(data).__name__ == "DataFrame":
        for label in data.columns:
            h.update(repr(label).encode())
            _hash_array(h, data[label].to_numpy())
    elif isinstance(data, dict):
        for key in sorted(data):
            h.update(repr(key).encode())
            _hash_array(h, np.asarray(data[key]))
    else:
        raise BundleError(
            f"cannot hash training_data of type {type(data).__name__}: "
            "give bytes, a path, a numpy array, a DataFrame or a dict of arrays"
        )
    return h.hexdigest()


def _hash_array(h: Any, arr: np.ndarray) -> None:
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.kind == "O":
        for value in arr.flat:
            h.update(repr(value).encode())
            h.update(b"\0")
    else:
        h.update(np.ascontiguousarray(arr).tobytes())


def _hash_path(h: Any, path: Path) -> None:
    if path.is_file():
        _hash_file(h, path)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(child.relative_to(path).as_posix().encode() + b"\0")
            _hash_file(h, child)
    else:
        raise BundleError(f"training_data path {path} does not exist")


def _hash_file(h: Any, path: Path | str) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a local file, read in 1 MiB chunks (the one file hash every layer uses)."""
    h = hashlib.sha256()
    _hash_file(h, path)
    return h.hexdigest()
