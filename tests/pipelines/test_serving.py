"""The OCR pipeline served over real HTTP: multipart upload, trace, bad input, live step swaps under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from generate import make_lines, split_sources, to_png

from support.pipeline_helpers import OcrBuild, header_only_png, push_narrow_recognizer
from support.server_helpers import ServerThread

ENDPOINT = "ocr"


@pytest.fixture(scope="module")
def served(ocr: OcrBuild) -> Iterator[tuple[str, Any]]:
    from modelrunner.runner.runtime import Runtime
    from modelrunner.server.app import create_app

    ocr.registry.set_endpoint(ENDPOINT, "pipeline:digits-ocr@production")
    runtime = Runtime(ocr.registry, ocr.settings)
    try:
        with ServerThread(create_app(runtime, ocr.settings)) as server:
            yield server.url, runtime
    finally:
        ocr.registry.delete_endpoint(ENDPOINT)


def post(client: httpx.Client, data: bytes, query: str = "", name: str = "image") -> httpx.Response:
    return client.post(f"/v1/endpoints/{ENDPOINT}/predict{query}", files={name: ("line.png", data)})


def test_curl_a_png_and_read_the_digits(served: tuple[str, Any]) -> None:
    _, test = split_sources()
    lines = make_lines(test, 12, seed=21)
    with httpx.Client(base_url=served[0], timeout=30) as client:
        answers = [post(client, line.png()).json() for line in lines]
        traced = post(client, lines[0].png(), "?trace=1").json()
        contract = client.get(f"/v1/endpoints/{ENDPOINT}/contract.proto").text
        v2 = client.get(f"/v2/models/{ENDPOINT}").json()
        scraped = client.get("/metrics").text
    first = answers[0]
    assert first["endpoint"] == ENDPOINT and first["model"] == "digits-ocr" and first["version"] == 1
    assert len(first["boxes"]) == len(first["text"]) and len(first["confidence"][0]) == 10
    correct = sum(a["text"] == line.text for a, line in zip(answers, lines, strict=True))
    assert correct >= 9, [(a["text"], line.text) for a, line in zip(answers, lines, strict=True)]
    steps = [t["step"] for t in traced["trace"]]
    assert sorted(steps) == ["assemble", "decode", "recognize", "segment"]
    assert all(t["ms"] >= 0 for t in traced["trace"]) and "trace" not in first
    assert "bytes image = 1;" in contract and "string text = 1;" in contract
    assert [i["name"] for i in v2["inputs"]] == ["image"] and v2["inputs"][0]["datatype"] == "BYTES"
    assert {o["name"]: o["shape"] for o in v2["outputs"]}["confidence"] == [-1, -1, 10]
    metric = 'modelrunner_pipeline_step_duration_seconds_count{pipeline="digits-ocr",step="recognize"}'
    assert metric in scraped


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        (
            b"not a png at all",
            422,
            "step 'decode' (image.decode_grayscale) input 'data' <- $input.image: "
            "field 'data': not a PNG/JPEG image",
        ),
        (b"", 422, "field 'data': empty image (0 bytes)"),
        (
            to_png(np.full((40, 160), 255, dtype=np.uint8)),
            422,
            "step 'segment' (digit-segmenter@1) input 'image' <- decode.image: no digits found in the image",
        ),
        (header_only_png(10000, 5000), 413, "image is 10000x5000 (50.0 megapixels); the limit is 4.0"),
    ],
)
def test_bad_images_are_one_line_errors(served: tuple[str, Any], data: bytes, status: int, text: str) -> None:
    with httpx.Client(base_url=served[0], timeout=30) as client:
        r = post(client, data)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert text in error["message"] and "\n" not in error["message"]
    if status == 422:
        assert error["field"] == "image"


def test_wrong_form_fields(served: tuple[str, Any]) -> None:
    with httpx.Client(base_url=served[0], timeout=30) as client:
        r = post(client, b"x", name="img")
        assert r.status_code == 422 and "unknown form field 'img' (inputs: image)" in r.text
        r = client.post(f"/v1/endpoints/{ENDPOINT}/predict", data={"note": "hi"})
        assert r.status_code == 422 and "unknown form field 'note'" in r.text
        r = client.post(
            f"/v1/endpoints/{ENDPOINT}/predict",
            content=b"--x\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert r.status_code in (400, 422), r.text


class Load:
    """Requests in a loop from a few threads; counts answers and failures."""

    def __init__(self, url: str, png: bytes, threads: int = 3) -> None:
        self.url, self.png = url, png
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    r = post(client, self.png)
                    good = r.status_code == 200 and r.json()["text"]
                    failure = None if good else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                with self.lock:
                    if failure:
                        self.failures.append(failure)
                    else:
                        self.ok += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_step_alias_swaps_live_with_zero_failed_requests(served: tuple[str, Any], ocr: OcrBuild) -> None:
    url, runtime = served
    endpoint = runtime.get(ENDPOINT)
    wait_for(lambda: endpoint.current is not None)
    before = endpoint.current.sha256
    _, test = split_sources()
    png = make_lines(test, 1, seed=3)[0].png()
    narrow = push_narrow_recognizer(ocr)
    try:
        with Load(url, png) as load:
            wait_for(lambda: load.ok >= 5)
            ocr.registry.set_alias("digit-recognizer", "production", 2)  # modelrunner alias set ...@2
            wait_for(lambda: endpoint.current.sha256 != before)
            swapped = load.ok
            wait_for(lambda: load.ok >= swapped + 5)
            ocr.registry.set_alias("digit-recognizer", "production", narrow)  # would break an edge
            wait_for(lambda: endpoint.state == "failed")
            refused_at = load.ok
            wait_for(lambda: load.ok >= refused_at + 5)  # the knn pipeline keeps answering
        assert load.failures == [] and load.ok > 15
        assert "edge segment.crops -> recognize.input" in str(endpoint.error)
        assert endpoint.current.sha256 != before  # still the knn version, not the narrow one
    finally:
        ocr.registry.set_alias("digit-recognizer", "production", 1)
    wait_for(lambda: endpoint.current.sha256 == before and endpoint.state == "serving")


def test_json_batch_of_lines_of_different_lengths(served: tuple[str, Any]) -> None:
    import base64

    _, test = split_sources()
    lines = [line for line in make_lines(test, 10, seed=8) if len(line.text) in (3, 8)][:2]
    body = {"instances": [{"image": base64.b64encode(line.png()).decode()} for line in lines]}
    with httpx.Client(base_url=served[0], timeout=30) as client:
        r = client.post(f"/v1/endpoints/{ENDPOINT}/predict?trace=1", json=body)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [len(p["boxes"]) for p in predictions] == [len(line.text) for line in lines]
    assert sum(p["text"] == line.text for p, line in zip(predictions, lines, strict=True)) >= 1
    recognize = next(t for t in r.json()["trace"] if t["step"] == "recognize")
    assert recognize["calls"] == 1 and recognize["rows"] == sum(len(line.text) for line in lines)


def test_zero_rows_answer_zero_rows(served: tuple[str, Any]) -> None:
    with httpx.Client(base_url=served[0], timeout=30) as client:
        r = client.post(f"/v1/endpoints/{ENDPOINT}/predict", json={"instances": []})
    assert r.status_code == 200 and r.json()["predictions"] == [], r.text


def test_pixels_per_request_are_refused_from_the_headers(served: tuple[str, Any]) -> None:
    """50 images of 2000x2000 (433 KB of JSON as PNGs) took a worker from 296 MB to 1.85 GB: now a 413
    before any is decoded (header-only PNGs would each fail as corrupt if one were)."""
    import base64

    image = base64.b64encode(header_only_png(2000, 2000)).decode()
    with httpx.Client(base_url=served[0], timeout=30) as client:
        r = client.post(f"/v1/endpoints/{ENDPOINT}/predict", json={"instances": [{"image": image}] * 50})
    assert r.status_code == 413, r.text
    assert "the 50 images hold 200.0 megapixels together" in r.json()["error"]["message"]


def test_traced_requests_keep_their_steps_with_batching_on(served: tuple[str, Any], ocr: OcrBuild) -> None:
    """A traced request is not merged into a batch: each of several concurrent ones gets its own steps."""
    from concurrent.futures import ThreadPoolExecutor

    url, runtime = served
    endpoint = runtime.endpoints[ENDPOINT]
    target = "pipeline:digits-ocr@production"
    ocr.registry.set_endpoint(ENDPOINT, target, config={"max_batch_size": 16, "max_latency_ms": 20})
    try:
        wait_for(lambda: endpoint.batching.max_batch_size == 16)
        _, test = split_sources()
        lines = make_lines(test, 6, seed=5)
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(6) as pool:
            plain = list(pool.map(lambda line: post(client, line.png()).json(), lines))
            traced = list(pool.map(lambda line: post(client, line.png(), "?trace=1").json(), lines))
        assert all("trace" not in answer and answer["text"] for answer in plain)
        steps = ["assemble", "decode", "recognize", "segment"]
        for answer in traced:
            assert sorted(t["step"] for t in answer["trace"]) == steps
            assert next(t for t in answer["trace"] if t["step"] == "decode")["rows"] == 1
    finally:
        ocr.registry.set_endpoint(ENDPOINT, target, config={})
        wait_for(lambda: endpoint.batching.mode == "auto")  # the default: a pipeline is not batched


def test_a_torch_cnn_is_swapped_in_by_moving_the_alias(served: tuple[str, Any], ocr: OcrBuild) -> None:
    """examples/ocr/cnn.py trained briefly (2 epochs: the full run is in docs/pipelines.md), pushed as a new
    digit-recognizer version (torch flavor) and served by the pipeline once production points at it."""
    pytest.importorskip("torch")
    from cnn import CnnRecognizer
    from recognizers import line_metrics, training_set

    import modelrunner as mr

    url, runtime = served
    endpoint = runtime.get(ENDPOINT)
    wait_for(lambda: endpoint.current is not None and endpoint.state == "serving")
    before = endpoint.current.sha256
    train, test = split_sources()
    x, y = training_set(make_lines(train, 40, seed=5), train)
    cnn = CnnRecognizer(epochs=2).fit(x, y)
    bundle = mr.save_model(cnn.module, ocr.home / "cnn", name="digit-recognizer", sample=x[:5])
    assert bundle.manifest.flavor == "torch"
    version = int(ocr.registry.push(bundle.path).version)
    lines = make_lines(test, 10, seed=31, distort=True)
    try:
        ocr.registry.set_alias("digit-recognizer", "production", version)  # modelrunner alias set ...
        wait_for(lambda: endpoint.current.sha256 != before and endpoint.state == "serving")
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [post(client, line.png(), "?trace=1").json() for line in lines]
    finally:
        ocr.registry.set_alias("digit-recognizer", "production", 1)
    wait_for(lambda: endpoint.current.sha256 == before and endpoint.state == "serving")
    recognize = next(t for t in answers[0]["trace"] if t["step"] == "recognize")
    assert f"digit-recognizer@{version}" in str(recognize), recognize
    metrics = line_metrics([line.text for line in lines], [a["text"] for a in answers])
    assert metrics["character_error_rate"] < 0.5, metrics  # 2 epochs: far from the full run's 2 %
