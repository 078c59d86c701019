"""The routed app's last-resort error handling (server/http.py ``CatchErrors``), over real HTTP: a 500 is
logged once with one traceback; a client that goes away mid-body is not logged as an error."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx


class Records(logging.Handler):
    """Every record of the given loggers (uvicorn's do not reach the root logger, so caplog misses them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def recording(*names: str) -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def _wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_500_is_logged_once_with_one_traceback(client: httpx.Client) -> None:
    with recording("modelrunner", "uvicorn.error") as log:
        r = client.get("/admin/models")  # the toy runtime has no registry: an unexpected AttributeError
        assert r.status_code == 500
        assert r.json() == {
            "error": {"code": "internal", "message": "internal error: AttributeError", "field": None}
        }
        _wait_for(lambda: any(rec.exc_info for rec in log.records))
        assert client.get("/healthz").status_code == 200  # the failed request's task is done by now
    tracebacks = [rec for rec in log.records if rec.exc_info]
    assert len(tracebacks) == 1, [rec.getMessage() for rec in tracebacks]
    assert "GET /admin/models" in tracebacks[0].getMessage()


def test_a_client_going_away_mid_body_is_not_an_error(toy_server: str) -> None:
    host, port = toy_server.removeprefix("http://").split(":")
    head = (
        f"POST /v2/models/toy/infer HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n"
    ).encode()
    with recording("modelrunner", "uvicorn.error") as log:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + b'{"inputs": [')
        _wait_for(lambda: any("went away" in rec.getMessage() for rec in log.records), 3)
    errors = [rec for rec in log.records if rec.levelno >= logging.WARNING]
    assert errors == [], [rec.getMessage() for rec in errors]
    gone = [rec for rec in log.records if "went away" in rec.getMessage()]
    assert gone[0].levelno == logging.INFO and gone[0].exc_info is None
    assert "POST /v2/models/toy/infer" in gone[0].getMessage()
