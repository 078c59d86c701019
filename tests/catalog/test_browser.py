"""The catalog in a real browser (Playwright driving Debian's Chromium) against ``modelrunner serve -w 2``.

Push with the CLI -> the model is listed -> its page shows the contract and the ``.proto`` download ->
a swap from the endpoints page reaches both workers -> the audit shows it with the actor -> a breaking swap
shows the refusal. Screenshots of each page are taken; with MODELRUNNER_UPDATE_SCREENSHOTS=1 they go to
docs/img/ui-*.png (docs/ui.md).

Chromium comes from the distribution (``scripts/install_chromium.sh``), never from Playwright's downloads.
Without it the test is skipped with the reason, except under CI=true where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.runner_server import BODY, Server

CHROMIUM = os.environ.get("MODELRUNNER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The screenshots docs/ui.md shows are rewritten only when asked (MODELRUNNER_UPDATE_SCREENSHOTS=1), so a
# test run leaves the work tree clean; otherwise they go to a temporary folder (taken all the same).
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
VIEWPORT = {"width": 1200, "height": 800}
PIPELINE = """\
name: toy-pair
description: Two toy models side by side on the same input.
input: {x: "float64[4]"}
steps:
  first:  {model: toy@1, inputs: {x: $input.x}}
  second: {model: toy@2, inputs: {x: $input.x}}
output: {first: first.y, second: second.y}
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(
            f"{reason} (CI=true: the browser test must run; scripts/install_chromium.sh installs chromium)",
            pytrace=False,
        )
    pytest.skip(f"{reason}: run scripts/install_chromium.sh (apt-get install chromium) for the browser test")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install 'modelrunner[dev]')")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def cli(home: Path, *args: str) -> str:
    """Run ``modelrunner ARGS`` as a user would; its stdout."""
    env = {**os.environ, "MODELRUNNER_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "modelrunner", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def toy(path: Path, tag: int, accuracy: float, inputs: tuple[str, ...] = ("x",)) -> Path:
    """A python-flavor bundle of ``toy_models.Tagged`` (as ``runner_server.save_toy``) with metrics."""
    import numpy as np

    from modelrunner.bundle import save_model
    from support.toy_models import Tagged

    save_model(
        Tagged(tag),
        path,
        name="toy",
        sample={n: np.zeros((2, 4)) for n in inputs},
        license="MIT",
        description="Answers its tag for every row: a stand-in for a real model.",
        metrics={"accuracy": accuracy, "f1": accuracy - 0.02},
    )
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """toy@1 (production), toy@2 (compatible), toy@3 (a new required input), the toy-pair pipeline."""
    from modelrunner.pipelines.package import push_pipeline
    from modelrunner.registry import Registry
    from modelrunner.settings import Settings

    home = tmp_path_factory.mktemp("browser")
    bundles = home / "bundles"
    cli(home, "push", str(toy(bundles / "v1", 1, 0.91)), "--alias", "production", "--tag", "stage=ga")
    with Registry(Settings(home=home)) as registry:  # the rest in-process: a CLI run costs ~2 s
        registry.push(toy(bundles / "v2", 2, 0.93), tags={"stage": "beta"})
        registry.push(toy(bundles / "v3", 3, 0.95, inputs=("x", "z")), tags={"stage": "beta"})
        (home / "pair.yaml").write_text(PIPELINE)
        push_pipeline(home / "pair.yaml", registry, alias="production")
    return home


def test_push_browse_swap_and_audit_in_a_browser(browser: Any, home: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = DOCS_SHOTS if os.environ.get("MODELRUNNER_UPDATE_SCREENSHOTS") == "1" else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with Server(home, "--endpoint", "toy=toy@production", workers=2) as server:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        url = server.url + "/ui"

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"ui-{name}.png"))

        page.goto(url + "/signin")  # on 127.0.0.1 signing in only names the actor of the audit log
        page.fill("input[name=name]", "alice")
        page.click("button[type=submit]")
        expect(page.locator("table.models")).to_contain_text("toy-pair")
        expect(page.locator('a[href="/ui/models/toy"]')).to_be_visible()
        shot("models")

        page.click('a[href="/ui/models/toy"]')
        contract = page.locator("table.contract")
        expect(contract).to_contain_text("float64")
        expect(contract.locator("tr", has_text="input")).to_have_count(2)  # toy@3 (latest): x and z
        with page.expect_download() as download:
            page.click("a.button:has-text('contract.proto')")
        proto = Path(download.value.path()).read_text()
        assert proto.rstrip("\n") == cli(home, "contract", "toy@3", "--format", "proto").rstrip("\n")
        assert "repeated double z = 2" in proto, proto
        page.locator("h3", has_text="Contract").scroll_into_view_if_needed()
        shot("model-contract")
        page.evaluate("window.scrollTo(0, 0)")
        shot("model")

        page.goto(url + "/endpoints")
        expect(page.locator("td.num").nth(2)).to_have_text("-")  # no request yet: no p99
        for _ in range(20):
            httpx.post(server.url + "/v1/endpoints/toy/predict", json=BODY).raise_for_status()
        expect(page.locator("td.num").nth(2)).to_contain_text(" ms")  # htmx refreshed it, no reload
        page.fill("input[name=target]", "toy@2")
        page.click("button:has-text('Swap')")
        expect(page.locator("h1")).to_have_text("Swap endpoint toy to toy@2?")
        expect(page.locator("ul.notes")).to_contain_text("toy@1 -> toy@2: compatible")
        shot("confirm")
        page.click("#confirm")
        expect(page.locator("#outcome")).to_contain_text("switched")
        page.goto(url + "/endpoints")
        expect(page.locator("td.serves")).to_have_text(["toy@2", "toy@2"])  # both workers
        shot("endpoints")

        page.fill("input[name=target]", "toy@3")
        page.click("button:has-text('Swap')")
        expect(page.locator("ul.notes")).to_contain_text("breaks clients")
        page.click("#confirm")
        expect(page.locator("#outcome")).to_contain_text("refused")
        expect(page.locator("#outcome")).to_contain_text("would break clients of endpoint 'toy'")
        shot("refused")

        page.goto(url + "/audit?actor=ui:alice")
        rows = page.locator("table.audit tbody tr")
        expect(rows.filter(has_text="endpoint.set")).to_have_count(2)
        expect(rows.first).to_contain_text("target: toy@2 -> toy@3")
        shot("audit")

        page.goto(url + "/compare?model=toy&v=1&v=2&v=3")
        expect(page.locator("#diff-2-3")).to_contain_text("breaks clients")
        shot("compare")
        page.goto(url + "/pipelines/toy-pair")
        expect(page.locator("svg.dag .node")).to_have_count(4)
        expect(page.locator("svg.dag")).to_contain_text("toy@1")
        shot("pipeline")
        context.close()
