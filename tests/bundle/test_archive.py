"""Archives: deterministic packing; unpacking rejects traversal, absolute paths, link escapes, devices."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelrunner.bundle import archive
from modelrunner.errors import BundleError

MANIFEST = b"name: x\n"


def _bundle_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "modelrunner.yaml").write_bytes(MANIFEST)
    (root / "sub").mkdir()
    (root / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 100)
    return root


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_pack_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    a = _bundle_dir(tmp_path / "a")
    b = _bundle_dir(tmp_path / "b")
    os.utime(b / "sub" / "weights.bin", (12345, 12345))
    os.chmod(b / "modelrunner.yaml", 0o600)
    packed = archive.pack(a)
    assert packed == archive.pack(b)
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in tar.getmembers())
    assert names == sorted(names) == ["modelrunner.yaml", "sub", "sub/weights.bin"]
    root = archive.unpack_to(packed, tmp_path / "out")
    assert (root / "sub" / "weights.bin").read_bytes() == b"\x00\x01" * 100
    (b / "sub" / "weights.bin").write_bytes(b"changed")
    assert archive.pack(a) != archive.pack(b)


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    a = _bundle_dir(tmp_path / "a")
    (a / "link").symlink_to(tmp_path)
    with pytest.raises(BundleError, match="symlink"):
        archive.pack(a)


def test_unpack_wrapped_folder_and_zip(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("digits/modelrunner.yaml", MANIFEST)
        zf.writestr("digits/model.bin", b"m")
    root = archive.unpack_to(buf.getvalue(), tmp_path / "out")
    assert root == tmp_path / "out" / "digits" and (root / "model.bin").read_bytes() == b"m"
    path = tmp_path / "b.zip"
    path.write_bytes(buf.getvalue())
    assert archive.unpack_to(path, tmp_path / "out2").name == "digits"


def test_unpack_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no modelrunner.yaml"):
        archive.unpack_to(_tar([_file("model.bin")]), tmp_path / "out")


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x1f\x8b\x08garbage", b"PK\x03\x04garbage"])
def test_corrupt_archive(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BundleError) as err:
        archive.unpack_to(data, tmp_path / "out")
    assert "\n" not in str(err.value)


def test_truncated_archive(tmp_path: Path) -> None:
    packed = archive.pack(_bundle_dir(tmp_path / "a"))
    with pytest.raises(BundleError, match="corrupt bundle archive"):
        archive.unpack_to(packed[: len(packed) // 2], tmp_path / "out")


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_file("../evil")], r"leaves the bundle"),
        ([_file("a/../../evil")], r"leaves the bundle"),
        ([_file("/etc/evil")], r"absolute path"),
        ([_link("link", "/etc/passwd")], r"symlink 'link' points outside"),
        ([_link("sub/link", "../../x")], r"symlink 'sub/link' points outside"),
        ([_link("hard", "../x", tarfile.LNKTYPE)], r"hardlink 'hard' points outside"),
        ([_link("dev", "", tarfile.CHRTYPE)], r"device or FIFO"),
        ([_link("fifo", "", tarfile.FIFOTYPE)], r"device or FIFO"),
    ],
)
def test_unsafe_tar_members(tmp_path: Path, members: list, why: str) -> None:
    data = _tar([_file("modelrunner.yaml", MANIFEST), *members])
    with pytest.raises(BundleError, match=why):
        archive.unpack_to(data, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_symlink_chain_escape_is_caught(tmp_path: Path) -> None:
    # each link looks inside on its own; together they lead out (caught by the tarfile "data" filter)
    data = _tar(
        [
            _file("modelrunner.yaml", MANIFEST),
            _link("a", "."),
            _link("b", "a/a/a/.."),
            _file("b/escaped", b"x"),
        ]
    )
    with pytest.raises(BundleError):
        archive.unpack_to(data, tmp_path / "out" / "deep")
    assert not (tmp_path / "out" / "escaped").exists()


def test_symlink_inside_is_allowed(tmp_path: Path) -> None:
    data = _tar([_file("modelrunner.yaml", MANIFEST), _file("sub/w.bin", b"w"), _link("w", "sub/w.bin")])
    root = archive.unpack_to(data, tmp_path / "out")
    assert (root / "w").read_bytes() == b"w"


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "C:/evil"])
def test_unsafe_zip_paths(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("modelrunner.yaml", MANIFEST)
        zf.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(BundleError, match="unsafe archive"):
        archive.unpack_to(buf.getvalue(), tmp_path / "out")


def test_zip_symlink_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symlink"):
        archive.unpack_to(buf.getvalue(), tmp_path / "out")


def test_extract_cached(tmp_path: Path) -> None:
    path = tmp_path / "b.tgz"
    path.write_bytes(archive.pack(_bundle_dir(tmp_path / "a")))
    first = archive.extract_cached(path, tmp_path / "cache", "abc123")
    assert first == tmp_path / "cache" / "abc123"
    assert archive.extract_cached(path, tmp_path / "cache", "abc123") == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["abc123"]
