"""Bundle archives: deterministic ``.tar.gz`` packing and safe unpacking of ``.tar.gz``/``.tgz``/``.zip``.

``pack`` sorts entries and zeroes mtimes, owners and the gzip header, so identical bundle folders give
identical bytes (and so identical sha256). Unpacking rejects absolute paths, ``..`` components, links that
point outside the destination, devices and FIFOs; a corrupt archive is a one-line :class:`BundleError`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from modelrunner.bundle.limits import Limits, Tally
from modelrunner.errors import BundleError, disk_full

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK"


def pack(directory: str | Path) -> bytes:
    """The bundle folder as deterministic ``.tar.gz`` bytes."""
    buf = io.BytesIO()
    write_archive(directory, buf)
    return buf.getvalue()


def write_archive(directory: str | Path, out: IO[bytes], overrides: dict[str, bytes] | None = None) -> None:
    """Write the deterministic ``.tar.gz`` of ``directory`` to a binary file object; ``overrides`` maps
    relative paths of existing files to the content packed instead (a rewritten manifest)."""
    root = Path(directory)
    if not root.is_dir():
        raise BundleError(f"cannot pack {root}: not a folder")
    entries = sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in entries:
            rel = path.relative_to(root).as_posix()
            if overrides and rel in overrides:
                info = _info(rel, 0o644)
                info.size = len(overrides[rel])
                tar.addfile(info, io.BytesIO(overrides[rel]))
            else:
                _add(tar, root, path)


def _info(rel: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = mode
    return info


def _add(tar: tarfile.TarFile, root: Path, path: Path) -> None:
    rel = path.relative_to(root).as_posix()
    if path.is_symlink():
        raise BundleError(f"cannot pack {root}: {rel} is a symlink (bundles hold regular files only)")
    if path.is_dir():
        info = _info(rel, 0o755)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    info = _info(rel, 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
    info.size = path.stat().st_size
    with path.open("rb") as fh:
        tar.addfile(info, fh)


def unpack_to(archive: bytes | str | Path, dest: str | Path) -> Path:
    """Safely unpack a bundle archive (bytes or a file) into ``dest``; returns the bundle root folder.

    The root is ``dest`` itself, or its single top-level folder when the archive wraps the bundle in one.
    """
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    safe_extract(archive, target)
    return bundle_root(target)


def bundle_root(folder: Path) -> Path:
    from modelrunner.bundle.manifest import MANIFEST_FILE

    if (folder / MANIFEST_FILE).is_file():
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and (children[0] / MANIFEST_FILE).is_file():
        return children[0]
    raise BundleError(f"archive holds no {MANIFEST_FILE}: not a bundle")


def safe_extract(archive: bytes | str | Path, dest: Path, limits: Limits | None = None) -> None:
    """Extract a ``.tar.gz`` or ``.zip`` (bytes or a file) into ``dest`` after checking every member.

    ``limits`` (default: from the settings) bound the entries, the unpacked size and the expansion ratio:
    declared sizes are checked before anything is written, actual bytes are counted while writing.
    """
    limits = limits or Limits.from_settings()
    if isinstance(archive, bytes):
        _extract(io.BytesIO(archive), dest, limits, len(archive))
        return
    with contextlib.ExitStack() as stack:
        try:
            fh = stack.enter_context(Path(archive).open("rb"))
        except OSError as exc:
            raise BundleError(f"cannot read archive {archive}: {exc.strerror or exc}") from exc
        _extract(fh, dest, limits, os.fstat(fh.fileno()).st_size)


def _extract(fh: IO[bytes], dest: Path, limits: Limits, packed: int) -> None:
    magic = fh.read(2)
    fh.seek(0)
    try:
        if magic == _ZIP_MAGIC:
            _extract_zip(fh, dest, limits.tally(packed))
        elif magic == _GZIP_MAGIC:
            _extract_tar(fh, dest, limits.tally(packed))
        else:
            raise BundleError("not a bundle archive: expected a .tar.gz, .tgz or .zip file")
    except OSError as exc:
        full = disk_full(exc, f"the unpacked bundle in {dest}")
        if full is None:
            raise
        raise full from exc


def _check_name(name: str) -> str:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise BundleError(f"unsafe archive: absolute path {name!r}")
    if ".." in norm.split("/"):
        raise BundleError(f"unsafe archive: path {name!r} leaves the bundle ('..')")
    return norm


def _inside(base: str, target: str) -> bool:
    joined = posixpath.normpath(posixpath.join(base, target))
    return not (joined == ".." or joined.startswith("../") or posixpath.isabs(target))


def _check_tar_member(m: tarfile.TarInfo) -> None:
    _check_name(m.name)
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        raise BundleError(f"unsafe archive: {m.name!r} is a device or FIFO")
    if m.issym() and not _inside(posixpath.dirname(m.name), m.linkname):
        raise BundleError(f"unsafe archive: symlink {m.name!r} points outside the bundle ({m.linkname!r})")
    if m.islnk() and not _inside("", m.linkname):
        raise BundleError(f"unsafe archive: hardlink {m.name!r} points outside the bundle ({m.linkname!r})")


def _extract_tar(fh: IO[bytes], dest: Path, tally: Tally) -> None:
    try:
        with tarfile.open(fileobj=fh, mode="r:gz") as tar:
            members = []
            for m in tar:  # lazily: each header is checked before its data is decompressed
                _check_tar_member(m)
                members.append(m)
                tally.declare(m.size if m.isfile() else 0)
            for m in members:
                tar.extract(m, dest, filter="data")
                if m.isfile():
                    tally.wrote(os.lstat(dest / m.name).st_size)
    except tarfile.FilterError as exc:
        raise BundleError(f"unsafe archive: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"corrupt bundle archive: {exc.__class__.__name__}: {exc}") from exc


def _extract_zip(fh: IO[bytes], dest: Path, tally: Tally) -> None:
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_zip_member(info)
                tally.declare(info.file_size)
            for info in infos:
                _write_zip_member(zf, info, dest, tally)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise BundleError(f"corrupt bundle archive: {exc.__class__.__name__}: {exc}") from exc


def _check_zip_member(info: zipfile.ZipInfo) -> None:
    _check_name(info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BundleError(f"unsafe archive: {info.filename!r} is a symlink (not allowed in zip)")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise BundleError(f"unsafe archive: {info.filename!r} is not a regular file")


def _write_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, tally: Tally) -> None:
    """Stream one member to disk, counting bytes (zipfile checks the CRC when the member ends)."""
    parts = [p for p in info.filename.split("/") if p not in ("", ".")]
    if not parts:
        return
    target = dest.joinpath(*parts)
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "wb") as out:
        copy_counted(src, out, info.file_size, tally, info.filename)


def copy_counted(src: IO[bytes], out: IO[bytes], declared: int, tally: Tally, name: str) -> int:
    """Copy ``src`` to ``out``; refuse a member that yields more than it declared or passes the limits."""
    written = 0
    for block in iter(lambda: src.read(CHUNK), b""):
        written += len(block)
        if written > declared:
            raise BundleError(f"corrupt bundle archive: {name!r} expands past its declared {declared} bytes")
        tally.wrote(len(block))
        out.write(block)
    return written


def extract_cached(path: Path, cache: Path, digest: str) -> Path:
    """Unpack ``path`` once into ``cache/<digest>`` (atomic rename) and return the bundle root."""
    final = cache / digest
    if final.is_dir():
        return bundle_root(final)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache))
    try:
        unpack_to(path, tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race; use its copy
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return bundle_root(final)
