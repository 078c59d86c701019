"""Several runner hosts for real: three network namespaces running ``modelrunner serve`` against one
PostgreSQL and one S3 endpoint (moto) on a test network, under load spread over the three.

The tests share one fleet (built once, see conftest) and run in order; each starts from whatever version the
previous left serving (``serving_now``).
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from fleet_helpers import Fleet, FleetLoad, wait_until

pytestmark = pytest.mark.slow

SWAP_BUDGET_S = 1.0
"""An alias move reaches every host within this (the issue's figure); measured figures are printed."""


def move(fleet: Fleet, tag: int) -> float:
    """Point toy@production at the version tagged ``tag``; the monotonic time the change committed."""
    fleet.registry.set_alias("toy", "production", fleet.versions[tag], force=True)
    return time.monotonic()


def reached(load: FleetLoad, fleet: Fleet, tag: int, since: float, timeout: float = 20.0) -> dict[str, float]:
    """Seconds from ``since`` until each host first answered with ``tag``."""
    hosts = [r.host.name for r in fleet.runners]
    firsts = wait_until(lambda: (lambda f: f if all(v is not None for v in f.values()) else None)(
        {h: load.first_answer(h, tag, since) for h in hosts}), timeout, f"every host serving {tag}")
    return {h: t - since for h, t in firsts.items()}


def assert_switched_once(load: FleetLoad, host: str, old: int, new: int, since: float) -> None:
    """After ``host`` first answered ``new``, it never answered ``old`` again (no flapping)."""
    answers = sorted(load.since(host, since), key=lambda a: a.started)
    first_new = next(a.ended for a in answers if a.version == new)
    assert not [a for a in answers if a.started > first_new and a.version == old], f"{host} flapped"


def test_alias_move_reaches_every_host_under_load(fleet: Fleet) -> None:
    with FleetLoad(fleet.runners) as load:
        load.wait_for(60)
        took: list[float] = []
        for old, new in ((1, 2), (2, 1), (1, 2)):
            t0 = move(fleet, new)
            per_host = reached(load, fleet, new, t0)
            for host in per_host:
                assert_switched_once(load, host, old, new, t0)
            took.append(max(per_host.values()))
            print(f"\nalias move {old}->{new}: " + ", ".join(f"{h} {s * 1000:.0f} ms" for h, s in per_host.items()))
            load.wait_for(30)
    assert not load.failures(), load.failures()[:3]
    assert {a.host for a in load.answers} == {"h1", "h2", "h3"}
    print(f"alias moves: slowest host {max(took) * 1000:.0f} ms (median move {sorted(took)[1] * 1000:.0f} ms), "
          f"{len(load.answers)} requests, 0 failed")
    assert sorted(took)[1] <= SWAP_BUDGET_S, f"alias moves took {took}"
