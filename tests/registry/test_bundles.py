"""Fetching bundles into a host's cache: concurrent worker processes download a bundle once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from modelrunner.registry import Registry
from support.registry_helpers import fetch_in_process, write_bundle

WORKERS = 2


def test_concurrent_workers_download_a_bundle_once(reg: Registry, tmp_home: Path, tmp_path: Path) -> None:
    mv = reg.push(write_bundle(tmp_path / "bundle"))
    downloads = tmp_path / "downloads.txt"
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["modelrunner.registry", "registry_helpers"])
    barrier, out = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=fetch_in_process, args=(str(tmp_home), mv.ref, str(downloads), barrier, out))
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len(set(got)) == 1 and Path(got[0]).is_dir(), got  # both got the same verified folder
    assert downloads.read_text().split() == [mv.sha256], "the second worker waited and found it cached"
    assert list((tmp_home / "cache" / ".locks").iterdir()) == [], "the lock file is removed when done"
