"""``PATCH /admin/endpoints/{name}/config``: batching changed live, without a reload, over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx

from modelrunner.runner.batching import BatchConfig
from modelrunner.runner.client import AdminClient
from support.server_helpers import ADMIN_TOKEN, Stack

DIGIT = {"input": [0.0] * 64}


def _batching(stack: Stack) -> BatchConfig:
    batching: BatchConfig = stack.runtime.get("digits").batching
    return batching


def _until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the worker never applied the change"
        time.sleep(0.02)


def test_patch_config_turns_batching_on_without_reloading(stack: Stack) -> None:
    serving = stack.runtime.get("digits").current
    r = stack.admin.patch("/admin/endpoints/digits/config", json={"max_batch_size": 16, "max_latency_ms": 4})
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {"max_batch_size": 16, "max_latency_ms": 4.0}
    _until(lambda: _batching(stack) == BatchConfig(16, 4.0, "on"))
    assert stack.runtime.get("digits").current is serving, "no reload for a config change"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/v1/endpoints/digits/predict", json={"instances": [DIGIT]}) for _ in range(20))
            )

    answers = asyncio.run(burst())
    assert all(a.status_code == 200 and len(a.json()["predictions"]) == 1 for a in answers)
    metrics = stack.anon.get("/metrics").text
    assert 'modelrunner_batch_size_count{endpoint="digits"}' in metrics

    with AdminClient(stack.url, token=ADMIN_TOKEN) as admin:
        state = admin.configure("digits", max_batch_size=1)
    assert state["config"]["max_batch_size"] == 1 and state["config"]["max_latency_ms"] == 4.0
    _until(lambda: not _batching(stack).enabled)
    # a swap that does not mention config keeps it
    r = stack.admin.put("/admin/endpoints/digits", json={"target": "digits@production"})
    assert r.status_code == 200 and r.json()["endpoint"]["config"]["max_latency_ms"] == 4.0


def test_bad_config_is_a_400_naming_the_option(stack: Stack) -> None:
    before = stack.registry.endpoint("digits").generation
    r = stack.admin.patch("/admin/endpoints/digits/config", json={"max_batch_size": -1})
    assert r.status_code == 422 and "max_batch_size" in r.text
    r = stack.admin.patch("/admin/endpoints/digits/config", json={"batch": 4})
    assert r.status_code == 422 and "batch" in r.text
    r = stack.admin.put(
        "/admin/endpoints/digits", json={"target": "digits@production", "config": {"max_latency_ms": "soon"}}
    )
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("max_latency_ms must be")
    r = stack.admin.patch("/admin/endpoints/nope/config", json={"max_batch_size": 4})
    assert r.status_code == 404
    assert stack.anon.patch("/admin/endpoints/digits/config", json={"max_batch_size": 4}).status_code == 401
    assert stack.registry.endpoint("digits").generation == before


def test_batching_is_on_by_default_for_sklearn_and_batch_false_turns_it_off(stack: Stack) -> None:
    ep = stack.runtime.get("digits")
    assert ep.current is not None and ep.current.batch_safe, "a scikit-learn model is batch-safe"
    r = stack.admin.patch("/admin/endpoints/digits/config", json={"batch": False})
    assert r.status_code == 200 and r.json()["config"].get("batch") is False, r.text
    _until(lambda: _batching(stack).mode == "off")
    r = stack.admin.patch("/admin/endpoints/digits/config", json={"batch": None, "max_batch_size": None})
    assert r.status_code == 200 and "batch" not in r.json()["config"], "null: back to the default"
    _until(lambda: _batching(stack).mode == "auto")
    assert ep.batches(ep.current)
