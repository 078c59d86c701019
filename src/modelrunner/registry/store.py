"""Content-addressed artifact store over any fsspec URL: ``sha256/ab/abcdef....tar.gz``.

Writes go to a temporary key first and are moved into place, so a partial upload never appears under its
final key; reads are verified against the sha256 they are addressed by.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelrunner.bundle.provenance import sha256_file
from modelrunner.errors import InvalidArgument, NotFound, StorageError, disk_full

if TYPE_CHECKING:
    import fsspec

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
PART_SUFFIX = ".part"


class ArtifactStore:
    """Artifacts keyed by their sha256 in an fsspec filesystem (local folder, ``memory://``, ``s3://``...)."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = str(url)
        self._options = options or {}
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""
        folder = None if self._options else _local_folder(self.url)
        if folder is not None:  # a plain local folder: fsspec (~45 ms of imports) waits for the first use,
            Path(folder).mkdir(parents=True, exist_ok=True)  # which a worker finding its bundles cached skips
            return
        self._open()
        if self._is_local():
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _open(self) -> fsspec.AbstractFileSystem:
        from fsspec.core import url_to_fs

        try:
            fs, root = url_to_fs(self.url, **self._options)
        except (ImportError, ValueError, TypeError) as exc:
            raise StorageError(f"cannot open artifact store {self.url}: {exc}") from exc
        self._fs, self._root = fs, root.rstrip("/")
        return fs

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The store's fsspec filesystem (opened on first use for a local folder)."""
        return self._fs if self._fs is not None else self._open()

    @property
    def root(self) -> str:
        """The store's root in :attr:`fs`."""
        if self._fs is None:
            self._open()
        return self._root

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    def _is_local(self) -> bool:
        return "file" in _protocols(self.fs)

    def key(self, sha: str) -> str:
        """Full path of an artifact in the filesystem."""
        _check_sha(sha)
        return f"{self.root}/sha256/{sha[:2]}/{sha}.tar.gz"

    def exists(self, sha: str) -> bool:
        try:
            return bool(self.fs.exists(self.key(sha)))
        except OSError as exc:
            raise StorageError(f"artifact store {self.url}: {exc}") from exc

    def size(self, sha: str) -> int:
        try:
            return int(self.fs.size(self.key(sha)))
        except FileNotFoundError as exc:
            raise NotFound(f"artifact {sha} not in store {self.url}") from exc

    def put_file(self, path: Path | str, owner: str = "") -> str:
        """Store a local file under its sha256 (skipped when already there); return the sha256.

        The upload goes to ``tmp/<owner>-<uuid>.part`` first: ``owner`` (the name of a push's locked work
        folder) lets garbage collection tell a live upload from one a killed push left behind.
        """
        sha = sha256_file(path)
        final = self.key(sha)
        size = os.path.getsize(path)
        if self._complete(final, size):
            log.debug("artifact %s already stored", sha)
            return sha
        tmp = f"{self.root}/tmp/{owner}{'-' if owner else ''}{uuid.uuid4().hex}{PART_SUFFIX}"
        try:
            self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
            self.fs.put_file(str(path), tmp)
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(tmp, final)
        except OSError as exc:
            full = disk_full(exc, f"artifact {sha} to {self.url}")
            if full is not None:
                raise full from exc
            raise StorageError(f"cannot write artifact {sha} to {self.url}: {exc}") from exc
        finally:
            self._discard(tmp)
        return sha

    def parts(self) -> list[tuple[str, int, datetime | None]]:
        """Uploads under ``tmp/``: ``(path, size, modified)`` (modified None when the store cannot tell)."""
        try:
            found = self.fs.glob(f"{self.root}/tmp/*{PART_SUFFIX}")
        except FileNotFoundError:
            return []
        out = []
        for path in found:
            try:
                info = self.fs.info(path)
                when = self.fs.modified(path)
            except FileNotFoundError:
                continue  # finished (moved) meanwhile
            except (NotImplementedError, OSError):
                when = None
                info = {"size": 0}
            out.append((str(path), int(info.get("size") or 0), when))
        return out

    def remove_part(self, path: str) -> None:
        """Remove an abandoned upload (garbage collection only)."""
        if not str(path).startswith(f"{self.root}/tmp/") or not str(path).endswith(PART_SUFFIX):
            raise InvalidArgument(f"{path} is not an upload of {self.url}")
        self._discard(path)

    def put_bytes(self, data: bytes, tmp_dir: Path | None = None) -> str:
        """Store bytes (through a local temporary file); return the sha256."""
        import tempfile

        with tempfile.NamedTemporaryFile(dir=tmp_dir, suffix=".tar.gz", delete=False) as fh:
            fh.write(data)
            name = fh.name
        try:
            return self.put_file(name)
        finally:
            os.unlink(name)

    def open(self, sha: str) -> IO[bytes]:
        """A binary file object on the artifact (not verified; use :meth:`get_to` for verified copies)."""
        try:
            return self.fs.open(self.key(sha), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFound(f"artifact {sha} not in store {self.url}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read artifact {sha} from {self.url}: {exc}") from exc

    def get_to(self, sha: str, dest: Path | str) -> Path:
        """Copy an artifact to a local path, verifying its sha256; raise StorageError on mismatch."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        try:
            with self.open(sha) as src, open(tmp, "wb") as out:
                for block in iter(lambda: src.read(CHUNK), b""):
                    digest.update(block)
                    out.write(block)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            full = disk_full(exc, f"artifact {sha} to {dest.parent}")
            if full is None:
                raise
            raise full from exc
        try:
            if digest.hexdigest() != sha:
                raise StorageError(
                    f"artifact {sha} in {self.url} is corrupt: its content hashes to {digest.hexdigest()}"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def delete(self, sha: str) -> None:
        """Remove an artifact (used by garbage collection only)."""
        self._discard(self.key(sha))

    def list(self) -> Iterator[str]:
        """Every stored sha256."""
        try:
            paths = self.fs.glob(f"{self.root}/sha256/*/*.tar.gz")
        except FileNotFoundError:
            return
        for p in paths:
            name = str(p).rsplit("/", 1)[-1].removesuffix(".tar.gz")
            if SHA_RE.match(name):
                yield name

    def _complete(self, final: str, size: int) -> bool:
        try:
            return bool(self.fs.exists(final)) and int(self.fs.size(final)) == size
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"artifact store {self.url}: {exc}") from exc

    def _discard(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            log.warning("could not remove %s from %s", path, self.url)


def _check_sha(sha: str) -> None:
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise InvalidArgument(f"invalid sha256 {sha!r}: expected 64 lowercase hex digits")


def _local_folder(url: str) -> str | None:
    """The folder a local store URL names (a path, or ``file://`` one), None for any other URL."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif "://" in url or url.startswith("file:"):
        return None
    return os.path.expanduser(url)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto: Any = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
