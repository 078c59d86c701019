"""Toy steps with contracts, a spec builder, a uvicorn thread, and the OCR example's modules for the tests.

``examples/ocr`` is put on ``sys.path`` (its modules: ``generate``, ``segmenter``, ``recognizers``) and its
``build.py`` is loaded as ``ocr_build`` (``build`` may name the setuptools build folder).
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.contract import Contract, DType, Field
from modelrunner.pipelines.spec import PipelineSpec, parse_spec
from modelrunner.settings import Settings

OCR_DIR = Path(__file__).resolve().parents[2] / "examples" / "ocr"
if str(OCR_DIR) not in sys.path:
    sys.path.insert(0, str(OCR_DIR))


def load_build_script() -> ModuleType:
    """examples/ocr/build.py as module ``ocr_build``."""
    if "ocr_build" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ocr_build", OCR_DIR / "build.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ocr_build"] = module
        spec.loader.exec_module(module)
    return sys.modules["ocr_build"]


@dataclass
class OcrBuild:
    """A registry holding digit-segmenter, digit-recognizer (1 = svc, production; 2 = knn), digits-ocr."""

    home: Path
    settings: Settings
    registry: Any
    result: dict[str, Any]


def push_narrow_recognizer(ocr: OcrBuild) -> int:
    """A recogniser of 32 features: it would break the segment.crops -> recognize.input edge."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import modelrunner as mr

    d = load_digits()
    x = d.data[:300, :32]
    model = LogisticRegression(max_iter=50).fit(x, d.target[:300])
    bundle = mr.save_model(model, ocr.home / "narrow", name="digit-recognizer", sample=x[:3])
    return int(ocr.registry.push(bundle.path).version)


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixel data is cut short)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def f(name: str, dtype: str, *shape: int, optional: bool = False) -> Field:
    return Field(name=name, dtype=DType(dtype), shape=tuple(shape), optional=optional)


def contract(inputs: list[Field], outputs: list[Field]) -> Contract:
    return Contract.build(inputs, outputs)


def spec(
    steps: dict[str, Any],
    *,
    inputs: dict[str, Any] | None = None,
    output: dict[str, str] | None = None,
    name: str = "toy",
) -> PipelineSpec:
    return parse_spec(
        {"name": name, "input": inputs or {"x": "float64[3]"}, "steps": steps, "output": output or {}}
    )


class ToyStep(Predictor):
    """A step computing ``fn(columns)``, recording every call (batch sizes, threads, times)."""

    def __init__(
        self, contract: Contract, fn: Callable[[Mapping[str, np.ndarray]], Columns], delay: float = 0.0
    ) -> None:
        self.contract = contract
        self.fn = fn
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.closed = False

    def predict(self, columns: Mapping[str, np.ndarray]) -> Columns:
        start = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        out = self.fn(columns)
        with self.lock:
            self.calls.append(
                {"rows": len(next(iter(columns.values()))), "start": start, "end": time.perf_counter()}
            )
        return out

    def close(self) -> None:
        self.closed = True
