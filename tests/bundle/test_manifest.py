"""Manifests: YAML alias bombs and oversized files are refused; save_model caps description/tags/metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelrunner as mr
from modelrunner.bundle.manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest
from modelrunner.errors import BundleError
from support.bombs import yaml_alias_bomb

VALID = {
    "name": "toy",
    "flavor": "python",
    "created_at": "2024-01-01T00:00:00Z",
    "contract": {
        "inputs": [{"name": "x", "dtype": "float32", "shape": [2]}],
        "outputs": [{"name": "y", "dtype": "int64"}],
    },
}


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return folder


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    body = (
        yaml.safe_dump(VALID)
        + "lineage:\n  extra:\n"
        + "".join(f"    {line}\n" for line in yaml_alias_bomb().splitlines())
    )  # 10**9 leaves once dumped
    folder = _write(tmp_path / "bomb", body)
    start = time.perf_counter()
    with pytest.raises(BundleError, match="invalid manifest: YAML anchors and aliases are not allowed"):
        Manifest.read(folder)
    assert time.perf_counter() - start < 2


def test_a_plain_manifest_still_reads(tmp_path: Path) -> None:
    folder = _write(tmp_path / "ok", yaml.safe_dump({**VALID, "description": "&not an anchor"}))
    manifest = Manifest.read(folder)
    assert manifest.name == "toy" and manifest.description == "&not an anchor"


def test_an_oversized_manifest_file_is_refused_unread(tmp_path: Path) -> None:
    folder = _write(tmp_path / "big", yaml.safe_dump(VALID) + f"python: {'x' * MAX_MANIFEST_BYTES}\n")
    limit = rf"manifest is too large: \d+ bytes \(limit {MAX_MANIFEST_BYTES}\)"
    with pytest.raises(BundleError, match=limit):
        Manifest.read(folder)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"description": "x" * 10_001}, r"field description is too long: 10001 characters \(limit 10000\)"),
        ({"tags": {f"k{i}": "v" for i in range(65)}}, r"field tags is too long: 65 entries \(limit 64\)"),
        ({"tags": {"team": "v" * 1025}}, r"field tags\['team'\] is too long: 1025 characters \(limit 1024\)"),
        ({"metrics": {"m" * 129: 1.0}}, r"field metrics name 'm+' is too long: 129 characters \(limit 128\)"),
    ],
)
def test_save_refuses_oversized_fields_naming_field_and_limit(
    tmp_path: Path, digits: Any, digits_lr: Any, kwargs: dict[str, Any], message: str
) -> None:
    x, _ = digits
    with pytest.raises(BundleError, match=message):
        mr.save_model(digits_lr, tmp_path / "b", sample=x[:2], **kwargs)
    assert not (tmp_path / "b").exists()
