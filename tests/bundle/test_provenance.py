"""Provenance: training-data hashes, environment requirements, reproducible creation time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelrunner.bundle import provenance
from modelrunner.errors import BundleError


def test_sha256_of_bytes_and_files(tmp_path: Path) -> None:
    data = b"a,b\n1,2\n"
    assert provenance.sha256_of(data) == hashlib.sha256(data).hexdigest()
    (tmp_path / "train.csv").write_bytes(data)
    assert provenance.sha256_of(tmp_path / "train.csv") == hashlib.sha256(data).hexdigest()
    assert provenance.sha256_of(str(tmp_path / "train.csv")) == hashlib.sha256(data).hexdigest()
    folder = tmp_path / "set"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_bytes(b"a")
    first = provenance.sha256_of(folder)
    (folder / "sub" / "a.txt").write_bytes(b"b")
    assert provenance.sha256_of(folder) != first
    with pytest.raises(BundleError, match="does not exist"):
        provenance.sha256_of(tmp_path / "missing.csv")


def test_sha256_of_arrays_and_frames() -> None:
    x = np.arange(12.0).reshape(3, 4)
    assert provenance.sha256_of(x) == provenance.sha256_of(x.copy(order="F"))
    assert provenance.sha256_of(x) != provenance.sha256_of(x.reshape(4, 3))
    assert provenance.sha256_of(x) != provenance.sha256_of(x.astype(np.float32))
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert provenance.sha256_of(frame) == provenance.sha256_of(frame.copy())
    assert provenance.sha256_of(frame) != provenance.sha256_of(frame.assign(b=["x", "z"]))
    assert provenance.sha256_of({"b": np.ones(2), "a": np.zeros(2)}) == provenance.sha256_of(
        {"a": np.zeros(2), "b": np.ones(2)}
    )
    with pytest.raises(BundleError, match="cannot hash training_data of type int"):
        provenance.sha256_of(3)


def test_requirements_skip_missing() -> None:
    reqs = provenance.requirements(["numpy", "no-such-distribution-xyz", "numpy", "xgboost"])
    assert reqs[0] == f"numpy=={np.__version__}"
    assert len(reqs) == 2 and reqs[1].split("==")[0] in ("xgboost", "xgboost-cpu")


def test_created_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert provenance.created_at().isoformat() == "1970-01-01T00:00:00+00:00"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert provenance.created_at().year >= 2024


def test_git_commit_outside_a_repo(tmp_path: Path) -> None:
    assert provenance.git_commit(tmp_path) == (None, None)
