"""Bundle I/O for the registry: open a bundle to push, pack it to a file, unpack a fetched artifact."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from modelrunner.bundle import archive
from modelrunner.bundle.bundle import open_bundle
from modelrunner.bundle.limits import Limits
from modelrunner.bundle.manifest import MANIFEST_FILE, Manifest
from modelrunner.contract import Contract
from modelrunner.contract.compat import bump_version, check_compatible
from modelrunner.contract.compat import renumber as _renumber
from modelrunner.errors import BundleError, disk_full

PIPELINE_FLAVOR = "pipeline"  # pipelines are bundles too (modelrunner.pipelines.package)


def open_for_push(path: Path | str, cache_dir: Path) -> tuple[Path, Manifest]:
    """``(bundle folder, manifest)`` for a bundle folder or archive; BundleError when it is not one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BundleError(f"{path}: no such bundle (file or folder not found)")
    bundle = open_bundle(path, cache_dir=cache_dir)
    _check_manifest(bundle.manifest)
    return Path(bundle.path), bundle.manifest


def _check_manifest(manifest: Manifest) -> None:
    """Refuse an unknown flavor or a license that is not an SPDX id before anything is stored."""
    from modelrunner.bundle.flavors import get_flavor
    from modelrunner.bundle.licenses import normalize_license

    if manifest.flavor != PIPELINE_FLAVOR:
        get_flavor(manifest.flavor)
    if manifest.license is not None:
        normalize_license(manifest.license)


def renumber(old: Contract | None, new: Contract) -> Contract:
    """Field numbers of ``new`` kept stable against ``old`` (see ``contract.compat.renumber``); a contract
    that would break ``old``'s clients gets the next contract version (``bump_version``), so serving it
    takes a forced swap and every contract version names one wire-compatible ``.proto``."""
    out = _renumber(old, new)
    if old is not None and check_compatible(old, out):
        return bump_version(old, new)
    return out


def pack_to(directory: Path, manifest: Manifest, original: Manifest, dest: Path) -> int:
    """Write the deterministic tar.gz of a bundle to ``dest`` (with ``manifest`` when it differs); size.

    The new manifest replaces the bundle's in the archive (no copy of the bundle on disk). Out of disk
    space is a one-line :class:`DiskFull` (the caller's work folder is removed with what it holds)."""
    overrides = {MANIFEST_FILE: manifest.dump_bytes()} if manifest != original else {}
    try:
        with open(dest, "wb") as out:
            archive.write_archive(directory, out, overrides)
    except OSError as exc:
        full = disk_full(exc, f"the packed bundle in {dest.parent}")
        if full is None:
            raise
        raise full from exc
    return dest.stat().st_size


def check_expansion(directory: Path, packed: int) -> None:
    """Refuse to store a bundle that every fetch would refuse to unpack (the archive limits of
    ``bundle.limits``: total size and expansion ratio), naming the limit, before it is uploaded."""
    unpacked = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    try:
        Limits.from_settings().check(unpacked, packed)
    except BundleError as exc:
        raise BundleError(f"cannot push {directory}, every fetch would refuse it: {exc}") from exc


def unpack(archive_path: Path, dest: Path) -> Path:
    """Safely extract a bundle archive into ``dest``; return the folder holding the manifest."""
    return archive.unpack_to(archive_path, dest)


def bundle_root(folder: Path) -> Path:
    """``folder`` if it holds the manifest, else its single sub-folder that does."""
    return archive.bundle_root(folder)


@contextlib.contextmanager
def fetch_lock(cache: Path, sha: str) -> Iterator[None]:
    """Hold ``<cache>/.locks/<sha>.lock`` (an exclusive ``flock``): the worker processes of one host fetch a
    bundle one at a time, so the one that waited finds it in the cache instead of downloading it again. The
    kernel releases the lock when its holder dies. The holder removes the file when done: a waiter then
    finds the bundle cached; only after a failed fetch may a waiter and a newcomer both try again (each
    fetch is atomic, so that costs a download, never a corrupt cache)."""
    folder = cache / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha}.lock"
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
