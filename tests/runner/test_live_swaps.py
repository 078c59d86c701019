"""Live hot-swaps through a real ``modelrunner serve`` (2 worker processes, real HTTP on 127.0.0.1, a real
registry under a temporary MODELRUNNER_HOME) while client threads send requests continuously."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelrunner.errors import SwapFailed, Unavailable
from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.runner_server import Load, Server, save_toy


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy-bundles")
    return {
        "v1": save_toy(root / "v1", 1),
        "v2": save_toy(root / "v2", 2),
        "load": save_toy(root / "load", 3, fail="load"),
        "warmup": save_toy(root / "warmup", 4, fail="warmup"),
        "breaking": save_toy(root / "breaking", 5, inputs=("x", "z")),
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def reg(home: Path) -> Iterator[Registry]:
    registry = Registry(Settings(home=home))
    yield registry
    registry.close()


def push_all(reg: Registry, bundles: dict[str, Path], *names: str) -> dict[str, int]:
    return {name: reg.push(bundles[name], name="toy").version for name in names}


def test_twenty_swaps_under_load_fail_no_request(reg, bundles, home) -> None:
    v = push_all(reg, bundles, "v1", "v2")
    with Server(home, "--endpoint", "toy=toy@1") as server, Load(server.url) as load:
        load.wait_for(50)
        windows = []
        for i in range(20):
            target = 2 if i % 2 == 0 else 1
            started = time.monotonic()
            result = server.admin.swap("toy", f"toy@{v[f'v{target}']}", wait=True, timeout=20)
            done = time.monotonic()
            assert result["outcome"] == "switched" and len(result["workers"]) == 2
            assert {w["version"] for w in result["workers"]} == {target}
            windows.append((started, done, target))
            load.wait_for(20)
    results = load.results
    took = sorted(done - started for started, done, _ in windows)
    print(
        f"\n20 swaps under load: {len(results)} requests, {len(load.failures())} failed, "
        f"swap --wait median {took[10]:.2f}s max {took[-1]:.2f}s"
    )
    assert not load.failures(), load.failures()[:3]
    assert len(results) > 500 and {r.version for r in results} == {1, 2}
    for (_, done, target), nxt in zip(windows, windows[1:] + [(float("inf"), 0, 0)], strict=True):
        after = [r.version for r in results if done < r.started and r.ended < nxt[0]]
        assert after and set(after) == {target}, f"old version answered after the swap to {target} returned"


def test_alias_move_reaches_every_worker_within_two_seconds(reg, bundles, home) -> None:
    v = push_all(reg, bundles, "v1", "v2")
    reg.set_alias("toy", "production", v["v1"])
    with Server(home, "--endpoint", "toy=toy@production") as server, Load(server.url) as load:
        load.wait_for(50)
        moved = time.monotonic()
        reg.set_alias("toy", "production", v["v2"])  # another process, through the registry's Python API
        while True:
            rows = server.workers()
            if len(rows) == 2 and all(w["version"] == 2 and w["state"] == "serving" for w in rows):
                break
            assert time.monotonic() - moved < 2.0, rows
            time.sleep(0.02)
        took = time.monotonic() - moved
        print(f"\nalias move: every worker on the new version after {took:.2f}s")
        load.wait_for(50)
    assert not load.failures(), load.failures()[:3]
    late = [r.version for r in load.results if r.started > moved + took]
    assert late and set(late) == {2}


def _settled_workers(server: Server, timeout: float) -> list[dict[str, Any]]:
    """Worker rows once both took the newest generation and none is still loading (or the timeout passed).

    The swap returns at the first refusal: the other worker may not have polled the new desired state yet
    (it still reports the old generation, ``serving``) or may still be loading the broken version."""
    deadline = time.monotonic() + timeout
    rows = server.workers()
    while time.monotonic() < deadline and not _settled(rows):
        time.sleep(0.1)
        rows = server.workers()
    return rows


def _settled(rows: list[dict[str, Any]]) -> bool:
    newest = max((w["generation"] or 0 for w in rows), default=0)
    return len(rows) == 2 and all(w["generation"] == newest and w["state"] != "loading" for w in rows)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("load", r"loading toy@3 failed: .*RuntimeError: weights file is corrupt"),
        ("warmup", r"warm-up of toy@3 failed: .*FloatingPointError: model diverged"),
        ("breaking", r"toy@3 would break clients of endpoint 'toy': .*'z'"),
    ],
)
def test_broken_model_is_refused_under_load(reg, bundles, home, bad, message) -> None:
    push_all(reg, bundles, "v1", "v2", bad)
    with Server(home, "--endpoint", "toy=toy@1") as server, Load(server.url) as load:
        load.wait_for(30)
        with pytest.raises(SwapFailed, match="refused: " + message):
            server.admin.swap("toy", "toy@3", wait=True, timeout=20)
        load.wait_for(30)
        # The swap returns at the first refusal; the other worker may still be loading: it must refuse too.
        rows = _settled_workers(server, timeout=20)
        assert len(rows) == 2 and all(w["state"] == "failed" and w["version"] == 1 for w in rows), rows
        assert all(re.match(message, w["error"]) for w in rows)
        result = server.admin.swap("toy", "toy@2", wait=True, timeout=20)  # a good one still goes through
        assert result["outcome"] == "switched"
        load.wait_for(30)
    assert not load.failures(), load.failures()[:3]
    assert {r.version for r in load.results} == {1, 2}
    audit = reg.audit(action="endpoint.swap_failed")
    assert len(audit) == 2 and all(re.match(message, e.after["error"]) for e in audit)  # one per worker


def test_killed_worker_is_restarted_and_serves(reg, bundles, home) -> None:
    push_all(reg, bundles, "v1", "v2")
    with Server(home, "--endpoint", "toy=toy@1") as server, Load(server.url) as load:
        load.wait_for(50)
        # swapped since serve started: the restarted worker serves toy@2 (serve's --endpoint is history)
        server.admin.swap("toy", "toy@2", wait=True, timeout=20)
        before = server.worker_pids()
        assert len(before) == 2
        killed_at = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        while True:
            pids = server.worker_pids()
            try:
                rows = [w for w in server.workers(alive_within_s=1.5) if w["pid"] in pids]
            except Unavailable:  # the test's own admin connection may have been on the killed worker
                rows = []
            if len(pids) == 2 and before[0] not in pids and len(rows) == 2:
                break
            assert time.monotonic() - killed_at < 20, "the killed worker did not come back"
            time.sleep(0.05)
        restarted = time.monotonic()
        assert all(w["version"] == 2 and w["state"] == "serving" for w in rows)
        load.wait_for(200)
    failed = load.failures()
    print(
        f"\nSIGKILL of one of 2 workers: {len(failed)} of {len(load.results)} requests failed "
        f"(worker back in {restarted - killed_at:.1f}s)"
    )
    assert all(("Error" in f.error and not f.error.startswith("HTTP")) for f in failed), failed[:3]
    assert all(f.ended >= killed_at and f.started <= restarted for f in failed)
    assert len(failed) <= load.clients, "only requests in flight on the killed worker may fail"
    assert restarted - killed_at < 10, "the restarted worker waited for serve's stale --endpoint"
    assert not [r for r in load.results if r.started > restarted and r.error]


def test_fifty_swaps_of_a_50mb_model_give_memory_back(reg, tmp_path, home) -> None:
    heavy = {tag: save_toy(tmp_path / f"heavy{tag}", tag, size_mb=50) for tag in (1, 2)}
    for tag in (1, 2):
        reg.push(heavy[tag], name="toy")
    with Server(home, "--endpoint", "toy=toy@1", workers=1) as server:
        (pid,) = server.worker_pids()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            rss, took, load_ms = [], [], []
            for i in range(50):
                t0 = time.monotonic()
                result = server.admin.swap("toy", f"toy@{2 - i % 2}", wait=True, timeout=20)
                took.append(time.monotonic() - t0)
                assert result["outcome"] == "switched"
                load_ms.append(result["workers"][0]["load_ms"])
                assert (
                    client.post("/v1/endpoints/toy/predict", json={"instances": [{"x": [0] * 4}]}).json()[
                        "version"
                    ]
                    == 2 - i % 2
                )
                # the old version is unloaded in the background once drained: the baseline waits for it
                rss.append(settled_rss_mb(pid) if i == 0 else rss_mb(pid))
            deadline = time.monotonic() + 15
            while (last := rss_mb(pid)) >= rss[0] * 1.2 and time.monotonic() < deadline:
                time.sleep(0.1)  # the last swap's old version is still being unloaded
            rss.append(last)
    print(
        f"\nworker RSS after swap 1: {rss[0]:.0f} MB, after swap 50: {rss[-1]:.0f} MB, "
        f"max {max(rss):.0f} MB; swap median {sorted(took)[25]:.2f}s, "
        f"load median {sorted(load_ms)[25]:.0f} ms"
    )
    assert rss[-1] < rss[0] * 1.2


def rss_mb(pid: int) -> float:
    from modelrunner.runner.memory import rss_bytes

    return rss_bytes(pid) / 2**20


def settled_rss_mb(pid: int, timeout: float = 10.0) -> float:
    """The RSS once it stops moving (three readings 0.3 s apart within 1 MB), or at the deadline."""
    deadline = time.monotonic() + timeout
    readings = [rss_mb(pid)]
    while time.monotonic() < deadline:
        time.sleep(0.3)
        readings.append(rss_mb(pid))
        if len(readings) >= 3 and max(readings[-3:]) - min(readings[-3:]) < 1.0:
            break
    return readings[-1]
