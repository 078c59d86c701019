"""The workers' HTTP protocol (server/protocol.py) on a real ``modelrunner serve``: a request head over the
limit is a 431, a request that does not arrive in time a 408, an idle connection is closed, and 50
slowloris connections do not delay anyone else."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from modelrunner.registry.registry import Registry
from modelrunner.settings import Settings
from support.runner_server import BODY, Server, save_toy

READ_TIMEOUT_S = 1.5
MAX_HEADER = 16 * 1024
HEAD = b"POST /v1/endpoints/toy/predict HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("protocol")
    home = tmp / "home"
    with Registry(Settings(home=home)) as reg:
        reg.push(save_toy(tmp / "toy", 1), name="toy")
        reg.set_endpoint("toy", "toy@1")
    env = {
        "MODELRUNNER_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "MODELRUNNER_MAX_HEADER_BYTES": str(MAX_HEADER),
    }
    with Server(home, workers=1, env=env) as running:
        yield running


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> tuple[bytes, float]:
    """Everything until the server closes the connection, and when it closed (monotonic)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks), time.monotonic()


def status_and_error(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower(), head
    return int(head.split(b" ", 2)[1]), orjson.loads(body)["error"]


def test_a_request_head_over_the_limit_is_431_and_closed(server: Server) -> None:
    for size in (MAX_HEADER * 2, 20 * 1024 * 1024):
        with connect(server) as sock:
            t0 = time.monotonic()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused before the end
                sock.sendall(HEAD + b"x-big: " + b"a" * size + b"\r\n\r\n")
            raw, closed = read_all(sock)
        status, error = status_and_error(raw)
        assert status == 431 and f"over {MAX_HEADER} bytes" in str(error["message"]), raw[:300]
        assert closed - t0 < 3.0
    fits = httpx.post(f"{server.url}/v1/endpoints/toy/predict", json=BODY, headers={"x-fits": "a" * 8000})
    assert fits.status_code == 200, fits.text


def test_a_request_that_does_not_arrive_in_time_is_408_and_closed(server: Server) -> None:
    with connect(server) as sock:  # head complete, 5 of 100 body bytes, then nothing
        sock.sendall(HEAD + b"content-length: 100\r\n\r\n" + b'{"ins')
        t0 = time.monotonic()
        raw, closed = read_all(sock)
    status, error = status_and_error(raw)
    assert status == 408 and error["code"] == "deadline_exceeded", raw
    assert "did not arrive within 1.5s" in str(error["message"])
    assert READ_TIMEOUT_S - 0.2 < closed - t0 < READ_TIMEOUT_S + 2.0
    with connect(server) as sock:  # a connection that never sends anything is closed unanswered
        t0 = time.monotonic()
        raw, closed = read_all(sock)
    assert raw == b"" and closed - t0 < READ_TIMEOUT_S + 2.0
    r = httpx.post(f"{server.url}/v1/endpoints/toy/predict", json=BODY)  # the worker is fine
    assert r.status_code == 200, r.text


def test_fifty_slowloris_connections_do_not_delay_other_requests(server: Server) -> None:
    slow = [connect(server) for _ in range(50)]
    stop = threading.Event()
    closed_at: dict[int, float] = {}

    def trickle() -> None:  # one byte of the request head per connection every 0.5 s
        step = 0
        while not stop.is_set() and len(closed_at) < len(slow):
            for i, sock in enumerate(slow):
                if i in closed_at:
                    continue
                try:
                    sock.sendall(HEAD[step : step + 1])
                except OSError:
                    closed_at[i] = time.monotonic()
            step += 1
            stop.wait(0.5)

    t0 = time.monotonic()
    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    latencies = []
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while time.monotonic() - t0 < READ_TIMEOUT_S + 1.5:
                t1 = time.monotonic()
                assert client.post("/v1/endpoints/toy/predict", json=BODY).status_code == 200
                latencies.append(time.monotonic() - t1)
        answers = []
        for sock in slow:
            sock.settimeout(5)
            answers.append(read_all(sock)[0])
    finally:
        stop.set()
        sender.join(5)
        for sock in slow:
            sock.close()
    print(f"\n{len(latencies)} requests beside 50 slowloris connections: max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0, "slow clients delayed other requests"
    assert all(status_and_error(raw)[0] == 408 for raw in answers), answers[:3]


class _Recording:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_response_is_written_in_one_piece_when_it_completes() -> None:
    import asyncio

    from modelrunner.server.protocol import CoalescingTransport

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        raw = _Recording()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert raw.writes == []  # held until the response completes
        transport.flush()  # what the protocol does on a completed response
        whole = list(raw.writes)
        transport.write(b"a chunk of a streamed answer")  # no flush: written at the end of this loop turn
        await asyncio.sleep(0)
        streamed = list(raw.writes[1:])
        transport.write(b"last")
        transport.close()  # closing writes what is held first
        return whole, streamed, raw.writes[2:]

    whole, streamed, last = asyncio.run(scenario())
    assert whole == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert streamed == [b"a chunk of a streamed answer"]
    assert last == [b"last"]


def test_write_now_goes_out_at_once_after_what_is_held() -> None:
    import asyncio

    from modelrunner.server.protocol import CoalescingTransport

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        raw = _Recording()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write_now(b"a whole answer")
        alone = list(raw.writes)
        transport.write(b"held ")
        transport.write_now(b"then this")
        together = raw.writes[1:]
        await asyncio.sleep(0)  # the flush the held write posted finds nothing left
        raw.closed = True
        transport.write_now(b"too late")
        return alone, together, raw.writes[2:]

    alone, together, after = asyncio.run(scenario())
    assert alone == [b"a whole answer"]
    assert together == [b"held then this"]
    assert after == []


def test_writes_after_the_connection_closed_are_dropped_and_the_rest_is_the_transports() -> None:
    import asyncio

    from modelrunner.server.protocol import CoalescingTransport

    async def scenario() -> _Recording:
        raw = _Recording()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        assert transport.get_extra_info("peername") == "info:peername"
        raw.closed = True
        transport.write(b"too late")
        transport.flush()
        await asyncio.sleep(0)
        return raw

    assert asyncio.run(scenario()).writes == []


def test_many_keep_alive_requests_on_one_connection_each_get_their_whole_answer(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:  # one connection: each answer complete, in order
        for i in range(50):
            reply = client.post("/v1/endpoints/toy/predict", json=BODY, headers={"x-request-id": f"r{i}"})
            assert reply.status_code == 200 and reply.headers["x-request-id"] == f"r{i}", reply.text
            assert reply.json()["request_id"] == f"r{i}"


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    body = orjson.dumps(BODY)
    one = HEAD + b"content-length: %d\r\nx-request-id: first\r\n\r\n" % len(body) + body
    two = HEAD + b"content-length: %d\r\nx-request-id: second\r\nconnection: close\r\n\r\n" % len(body) + body
    with connect(server) as sock:
        sock.sendall(one + two)  # both at once: the second waits for the first answer
        raw, _ = read_all(sock)
    answers = raw.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 2, raw
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"200 OK", b"200 OK"]
    assert b"x-request-id: first" in answers[0] and b"x-request-id: second" in answers[1]
