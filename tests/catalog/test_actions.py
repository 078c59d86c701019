"""Catalog actions against a real serving runtime: sign-in, CSRF, swap, refusal, rollback, live figures."""

from __future__ import annotations

import contextlib
import html
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelrunner.registry import Registry
from modelrunner.settings import Settings
from support.catalog_helpers import csrf_of, get_ok
from support.runner_server import BODY, save_toy
from support.server_helpers import ServerThread

TOKEN = "ui-test-token"


class Served:
    def __init__(self, url: str, registry: Registry, settings: Settings) -> None:
        self.url, self.registry, self.settings = url, registry, settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """toy@1 (served), toy@2 (compatible), toy@3 (a new required input: breaking), one in-thread worker."""
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    home = tmp_path_factory.mktemp("served")
    settings = Settings(
        home=home, admin_token=TOKEN, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=2.0
    )
    registry = Registry(settings)
    for tag, inputs in ((1, ("x",)), (2, ("x",)), (3, ("x", "z"))):
        registry.push(save_toy(home / f"toy{tag}", tag, inputs=inputs))
    registry.set_endpoint("toy", "toy@1")
    runtime = Runtime(registry, settings)
    with ServerThread(create_app(runtime, settings)) as server:
        wait_until(lambda: httpx.get(server.url + "/readyz").status_code == 200)
        yield Served(server.url, registry, settings)
    registry.close()


def wait_until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextlib.contextmanager
def signed_in(url: str, name: str = "alice", token: str = TOKEN) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as client:
        page = get_ok(client, "/ui/signin").text
        reply = client.post("/ui/signin", data={"csrf": csrf_of(page), "name": name, "token": token})
        assert reply.status_code == 303, reply.text[:300]
        yield client


def post_form(client: httpx.Client, page: str, path: str, **fields: str) -> httpx.Response:
    """POST ``fields`` to ``path`` with the CSRF token of ``page`` (as the browser would)."""
    csrf = csrf_of(get_ok(client, page).text)
    return client.post(path, data={"csrf": csrf, **fields})


def test_a_form_post_without_the_csrf_token_is_refused(served: Served) -> None:
    before = served.registry.audit(limit=1)[0].id
    with signed_in(served.url) as client:
        get_ok(client, "/ui/endpoints")
        for data in (
            {"target": "toy@2", "confirm": "yes"},
            {"target": "toy@2", "confirm": "yes", "csrf": "forged-" + "x" * 40},
        ):
            reply = client.post("/ui/endpoints/toy/swap", data=data)
            assert reply.status_code == 403 and "CSRF token" in reply.text
        cross = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2", confirm="yes")
        assert cross.status_code != 403  # the same form with its token passes the check...
    with signed_in(served.url) as client:  # ...and from another site it does not
        csrf = csrf_of(get_ok(client, "/ui/endpoints").text)
        form = {"csrf": csrf, "target": "toy@1", "confirm": "yes"}
        reply = client.post("/ui/endpoints/toy/swap", data=form, headers={"origin": "https://evil.example"})
        assert reply.status_code == 403 and "cross-site" in reply.text
    assert [
        e.actor for e in served.registry.audit(limit=50) if e.id > before and e.action == "endpoint.set"
    ] == ["ui:alice"]  # only the form with its token acted
    with signed_in(served.url) as client:
        post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@1", confirm="yes")


def test_signing_in_needs_the_admin_token_and_actions_need_signing_in(served: Served) -> None:
    with httpx.Client(base_url=served.url) as anon:
        refused = post_form(anon, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2", confirm="yes")
        assert refused.status_code == 403 and "sign in" in refused.text
        wrong = post_form(anon, "/ui/signin", "/ui/signin", name="mallory", token="guess")
        assert wrong.status_code == 401 and "unknown or revoked token" in wrong.text
        assert "mr_session" not in anon.cookies
    assert served.registry.endpoint("toy").target == "toy@1"


def test_a_swap_from_the_form_is_confirmed_applied_and_audited(served: Served) -> None:
    with signed_in(served.url, "alice") as client:
        confirm = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2")
        assert confirm.status_code == 200 and "Swap endpoint toy to toy@2?" in confirm.text
        assert "toy@1 -&gt; toy@2: compatible" in confirm.text
        assert served.registry.endpoint("toy").target == "toy@1"  # nothing happens before confirming
        done = client.post(
            "/ui/endpoints/toy/swap",
            data={"csrf": csrf_of(confirm.text), "target": "toy@2", "confirm": "yes"},
        )
        assert done.status_code == 200 and "switched" in done.text, done.text[-800:]
        status = get_ok(client, "/ui/endpoints/status").text
        assert re.search(r'class="serves">toy@2<', status)
        audit = get_ok(client, "/ui/audit?endpoint=toy&actor=ui:alice").text
        assert "endpoint.set" in audit and "target: toy@1 -&gt; toy@2" in audit
        post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@1", confirm="yes")


def test_a_breaking_swap_is_refused_with_the_reason_and_rolled_back(served: Served) -> None:
    with signed_in(served.url, "bob") as client:
        confirm = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@3")
        assert "breaks clients: input &#39;z&#39; is new and required" in confirm.text
        refused = client.post(
            "/ui/endpoints/toy/swap",
            data={"csrf": csrf_of(confirm.text), "target": "toy@3", "confirm": "yes"},
        )
        assert refused.status_code == 409 and "refused" in refused.text
        assert "would break clients of endpoint" in refused.text
        assert re.search(r'class="serves">toy@1<', get_ok(client, "/ui/endpoints/status").text)
        back = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/rollback")
        assert "Roll endpoint toy back from toy@3 to toy@1?" in back.text
        done = client.post("/ui/endpoints/toy/rollback", data={"csrf": csrf_of(back.text), "confirm": "yes"})
        assert done.status_code == 200 and "switched" in done.text
    assert served.registry.endpoint("toy").target == "toy@1"
    actors = {(e.action, e.actor) for e in served.registry.audit(subject="endpoint:toy", limit=10)}
    assert ("endpoint.set", "ui:bob") in actors


def test_a_gate_refuses_an_alias_move_with_the_reason(served: Served) -> None:
    served.registry.set_gates("toy", ["accuracy >= 0.9"])
    try:
        with signed_in(served.url, "carol") as client:
            confirm = post_form(
                client, "/ui/models/toy", "/ui/models/toy/alias", alias="production", version="2"
            )
            assert "Point toy@production at version 2?" in confirm.text
            refused = client.post(
                "/ui/models/toy/alias",
                data={"csrf": csrf_of(confirm.text), "alias": "production", "version": "2", "confirm": "yes"},
            )
            assert refused.status_code == 409 and "accuracy &gt;= 0.9: never evaluated" in refused.text
            moved = post_form(
                client, "/ui/models/toy", "/ui/models/toy/alias", alias="staging", version="2", confirm="yes"
            )
            assert moved.status_code == 200 and "toy@staging -&gt; version 2" in moved.text
    finally:
        served.registry.set_gates("toy", [])
    assert served.registry.resolve("toy@staging").version == 2
    assert served.registry.audit(subject="toy@staging", limit=1)[0].actor == "ui:carol"


def test_live_figures_refresh_from_the_server_metrics(served: Served) -> None:
    page = httpx.get(served.url + "/ui/endpoints").text
    assert 'hx-get="/ui/endpoints/status" hx-trigger="every 2s"' in page
    assert '<script src="/ui/static/htmx.min.js"' in page

    def figures() -> list[str]:
        for _ in range(5):
            httpx.post(served.url + "/v1/endpoints/toy/predict", json=BODY).raise_for_status()
        status = httpx.get(served.url + "/ui/endpoints/status").text
        return re.findall(r'class="num">([^<]*)</td>', status)

    wait_until(lambda: all(v != "-" for v in figures()), timeout=20)  # rates need a second reading
    req_s, errors, p99 = figures()
    assert float(req_s) > 0 and errors == "0.00 %" and p99.endswith(" ms")


def test_batching_options_change_in_place_and_bad_ones_are_named(served: Served) -> None:
    with signed_in(served.url, "dave") as client:
        bad = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/config", max_batch_size="lots")
        assert bad.status_code == 400
        assert "max_batch_size must be a whole number, got &#39;lots&#39;" in bad.text
        confirm = post_form(
            client, "/ui/endpoints", "/ui/endpoints/toy/config", max_batch_size="8", max_latency_ms="2"
        )
        assert "Set max_batch_size = 8, max_latency_ms = 2.0 on endpoint toy?" in confirm.text
        done = client.post(
            "/ui/endpoints/toy/config",
            data={
                "csrf": csrf_of(confirm.text),
                "max_batch_size": "8",
                "max_latency_ms": "2",
                "confirm": "yes",
            },
        )
        assert done.status_code == 200, done.text[-500:]
        out_of_range = post_form(
            client, "/ui/endpoints", "/ui/endpoints/toy/config", max_batch_size="-1", confirm="yes"
        )
        assert out_of_range.status_code == 400 and "max_batch_size" in out_of_range.text
    state = served.registry.endpoint("toy")
    assert state.config == {"max_batch_size": 8, "max_latency_ms": 2.0} and state.target == "toy@1"
    assert served.registry.audit(subject="endpoint:toy", limit=1)[0].actor == "ui:dave"
    served.registry.set_endpoint("toy", "toy@1", config={})


def test_modelrunner_ui_swaps_the_runners_sharing_the_registry(served: Served) -> None:
    from support.catalog_helpers import served_catalog

    # what `modelrunner ui` serves, over the registry the running server shares
    with served_catalog(served.registry, served.settings) as alone, signed_in(alone.url, "erin") as client:
        unknown = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="nope@1")
        assert unknown.status_code == 404 and "unknown model &#39;nope&#39;" in unknown.text
        done = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2", confirm="yes")
        assert done.status_code == 200 and "switched" in done.text, done.text[-600:]
        model = get_ok(client, "/ui/models/toy").text
        assert "curl -s http://127.0.0.1:8080/v1/endpoints/toy/predict" in model  # --serving-url
        endpoints = get_ok(client, "/ui/endpoints").text
        assert "Live figures are shown by the catalog of a serving runner" in endpoints
    assert httpx.post(served.url + "/v1/endpoints/toy/predict", json=BODY).json()["version"] == 2
    assert served.registry.audit(subject="endpoint:toy", limit=1)[0].actor == "ui:erin"
    served.registry.set_endpoint("toy", "toy@1")
    wait_until(lambda: httpx.post(served.url + "/v1/endpoints/toy/predict", json=BODY).json()["version"] == 1)


def test_the_model_pages_examples_work_against_the_server(served: Served) -> None:
    page = httpx.get(served.url + "/ui/models/toy").text  # shows toy@3 (x, z); the endpoint serves toy@1
    assert "Endpoint <code>toy</code> serves <code>toy@1</code> (version 1)" in page
    python = html.unescape(re.search(r'<pre class="code" id="python">(.*?)</pre>', page, re.S).group(1))
    printed = subprocess.run([sys.executable, "-c", python], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert "'version': 1" in printed.stdout and "'predictions'" in printed.stdout
    curl = html.unescape(re.search(r'<pre class="code" id="curl">(.*?)</pre>', page, re.S).group(1))
    url = curl.split()[2]
    body = json.loads(curl.split("-d '")[1].rstrip("'"))
    assert url == served.url + "/v1/endpoints/toy/predict"
    assert httpx.post(url, json=body).json()["version"] == 1


def test_the_server_root_leads_to_the_catalog(served: Served) -> None:
    root = httpx.get(served.url + "/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    assert httpx.get(served.url + "/ui", follow_redirects=True).url.path == "/ui/"
    assert "/ui/" not in httpx.get(served.url + "/openapi.json").json()["paths"]  # not part of the API


def test_role_tokens_sign_in_viewer_reads_deployer_acts(served: Served) -> None:
    from modelrunner.registry import tokens

    viewer = tokens.create(served.registry, "wall-screen", "viewer")[1]
    deployer = tokens.create(served.registry, "ops-team", "deployer")[1]
    try:
        with signed_in(served.url, "dave", viewer) as client:
            assert get_ok(client, "/ui/endpoints").status_code == 200
            refused = post_form(
                client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2", confirm="yes"
            )
            assert refused.status_code == 403 and "deployer" in refused.text
        assert served.registry.endpoint("toy").target == "toy@1"
        with signed_in(served.url, "dave", deployer) as client:
            done = post_form(client, "/ui/endpoints", "/ui/endpoints/toy/swap", target="toy@2", confirm="yes")
            assert done.status_code == 200 and "switched" in done.text, done.text[-600:]
        assert served.registry.audit(subject="endpoint:toy", limit=1)[0].actor == "ui:dave (token:ops-team)"
    finally:
        tokens.revoke(served.registry, "wall-screen")
        tokens.revoke(served.registry, "ops-team")
        served.registry.set_endpoint("toy", "toy@1")
        predict = served.url + "/v1/endpoints/toy/predict"
        wait_until(lambda: httpx.post(predict, json=BODY).json()["version"] == 1)
