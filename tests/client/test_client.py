"""``mr.Client`` / ``mr.AsyncClient`` against live servers on 127.0.0.1: a registry-backed runtime serving
sklearn digits models (admin token set) and a toy runtime for tabular (DataFrame) input."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

import modelrunner as mr
from modelrunner.runner.endpoint import Endpoint
from modelrunner.settings import Settings
from support.server_helpers import (
    ADMIN_TOKEN,
    ServerThread,
    StaticRuntime,
    SumPredictor,
    push_sklearn_models,
    toy_deployment,
)

X = load_digits().data[:5]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from modelrunner.registry.registry import Registry
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    home = tmp_path_factory.mktemp("client")
    settings = Settings(
        home=home, admin_token=ADMIN_TOKEN, poll_interval_s=0.05, heartbeat_s=0.2, drain_timeout_s=5.0
    )
    registry = Registry(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: accuracy is not what these tests check
        push_sklearn_models(registry, home / "bundles", versions=2)
    registry.set_endpoint("digits", "digits@production")
    with ServerThread(create_app(Runtime(registry, settings), settings)) as server:
        yield server.url
    registry.close()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from modelrunner.server.app import create_app

    endpoint = Endpoint("toy")
    endpoint.current = toy_deployment("toy", SumPredictor())
    runtime = StaticRuntime({"toy": endpoint})
    with ServerThread(create_app(runtime, Settings(home=tmp_path_factory.mktemp("toy")))) as server:
        yield server.url


@pytest.fixture
def client(stack: str) -> Iterator[mr.Client]:
    with mr.Client(stack, token=ADMIN_TOKEN) as c:
        yield c


def _check_digits(out: dict[str, np.ndarray], n: int) -> None:
    assert set(out) == {"label", "proba"}
    assert out["label"].shape == (n,) and out["label"].dtype.kind == "i"
    assert out["proba"].shape == (n, 10) and out["proba"].dtype == np.float64
    np.testing.assert_allclose(out["proba"].sum(axis=1), 1.0, rtol=1e-6)


def test_predict_each_input_form(client: mr.Client) -> None:
    by_array = client.predict("digits", X)
    _check_digits(by_array, 5)
    assert by_array.model == "digits" and by_array.version == 1
    for form in (X.tolist(), [{"input": row} for row in X.tolist()], {"input": X}, {"input": X.tolist()}):
        out = client.predict("digits", form)
        _check_digits(out, 5)
        np.testing.assert_array_equal(out["label"], by_array["label"])
        np.testing.assert_allclose(out["proba"], by_array["proba"])


def test_dataframe_in_dataframe_out(toy: str) -> None:
    frame = pd.DataFrame(
        {"x": [np.array([1.0, 2, 3, 4]), np.array([-1.0, -1, -1, -1])], "scale": [2.0, 1.0]}, index=["a", "b"]
    )
    with mr.Client(toy) as c:
        out = c.predict("toy", frame)
        assert isinstance(out, pd.DataFrame)
        assert list(out.index) == ["a", "b"]
        assert out["label"].tolist() == [1, 0]
        assert out["total"].tolist() == [20.0, -4.0]
        assert out.attrs["version"] == 3
        cols = c.predict("toy", frame, as_frame=False)
        assert isinstance(cols, dict) and cols["proba"].shape == (2, 2)
        as_frame = c.predict("toy", {"x": [[1, 1, 1, 1]]}, as_frame=True)
        assert isinstance(as_frame, pd.DataFrame) and as_frame["total"].tolist() == [4.0]


def test_validation_error_names_the_field(client: mr.Client) -> None:
    with pytest.raises(mr.ValidationError) as info:
        client.predict("digits", {"input": X[:, :10]})
    assert info.value.field == "input"
    assert "input" in str(info.value)
    with pytest.raises(mr.ValidationError) as unknown:
        client.predict("digits", [{"input": X[0].tolist(), "colour": 1}])
    assert unknown.value.field == "colour"


def test_bad_input_type_is_refused_before_sending(client: mr.Client) -> None:
    with pytest.raises(mr.InvalidArgument, match="got str"):
        client.predict("digits", "not rows")


def test_unknown_endpoint_and_model_are_not_found(client: mr.Client) -> None:
    with pytest.raises(mr.NotFound, match="nope"):
        client.predict("nope", X)
    with pytest.raises(mr.NotFound):
        client.model("nope")
    with pytest.raises(mr.NotFound):
        client.swap("nope", "digits@1")


def test_admin_needs_the_token(stack: str) -> None:
    with mr.Client(stack) as anon, pytest.raises(mr.Unauthenticated):
        anon.models()
    with mr.Client(stack, token="wrong") as bad, pytest.raises(mr.Unauthenticated):
        bad.endpoints()


def test_models_endpoints_contract(client: mr.Client) -> None:
    models = client.models()
    assert [m["name"] for m in models] == ["digits"]
    detail = client.model("digits")
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert [e["name"] for e in client.endpoints()] == ["digits"]
    contract = client.contract("digits")
    assert [f["name"] for f in contract["contract"]["inputs"]] == ["input"]


def test_swap_and_rollback(client: mr.Client) -> None:
    result = client.swap("digits", "digits@2")
    assert result["outcome"] == "switched"
    assert client.predict("digits", X).version == 2
    back = client.rollback("digits")
    assert back["outcome"] == "switched"
    assert client.predict("digits", X).version == 1


def test_async_client(stack: str) -> None:
    async def main() -> tuple[Any, ...]:
        async with mr.AsyncClient(stack, token=ADMIN_TOKEN) as c:
            return await asyncio.gather(
                c.predict("digits", X), c.predict("digits", {"input": X[:2]}), c.models(), c.endpoints()
            )

    one, two, models, endpoints = asyncio.run(main())
    _check_digits(one, 5)
    _check_digits(two, 2)
    np.testing.assert_array_equal(two["label"], one["label"][:2])
    assert models[0]["name"] == "digits" and endpoints[0]["name"] == "digits"

    async def missing() -> None:
        async with mr.AsyncClient(stack) as c:
            await c.predict("nope", X)

    with pytest.raises(mr.NotFound):
        asyncio.run(missing())


class CountingTransport(httpx.HTTPTransport):
    """A real transport that counts the connection attempts made through it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return super().handle_request(request)


def _refusing_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_retries_a_refused_connection_for_get_only() -> None:
    url = _refusing_url()
    counting = CountingTransport()
    with mr.Client(url, transport=counting, retries=2, backoff=0.001) as c:
        with pytest.raises(mr.Unavailable, match="cannot reach"):
            c.models()
        assert counting.attempts == 3  # the first try and two resends
        counting.attempts = 0
        with pytest.raises(mr.Unavailable):
            c.predict("digits", X)
        assert counting.attempts == 1  # a predict is not resent unless asked
        counting.attempts = 0
        with pytest.raises(mr.Unavailable):
            c.predict("digits", X, retry=True)
        assert counting.attempts == 3


def test_retry_recovers_when_the_server_comes_up(stack: str) -> None:
    """GET resends reach the server once it answers: the first attempt goes to a dead port."""
    dead = _refusing_url()

    class Redirecting(CountingTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            self.attempts += 1
            if self.attempts > 1:  # "the server came back": later attempts reach the live one
                request.url = httpx.URL(stack).join(request.url.raw_path.decode())
            return httpx.HTTPTransport.handle_request(self, request)

    transport = Redirecting()
    with mr.Client(dead, token=ADMIN_TOKEN, transport=transport, backoff=0.001) as c:
        assert c.models()[0]["name"] == "digits"
    assert transport.attempts == 2


class PathRecorder(httpx.HTTPTransport):
    """A real transport that records the path of every request sent through it."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_large_numeric_batches_go_binary_with_the_same_answer(stack: str) -> None:
    big = np.ascontiguousarray(np.resize(load_digits().data, (150, 64)))
    recorder = PathRecorder()
    with mr.Client(stack, transport=recorder) as fast, mr.Client(stack, binary=False) as plain:
        out = fast.predict("digits", {"input": big})
        small = fast.predict("digits", {"input": big[:5]})
        ref = plain.predict("digits", {"input": big})
    assert recorder.paths == ["/v2/models/digits/infer", "/v1/endpoints/digits/predict"]
    _check_digits(out, 150)
    np.testing.assert_array_equal(out["label"], ref["label"])
    np.testing.assert_allclose(out["proba"], ref["proba"])
    np.testing.assert_array_equal(small["label"], ref["label"][:5])
    assert out.model == ref.model == "digits" and out.version == ref.version


def test_binary_route_errors_name_the_field(stack: str) -> None:
    with mr.Client(stack) as c, pytest.raises(mr.ValidationError) as info:
        c.predict("digits", {"input": np.zeros((120, 10))})
    assert info.value.field == "input"
