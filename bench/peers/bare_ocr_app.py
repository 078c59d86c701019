"""The OCR pipeline as a plain function behind the bare ASGI app: the ceiling of the served pipeline.

Served by ``uvicorn bare_ocr_app:app --workers 2 --loop uvloop --http httptools --no-access-log`` with
``examples/ocr`` on ``PYTHONPATH`` (its segmenter). ``POST /predict`` with the same multipart form the
served pipeline reads (one part, the PNG) runs the pipeline's steps as plain calls: decode the PNG to
grayscale 0..1, segment it, one ``predict_proba`` of the recogniser (the joblib file named by
``BENCH_OCR_RECOGNIZER``, the pipeline's ``digit-recognizer@production``) over every crop, labels as the
argmax, joined left to right; answers ``{"text", "boxes", "confidence"}`` like the pipeline.
"""

from __future__ import annotations

import io
import os
from typing import Any

import joblib
import numpy as np
import orjson
from PIL import Image
from segmenter import segment

RECOGNIZER = joblib.load(os.environ["BENCH_OCR_RECOGNIZER"])
HEADERS = [(b"content-type", b"application/json")]


def read_line(png: bytes) -> dict[str, Any]:
    """The pipeline as one function: PNG bytes -> text, boxes and the probabilities of every digit."""
    with Image.open(io.BytesIO(png)) as img:
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    boxes, crops = segment(gray)
    proba = RECOGNIZER.predict_proba(crops.astype(np.float64))
    labels = RECOGNIZER.classes_[proba.argmax(axis=1)]
    order = np.argsort(boxes[:, 0], kind="stable")
    text = "".join(str(int(v)) for v in labels[order])
    return {"text": text, "boxes": boxes, "confidence": proba}


def first_part(body: bytes, content_type: bytes) -> bytes:
    """The content of the first part of a multipart/form-data body."""
    boundary = content_type.split(b"boundary=", 1)[1].split(b";", 1)[0].strip(b'"')
    start = body.index(b"\r\n\r\n") + 4
    return body[start : body.index(b"\r\n--" + boundary, start)]


async def _body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    status, payload = 200, b""
    try:
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        answer = read_line(first_part(await _body(receive), content_type))
        payload = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    except Exception as exc:  # noqa: BLE001 - a bad request is a 400, never a crash
        status, payload = 400, orjson.dumps({"error": str(exc)})
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": payload})
