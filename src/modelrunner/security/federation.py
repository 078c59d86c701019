"""Federation: a version moves between registries over HTTP (docs/federation.md).

The exporting server answers ``GET /admin/federation/export/{ref}`` (metadata: sha256, licence, contract,
lineage; deployer role) and ``GET .../{ref}/artifact`` (the bundle archive). An importing registry checks
the licence against the remote's allow-list, the archive against the sha256, records where it came from in
the lineage (``lineage.extra.origin``: registry URL, ref, sha256) and stores it as the next version of the
local name (``Registry.push``). ``POST /admin/federation/import`` (admin role) does the same on a server
for ``modelrunner push REF --remote``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from modelrunner.errors import (
    InvalidArgument,
    ModelrunnerError,
    PermissionDenied,
    StorageError,
    Unauthenticated,
    Unavailable,
)
from modelrunner.registry import bundles, gc
from modelrunner.security import remotes

EXPORT = "/admin/federation/export/"
IMPORT = "/admin/federation/import"
SHA_HEADER, NAME_HEADER = "x-modelrunner-sha256", "x-modelrunner-name"
ORIGIN_HEADER, REGISTRY_HEADER = "x-modelrunner-origin-ref", "x-modelrunner-origin-registry"


def registry_name(settings: Any) -> str:
    """How this registry names itself in the lineage of what it pushes (MODELRUNNER_REGISTRY_NAME)."""
    import socket

    return str(settings.registry_name or socket.gethostname())


def export_meta(mv: Any) -> dict[str, Any]:
    """What a remote needs to decide on and check a version before downloading it."""
    return {
        "name": mv.name,
        "version": mv.version,
        "ref": mv.ref,
        "sha256": mv.sha256,
        "size": mv.size,
        "flavor": mv.flavor,
        "license": mv.license,
        "description": mv.description,
        "contract": mv.contract.to_dict(),
        "lineage": mv.lineage,
        "metrics": mv.metrics,
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_import(
    registry: Any,
    archive: Path,
    *,
    expected_sha: str,
    origin: dict[str, Any],
    name: str,
    actor: str | None = None,
) -> Any:
    """Check ``archive`` against ``expected_sha``, record ``origin`` in its lineage, push it as ``name``."""
    actual = sha256_of(archive)
    if actual != expected_sha:
        raise InvalidArgument(
            f"the transferred bundle hashes to {actual}, not {expected_sha}: refused", field="sha256"
        )
    cache = registry.settings.resolved_cache_dir()
    directory, manifest = bundles.open_for_push(archive, cache)
    lineage = manifest.lineage.model_copy(update={"extra": {**manifest.lineage.extra, "origin": origin}})
    final = manifest.model_copy(update={"lineage": lineage})
    with gc.work_dir(cache) as tmp:
        packed = tmp / "imported.tar.gz"
        bundles.pack_to(directory, final, manifest, packed)
        return registry.push(packed, name=name, actor=actor)


def _client(remote: remotes.Remote, settings: Any) -> httpx.Client:
    return httpx.Client(
        base_url=remote.url,
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"authorization": f"Bearer {remotes.token(settings, remote.name)}"},
    )


def _check(answer: httpx.Response, remote: remotes.Remote, what: str) -> None:
    if answer.status_code < 300:
        return
    try:
        error = answer.json().get("error")
        message = error.get("message") if isinstance(error, dict) else str(error)
    except ValueError:
        message = answer.text[:200]
    text = f"remote {remote.name!r} ({remote.url}) refused {what}: {answer.status_code} {message}"
    if answer.status_code == 401:
        raise Unauthenticated(text)
    if answer.status_code == 403:
        raise PermissionDenied(text)
    raise (Unavailable(text) if answer.status_code >= 500 else InvalidArgument(text))


def pull(registry: Any, remote_name: str, ref: str, local_name: str, actor: str | None = None) -> Any:
    """Copy ``ref`` of the remote into this registry as the next version of ``local_name``."""
    remote = remotes.get(registry, remote_name)
    try:
        with _client(remote, registry.settings) as client:
            meta_answer = client.get(EXPORT + ref)
            _check(meta_answer, remote, f"the export of {ref}")
            meta = meta_answer.json()
            remote.check_license(meta.get("license"), f"{remote_name}:{meta['ref']}")
            with gc.work_dir(registry.settings.resolved_cache_dir()) as tmp:
                archive = tmp / "bundle.tar.gz"
                with client.stream("GET", EXPORT + ref + "/artifact") as stream:
                    _check(stream, remote, f"the download of {ref}")
                    with open(archive, "wb") as out:
                        for chunk in stream.iter_bytes(1 << 20):
                            out.write(chunk)
                origin = {
                    "registry": remote.url,
                    "remote": remote_name,
                    "ref": meta["ref"],
                    "sha256": meta["sha256"],
                }
                return store_import(
                    registry,
                    archive,
                    expected_sha=meta["sha256"],
                    origin=origin,
                    name=local_name,
                    actor=actor,
                )
    except httpx.HTTPError as exc:
        raise Unavailable(f"remote {remote_name!r} ({remote.url}): {exc}") from exc


def push(registry: Any, ref: str, remote_name: str, name: str | None = None) -> dict[str, Any]:
    """Send ``ref`` of this registry to the remote's import route; returns the remote's answer."""
    remote = remotes.get(registry, remote_name)
    mv = registry.resolve(ref)
    remote.check_license(mv.license, mv.ref)
    headers = {
        SHA_HEADER: mv.sha256,
        NAME_HEADER: name or mv.name,
        "content-type": "application/gzip",
        ORIGIN_HEADER: mv.ref,
        REGISTRY_HEADER: registry_name(registry.settings),
    }
    try:
        with gc.work_dir(registry.settings.resolved_cache_dir()) as tmp:
            archive = registry.store.get_to(mv.sha256, tmp / "bundle.tar.gz")  # verified on the way out
            with _client(remote, registry.settings) as client, open(archive, "rb") as body:
                answer = client.post(IMPORT, content=body, headers=headers)
        _check(answer, remote, f"the import of {mv.ref}")
    except httpx.HTTPError as exc:
        raise Unavailable(f"remote {remote_name!r} ({remote.url}): {exc}") from exc
    except ModelrunnerError:
        raise
    except OSError as exc:
        raise StorageError(f"reading {mv.ref} to push it: {exc}") from exc
    return dict(answer.json())
