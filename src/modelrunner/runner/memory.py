"""Give memory back (collect garbage, then ask glibc to return freed heap pages to the OS), at most so often
(on-demand evictions), and estimate what a loaded model version takes."""

from __future__ import annotations

import gc
import logging
import os
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelrunner.pipelines.targets import ResolvedTarget
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)


@cache
def _libc() -> Any | None:
    """glibc, if this process runs on it (``malloc_trim`` is glibc-only); ctypes is imported on first use."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def release_memory() -> bool:
    """``gc.collect()`` then ``malloc_trim(0)``; True when the trim ran (glibc)."""
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


_collector_paused = False


def pause_collector_for_start() -> None:
    """No automatic collections until :func:`freeze_startup_heap` (a worker's start: ``server/worker.py``).

    Importing the server stack and a model's libraries makes ~340k objects: the collector ran ~500 times
    during a worker's start (scikit-learn with pandas) for ~0.25 s of CPU, a fifth of it, and found almost
    nothing (~1,300 unreachable objects, ~0.5 MB: classes and functions made and dropped by imports)."""
    global _collector_paused
    _collector_paused = True
    gc.disable()


def freeze_startup_heap(*, count: bool = True) -> int:
    """Move every object alive now (the server stack, model libraries, first models) out of the collector's
    sight; returns the number frozen (``count=False``: 0 — counting walks them all, ~25 ms in a worker).

    A full ``gc.collect()`` in a worker that imported the server stack and scikit-learn (with pandas and
    pyarrow behind it) walks ~200k objects and holds the GIL for 0.2-0.3 s: every request of that worker
    stalls on each swap. Called once per worker after its first loads and before it takes traffic. Objects
    made later stay collectable; the cost: a model loaded at startup that sits in a reference cycle is never
    freed by the collector once swapped out (reference counting still frees every acyclic one).

    Only the young generations are collected first: the automatic collections during the imports leave
    ~10 unreachable objects in the old one (measured), not worth a full walk (~80 ms of every cold start).
    After :func:`pause_collector_for_start` everything made since is young: collecting it would walk it all
    (~0.14 s), so it is frozen as it is (its ~0.5 MB of garbage with it) and the collector resumes.
    """
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.freeze()
        gc.enable()
    else:
        gc.collect(1)
        gc.freeze()
    return gc.get_freeze_count() if count else 0


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (Linux ``/proc``), 0 when unknown."""
    path = f"/proc/{pid or os.getpid()}/statm"
    try:
        with open(path) as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


RELEASE_EVERY_S = 5.0
"""An eviction gives memory back to the OS (a full ``gc.collect()`` + ``malloc_trim``: 0.2-0.3 s holding the
GIL in a worker with scikit-learn imported) at most this often; in between, reference counting frees an
evicted model (what sits in a reference cycle waits for the next release or the automatic collector)."""


class ThrottledRelease:
    """``release_memory`` at most every ``every_s`` seconds (thread-safe enough: a race runs it twice)."""

    def __init__(self, every_s: float = RELEASE_EVERY_S) -> None:
        self.every_s = every_s
        self.last = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return False
        self.last = now
        return release_memory()


def footprint(registry: Registry, mv: ResolvedTarget) -> int:
    """Estimated memory of a loaded version: its unpacked bundle's size (a pickled model's arrays take
    about their pickled size once loaded; a pipeline: its folder). Fetches the bundle (cached by sha256, so
    the load that follows reads it from the cache)."""
    directory = getattr(mv, "directory", None)
    folder = Path(directory) if directory is not None else registry.fetch(mv)  # type: ignore[arg-type]
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return max(total, int(getattr(mv, "size", 0) or 0))
