"""The fleet: three runner hosts (network namespaces), one PostgreSQL, one S3 endpoint, built once per module.

Where network namespaces cannot be created (not root, no iproute2) the tests skip, saying why; with
``CI=true`` they fail instead, so a CI machine that lost the capability does not silently pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.fleet_helpers import BUCKET, Fleet, Postgres, Runner, S3Server, fleet_env
from support.netlab import NetLab, NetlabUnavailable
from support.runner_server import save_toy


def _lab() -> NetLab:
    try:
        return NetLab(3).up()
    except NetlabUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true but network namespaces cannot be created: {exc}")
        pytest.skip(f"the multi-host test needs network namespaces (root, iproute2): {exc}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet")
    lab = _lab()
    with contextlib.ExitStack() as stack:
        stack.callback(lab.down)
        s3 = S3Server(lab, home)
        stack.callback(s3.stop)
        s3.launch()  # moto imports while PostgreSQL starts
        pg = Postgres(lab)
        stack.callback(pg.stop)
        pg.start()
        s3.start()
        env = fleet_env(lab, pg, s3, home)
        settings = Settings(
            home=home / "operator",
            database_url=pg.url,
            store_url=f"s3://{BUCKET}/",
            store_options={"endpoint_url": s3.url, "key": "fleet", "secret": "fleet"},
        )
        registry = Registry(settings)
        stack.callback(registry.close)
        bundles = home / "bundles"
        versions = {
            tag: registry.push(save_toy(bundles / f"v{tag}", tag), name="toy").version for tag in (1, 2, 3)
        }
        registry.set_alias("toy", "production", versions[1])
        registry.set_endpoint("toy", "toy@production", create=True)
        runners = [Runner(host, env, home) for host in lab.hosts]
        for runner in runners:
            stack.callback(runner.kill)
            runner.start()
        for runner in runners:
            runner.wait_ready()
        yield Fleet(lab, pg, s3, env, home, registry, runners, versions)
