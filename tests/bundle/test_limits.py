"""Expansion limits: zip and tar.gz bombs are refused before they fill the disk (declared, actual sizes)."""

from __future__ import annotations

import io
import random
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from modelrunner.bundle import archive
from modelrunner.bundle.limits import Limits
from modelrunner.errors import BundleError
from support.bombs import MIB, zip_bomb

SMALL = Limits(max_bytes=8 * MIB, max_ratio=50, max_members=10, ratio_floor=MIB)


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_2gib_zip_bomb_is_refused_by_its_ratio_with_default_limits(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip")  # 2 GiB of zeros in 2 MiB: 1,000:1
    start = time.perf_counter()
    with pytest.raises(BundleError, match=r"declares 2\.0 GiB.*limit 200:1, MODELRUNNER_MAX_EXPANSION_RATIO"):
        archive.unpack_to(bomb, tmp_path / "out")
    elapsed = time.perf_counter() - start
    assert _written(tmp_path / "out") == 0  # refused from the central directory, before writing
    assert elapsed < 5, f"refusing took {elapsed:.2f} s: the bomb was decompressed"


def test_total_size_limit_comes_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRUNNER_MAX_UNPACKED_BYTES", str(MIB))
    data = _zip({"modelrunner.yaml": b"name: x\n", "weights.bin": bytes(2 * MIB)})
    limit = r"more than 1\.0 MiB \(limit MODELRUNNER_MAX_UNPACKED_BYTES=1048576\)"
    with pytest.raises(BundleError, match=limit):
        archive.unpack_to(data, tmp_path / "out")
    monkeypatch.delenv("MODELRUNNER_MAX_UNPACKED_BYTES")
    assert archive.unpack_to(data, tmp_path / "ok") == tmp_path / "ok"


@pytest.mark.parametrize("pack", [_zip, _tar_gz], ids=["zip", "tar.gz"])
def test_declared_ratio_total_and_entries_are_checked_before_writing(tmp_path: Path, pack: object) -> None:
    make = pack  # type: ignore[assignment]
    bomb = make({"modelrunner.yaml": b"name: x\n", "weights.bin": bytes(4 * MIB)})  # type: ignore[operator]
    with pytest.raises(BundleError, match=r"times its packed .*limit 50:1"):
        archive.safe_extract(bomb, tmp_path / "ratio", SMALL)
    big = make({"modelrunner.yaml": b"name: x\n", "weights.bin": bytes(9 * MIB)})  # type: ignore[operator]
    with pytest.raises(BundleError, match=r"declares more than 8\.0 MiB"):
        archive.safe_extract(big, tmp_path / "total", Limits(max_bytes=8 * MIB, max_ratio=10**6))
    many = make({f"f{i}": b"x" for i in range(11)})  # type: ignore[operator]
    with pytest.raises(BundleError, match=r"more than 10 entries \(limit MODELRUNNER_MAX_ARCHIVE_MEMBERS\)"):
        archive.safe_extract(many, tmp_path / "many", SMALL)
    for folder in ("ratio", "total", "many"):
        assert not (tmp_path / folder).exists() or _written(tmp_path / folder) == 0
    fine = make({"modelrunner.yaml": b"name: x\n", "weights.bin": random.Random(0).randbytes(MIB)})  # type: ignore[operator]
    archive.safe_extract(fine, tmp_path / "fine", SMALL)
    assert (tmp_path / "fine" / "weights.bin").stat().st_size == MIB


def test_bytes_actually_written_are_counted_since_headers_can_lie(tmp_path: Path) -> None:
    tally = SMALL.tally(packed=1024)
    with pytest.raises(BundleError, match=r"'w\.bin' expands past its declared 10 bytes"):
        archive.copy_counted(io.BytesIO(b"x" * 11), io.BytesIO(), 10, tally, "w.bin")
    tally = Limits(max_bytes=MIB, max_ratio=10**6).tally(packed=1024)
    with pytest.raises(BundleError, match=r"expands to more than 1\.0 MiB"):
        archive.copy_counted(io.BytesIO(bytes(2 * MIB)), io.BytesIO(), 2 * MIB, tally, "w.bin")
