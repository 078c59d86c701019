"""Speed measurement: in-process timing on a real bundle, and the load generator over real HTTP."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import orjson
import pytest

from modelrunner import load_model
from modelrunner.errors import InvalidArgument
from modelrunner.evaluation.speed import (
    LoadSpec,
    http_load,
    predict_all,
    request_bodies,
    served_metrics,
    single_row_latency,
)


def test_in_process(digits_bundles: dict[str, Path], digits_split) -> None:
    predictor = load_model(digits_bundles["good"])
    x = digits_split[2]
    outputs, rows_per_s = predict_all(predictor, {"input": x}, batch_size=100)
    assert outputs["label"].shape == (len(x),) and outputs["proba"].shape == (len(x), 10)
    assert rows_per_s > 0
    stats = single_row_latency(predictor, {"input": x}, calls=50)
    assert len(stats.samples_ms) == 50 and 0 < stats.percentile(50) <= stats.percentile(99)


class _Echo(BaseHTTPRequestHandler):
    """A stand-in HTTP peer for the load generator: 200 on /ok (chunked on /chunked), 500 elsewhere."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        _Echo.seen.append(orjson.loads(body))
        code = 200 if self.path in ("/ok", "/chunked") else 500
        self.send_response(code)
        if self.path == "/chunked":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\n{}\r\n0\r\n\r\n")
            return
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_load_generator_counts_and_errors(echo_url: str) -> None:
    _Echo.seen.clear()
    columns = {"input": np.arange(6.0).reshape(3, 2), "name": np.array(["a", "b", "c"], object)}
    bodies = request_bodies(columns, 3)
    assert orjson.loads(bodies[1]) == {"inputs": {"input": [[2.0, 3.0]], "name": ["b"]}}
    stats = http_load(f"{echo_url}/ok", bodies, LoadSpec(requests=40, concurrency=4, warmup=4))
    assert len(stats.samples_ms) == 40 and stats.errors == 0
    assert len(_Echo.seen) >= 44  # warm-up requests are sent but not counted
    metrics = served_metrics(stats)
    assert metrics["qps"] > 0 and metrics["error_rate"] == 0 and metrics["p50_ms"] <= metrics["p99_ms"]
    chunked = http_load(f"{echo_url}/chunked", bodies, LoadSpec(requests=10, concurrency=2, warmup=0))
    assert len(chunked.samples_ms) == 10
    failing = http_load(f"{echo_url}/fail", bodies, LoadSpec(requests=10, concurrency=2, warmup=0))
    assert failing.errors == 10 and served_metrics(failing)["error_rate"] == 1.0


def test_load_generator_refused_connection_is_an_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stats = http_load(f"http://127.0.0.1:{port}/x", [b"{}"], LoadSpec(requests=5, concurrency=1, warmup=0))
    assert stats.errors == 5 and not stats.samples_ms
    with pytest.raises(InvalidArgument):
        LoadSpec(requests=0)
    with pytest.raises(InvalidArgument, match="expected http://"):
        http_load("ftp://x/y", [b"{}"])
