"""The ceiling: a bare ASGI app (no framework) answering predictions with orjson.

Served by ``uvicorn bare_app:app --workers 2 --loop uvloop --http httptools --no-access-log``. Loads the
joblib model named by ``BENCH_MODEL`` and answers ``POST /predict`` with ``{"instances": [[...64]]}``.

Two answers, chosen by ``BENCH_ANSWER``:

- ``labels`` (the default): ``predict`` and the labels only, ``{"predictions": [3, ...]}``;
- ``proba`` (the *same-work* ceiling): what modelrunner's sklearn flavor does for a request, one
  ``predict_proba``, the label as its argmax, both returned per row:
  ``{"predictions": [{"label": 3, "proba": [...10]}, ...]}``.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import orjson

MODEL = joblib.load(os.environ["BENCH_MODEL"])
PROBA = os.environ.get("BENCH_ANSWER", "labels") == "proba"
HEADERS = [(b"content-type", b"application/json")]


async def _body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _label_proba(x: np.ndarray) -> list[dict[str, Any]]:
    proba = MODEL.predict_proba(x)
    labels = MODEL.classes_[proba.argmax(axis=1)]
    return [{"label": label, "proba": row} for label, row in zip(labels.tolist(), proba, strict=True)]


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
        data = orjson.loads(await _body(receive))
        x = np.asarray(data["instances"], dtype=np.float64)
        payload = orjson.dumps(
            {"predictions": _label_proba(x) if PROBA else MODEL.predict(x)}, option=orjson.OPT_SERIALIZE_NUMPY
        )
    except Exception as exc:  # noqa: BLE001 - a bad request is a 400, never a crash
        status, payload = 400, orjson.dumps({"error": str(exc)})
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": payload})
