"""Memory release helpers: gc + malloc_trim, and freezing the startup heap without leaking later cycles."""

from __future__ import annotations

import gc
import platform
import weakref

import pytest

from modelrunner.runner.memory import freeze_startup_heap, release_memory, rss_bytes


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc-only")
def test_release_memory_trims_on_glibc() -> None:
    assert release_memory() is True
    assert rss_bytes() > 0


def test_objects_made_after_the_freeze_are_still_collected() -> None:
    try:
        assert freeze_startup_heap() > 0
        node = Node()
        ref = weakref.ref(node)
        del node
        assert ref() is not None, "a cycle is not freed by reference counting alone"
        release_memory()
        assert ref() is None, "a model loaded after the freeze must stay collectable"
    finally:
        gc.unfreeze()


def test_throttled_release_runs_at_most_every_interval() -> None:
    from modelrunner.runner.memory import ThrottledRelease

    throttled = ThrottledRelease(every_s=3600)
    assert throttled() is False  # just made: the last release counts as now
    throttled.last -= 3600
    rewound = throttled.last
    throttled()  # due: runs
    assert throttled.last > rewound and throttled() is False  # and the next one waits again
