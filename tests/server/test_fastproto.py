"""The protocol's own answer to plain predict requests (server/fastproto.py), on a real uvicorn server on
127.0.0.1: the ASGI app behind it records every request it is given, so each test sees which path answered.
Plain predicts never reach the app and get what the app's path answers; anything else reaches the app; a
pipelined request waits for the answer before it; a shutdown waits for an answer under way."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from modelrunner.runner.endpoint import Endpoint
from modelrunner.server.dataplane import OFFLOAD_BYTES, DataPlane
from modelrunner.server.fastproto import fast_protocol
from modelrunner.server.native import plain
from support.decode_helpers import StrictPredictor
from support.runner_fakes import TagPredictor, deployment
from support.server_helpers import StaticRuntime, toy_deployment

ROW = {"instances": [{"x": [1.0, 2.0, 3.0, 4.0]}]}
KEEP_ALIVE_S = 1


class Served:
    """uvicorn with the fast protocol over ``plane`` in a thread; ``seen``: the paths the ASGI app got."""

    def __init__(self, plane: DataPlane) -> None:
        self.seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            self.seen.append(scope["path"])
            if await plain.intercept(plane, scope, receive, send):
                return
            if scope["path"] == "/slow":  # longer than the keep-alive timeout
                await asyncio.sleep(KEEP_ALIVE_S * 2)
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not here"})

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            app,
            http=fast_protocol(plane, 64 * 1024, 30.0),
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=20,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(config)
        serve = self.server.serve
        self.thread = threading.Thread(target=lambda: asyncio.run(serve([self.sock])), daemon=True)
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


@pytest.fixture
def served() -> Iterator[Served]:
    endpoint = Endpoint("strict")
    endpoint.current = toy_deployment("strict", StrictPredictor())
    running = Served(DataPlane(StaticRuntime({"strict": endpoint})))
    yield running
    running.stop()


def _same_answer(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    skip = {"date", "x-request-id", "connection", "transfer-encoding", "content-length"}
    assert {k: v for k, v in fast.headers.items() if k not in skip} == {
        k: v for k, v in slow.headers.items() if k not in skip
    }
    fast_body, slow_body = fast.json(), slow.json()
    fast_body.pop("request_id", None), slow_body.pop("request_id", None)
    assert fast_body == slow_body


def test_plain_predicts_are_answered_by_the_protocol_as_the_app_answers_them(served: Served) -> None:
    path = "/v1/endpoints/strict/predict"
    with httpx.Client(base_url=served.url) as client:
        fast = [client.post(path, json=ROW) for _ in range(3)]
        bad = client.post(path, json={"instances": [{"x": [1.0]}]})  # a 422, answered here too
        assert served.seen == []
        assert [r.status_code for r in fast] == [200, 200, 200] and bad.status_code == 422, bad.text
        assert fast[0].json()["predictions"][0]["label"] == 1 and fast[0].headers["x-request-id"]

        def chunks() -> Iterator[bytes]:
            yield orjson.dumps(ROW)

        headers = {"content-type": "application/json"}
        slow = client.post(path, content=chunks(), headers=headers)  # chunked: the app's path
        slow_bad = client.post(path, content=iter([b'{"instances": [{"x": [1.0]}]}']), headers=headers)
        assert served.seen == [path, path]
        _same_answer(fast[0], slow)
        _same_answer(bad, slow_bad)
        big = {"instances": [{"x": [1.0123456789, 2.0123456789, 3.0123456789, 4.0123456789]}] * 6000}
        assert len(orjson.dumps(big)) > OFFLOAD_BYTES  # read, parsed and decoded on uvicorn's path
        assert client.post(path, json=big).json()["predictions"][5999]["label"] == 1
        expect = client.post(path, json=ROW, headers={"expect": "100-continue"})  # the app's path
        assert expect.status_code == 200, expect.text
        assert served.seen == [path, path, path, path]
        client.post(path, json=ROW, headers={"connection": "close"})  # not keep-alive: the app's path
        client.post(path + "?trace=1", json=ROW)  # a query string: the app's
        client.post("/v1/endpoints/nobody/predict", json=ROW)  # not served here: the app's (its 404)
        assert served.seen == [path] * 6 + ["/v1/endpoints/nobody/predict"]


def test_which_targets_and_headers_take_the_protocol_path(served: Served) -> None:
    path = "/v1/endpoints/strict/predict"
    body = orjson.dumps(ROW)
    with httpx.Client(base_url=served.url) as client:
        charset = client.post(path, content=body, headers={"content-type": "application/json; charset=utf-8"})
        assert charset.status_code == 200 and served.seen == [], charset.text  # still plain JSON: here
        escaped = client.post("/v1/endpoints/%73trict/predict", json=ROW)  # a percent-escape: the app's
        protobuf = client.post(path, json=ROW, headers={"accept": "application/x-protobuf"})  # the app: a 404
        text = client.post(path, content=body, headers={"content-type": "text/plain"})  # not JSON: the app's
        assert [escaped.status_code, protobuf.status_code, text.status_code] == [200, 404, 404]
        assert served.seen == ["/v1/endpoints/strict/predict", path, path]
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as conn:  # an absolute-form target: answered here
        conn.sendall(
            b"POST http://127.0.0.1%s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            answer += conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"label":1' in answer
    assert len(served.seen) == 3


def test_a_pipelined_request_is_answered_after_the_one_before(served: Served) -> None:
    with httpx.Client(base_url=served.url) as client:  # past the first calls (timed in threads): on the loop
        assert all(client.post("/v1/endpoints/strict/predict", json=ROW).is_success for _ in range(10))
    body = orjson.dumps(ROW)
    head = b"POST /v1/endpoints/strict/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    one = head + b"content-length: %d\r\nx-request-id: one\r\n\r\n" % len(body) + body
    two = head + b"content-length: %d\r\nx-request-id: two\r\n\r\n" % len(body) + body
    bye = b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"  # outlasts the keep-alive timeout
    with socket.create_connection(served.url.removeprefix("http://").split(":"), timeout=10) as sock:
        sock.sendall(one + two + bye)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    answers = raw.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"200 OK", b"200 OK", b"404 Not Found"], raw
    assert b"x-request-id: one" in answers[0] and b"x-request-id: two" in answers[1]


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout_a_busy_one_is_not(served: Served) -> None:
    """The keep-alive timeout is the protocol's sweep (no timer per response): a connection idle past
    ``timeout_keep_alive`` is closed within a tenth of it; requests closer together keep it open."""
    body = orjson.dumps(ROW)
    request = (
        b"POST /v1/endpoints/strict/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )
    with socket.create_connection(served.url.removeprefix("http://").split(":"), timeout=10) as sock:
        for _ in range(4):  # each within the timeout of the answer before
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
            time.sleep(KEEP_ALIVE_S * 0.6)
        answered = time.monotonic()
        assert sock.recv(65536) == b"", "the idle connection was not closed"
        idle = time.monotonic() - answered
    assert KEEP_ALIVE_S * 0.4 - 0.05 <= idle <= KEEP_ALIVE_S * 1.5, idle  # 0.6 s of it slept already


def test_a_shutdown_waits_for_an_answer_under_way_and_closes_after_it() -> None:
    gate = threading.Event()
    predictor = TagPredictor(7, gate=gate)
    endpoint = Endpoint("ep")
    endpoint.swap(deployment(predictor))
    running = Served(DataPlane(StaticRuntime({"ep": endpoint})))
    replies: list[httpx.Response] = []
    url, row = f"{running.url}/v1/endpoints/ep/predict", {"instances": [{"x": [1, 2]}]}
    client = threading.Thread(target=lambda: replies.append(httpx.post(url, json=row, timeout=20)))
    client.start()
    assert predictor.entered.wait(10)  # the request is being answered (in a thread: a new deployment's probe)
    running.server.should_exit = True
    time.sleep(0.3)  # uvicorn is shutting down and waits for the answer
    gate.set()
    client.join(20)
    running.thread.join(20)
    running.sock.close()
    assert replies and replies[0].status_code == 200, replies
    assert replies[0].json()["predictions"] == [{"y": 7}]
    assert replies[0].headers.get("connection") == "close"
    assert not running.thread.is_alive()
