"""Build the digit-string OCR service end to end, into the registry of ``MODELRUNNER_HOME``.

1. Generate lines of handwritten digits (train lines from the training split of the source images, test
   lines only from the test split).
2. Train the recogniser candidates on crops the segmenter cuts from training lines (with torch installed,
   a small CNN trained with augmentation is one, cnn.py); score each on the test lines and on *distorted*
   test lines (glyphs rotated ±10° and sheared by the generator, never seen in training); push each as a
   version of ``digit-recognizer`` (with its metrics); the best on both (the lowest sum of the two character
   error rates) gets ``production``.
3. Push the segmenter (python flavor) as ``digit-segmenter@production``.
4. Check the pipeline, score it on the test lines *through the pipeline* (exact-line accuracy, character
   error rate), push it as ``digits-ocr@production`` with those metrics, and record the evaluation.

    python examples/ocr/build.py            # ~30-60 s on 2 cores, + ~60 s CPU for the CNN; skips if built
    python examples/ocr/build.py --rebuild  # push new versions anyway
    OCR_CNN=0 python examples/ocr/build.py  # without the CNN candidate even when torch is installed

``ensure_built()`` is what ``make run`` calls (it also writes a sample line PNG and the curl to read it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import Line, make_lines, split_sources  # noqa: E402
from recognizers import CANDIDATES, line_metrics, train, training_set  # noqa: E402
from segmenter import DigitSegmenter, NoDigits, segment  # noqa: E402

import modelrunner as mr  # noqa: E402
from modelrunner.contract import Contract, DType, Field  # noqa: E402
from modelrunner.errors import ModelrunnerError, NotFound  # noqa: E402
from modelrunner.pipelines.package import push_pipeline  # noqa: E402
from modelrunner.pipelines.spec import load_spec  # noqa: E402
from modelrunner.pipelines.steps import check_spec, load_pipeline  # noqa: E402

log = logging.getLogger("ocr.build")

SPEC = HERE / "pipeline.yaml"
SEGMENTER = "digit-segmenter"
RECOGNIZER = "digit-recognizer"
SEGMENTER_CONTRACT = Contract.build(
    [Field(name="image", dtype=DType.FLOAT32, shape=(-1, -1), description="grayscale line, 0..1")],
    [
        Field(name="boxes", dtype=DType.INT32, shape=(-1, 4), description="x0, y0, x1, y1 of each digit"),
        Field(name="crops", dtype=DType.FLOAT32, shape=(-1, 64), description="8x8 crops, 0..16 like sklearn"),
    ],
)


def score_candidates(models: dict[str, Any], test: list[Line]) -> dict[str, dict[str, float]]:
    """Each candidate's line metrics on the test lines, behind the same segmenter (cut once)."""
    cuts = []
    for line in test:
        try:
            cuts.append(segment(line.image)[1])
        except NoDigits:
            cuts.append(np.zeros((0, 64), dtype=np.float32))
    counts = np.cumsum([len(c) for c in cuts])[:-1]
    crops = np.concatenate(cuts).astype(np.float64)
    scores = {}
    for name, model in models.items():
        labels = np.split(model.predict(crops), counts)
        preds = ["".join(str(int(v)) for v in row) for row in labels]
        scores[name] = line_metrics([line.text for line in test], preds)
    return scores


def score_pipeline(predictor: Any, test: list[Line], chunk: int = 50) -> dict[str, float]:
    """Line metrics of the whole pipeline (PNG bytes in, text out), in batches of ``chunk`` lines."""
    preds: list[str] = []
    for start in range(0, len(test), chunk):
        part = test[start : start + chunk]
        column = np.empty(len(part), dtype=object)
        column[:] = [line.png() for line in part]
        out = predictor.predict({"image": column})
        preds.extend(str(t) for t in out["text"])
    return line_metrics([line.text for line in test], preds)


def push_recognizers(
    registry: Any, models: dict[str, Any], scores: dict[str, dict[str, float]], sample: np.ndarray, work: Path
) -> tuple[str, Any]:
    """Push every candidate as a version (tagged with its name); alias the best ``production`` (the lowest
    CER on plain plus distorted lines when both were scored)."""

    def rank(n: str) -> tuple[float, float]:
        s = scores[n]
        return s["character_error_rate"] + s.get("distorted_character_error_rate", 0.0), -s[
            "exact_line_accuracy"
        ]

    best = min(scores, key=rank)
    best_mv = None
    for name, model in models.items():
        saved = getattr(model, "module", model)  # the CNN's torch module (torch flavor)
        bundle = mr.save_model(
            saved,
            work / f"recognizer-{name}",
            name=RECOGNIZER,
            sample=sample,
            license="BSD-3-Clause",
            metrics=scores[name],
            tags={"candidate": name},
            description=f"{name} digit recogniser for 8x8 crops (0..16)",
        )
        mv = registry.push(bundle.path, alias="production" if name == best else None)
        log.info("pushed %s (%s)", mv.ref, name)
        if name == best:
            best_mv = mv
    return best, best_mv


def build(
    registry: Any, work: Path, n_train: int, n_test: int, candidates: Sequence[str] = tuple(CANDIDATES)
) -> dict[str, Any]:
    """Generate, train, push every model and the pipeline; score the pipeline; return what happened."""
    t0 = time.perf_counter()
    train_src, test_src = split_sources()
    train_lines = make_lines(train_src, n_train, seed=1)
    test_lines = make_lines(test_src, n_test, seed=2)
    distorted = make_lines(test_src, n_test, seed=3, distort=True)
    x, y = training_set(train_lines, train_src)
    models = {name: train(name, x, y) for name in candidates}
    scores = score_candidates(models, test_lines)
    for name, m in score_candidates(models, distorted).items():
        scores[name].update({f"distorted_{k}": v for k, v in m.items() if k != "lines"})
    best, _ = push_recognizers(registry, models, scores, x[:5], work)
    seg = mr.save_model(
        DigitSegmenter(),
        work / "segmenter",
        name=SEGMENTER,
        contract=SEGMENTER_CONTRACT,
        sample={"image": test_lines[0].image[None].astype(np.float32) / 255.0},
        license="Apache-2.0",
        description="classical column-projection digit segmenter",
    )
    registry.push(seg.path, alias="production")
    graph, targets = check_spec(load_spec(SPEC), registry=registry, base_dir=HERE)
    predictor = load_pipeline(graph, targets, registry=registry)
    try:
        metrics = score_pipeline(predictor, test_lines)
    finally:
        predictor.close()
    mv = push_pipeline(SPEC, registry, alias="production", metrics=metrics)
    registry.record_evaluation(
        mv.name, mv.version, metrics=metrics, dataset_name=f"generated-test-lines-{n_test}"
    )
    return {
        "pipeline": mv.ref,
        "metrics": metrics,
        "candidates": scores,
        "best": best,
        "steps": {n: t.ref for n, t in targets.items()},
        "seconds": time.perf_counter() - t0,
    }


def report(result: dict[str, Any]) -> None:
    log.info(
        "recogniser candidates on %d generated test lines (segmenter + candidate):",
        int(result["metrics"]["lines"]),
    )
    for name, m in result["candidates"].items():
        mark = "  <- production" if name == result["best"] else ""
        log.info(
            "  %-7s exact-line accuracy %.3f  character error rate %.4f  (distorted lines: %.3f, %.4f)%s",
            name,
            m["exact_line_accuracy"],
            m["character_error_rate"],
            m.get("distorted_exact_line_accuracy", float("nan")),
            m.get("distorted_character_error_rate", float("nan")),
            mark,
        )
    m = result["metrics"]
    log.info(
        "pipeline %s (%s): exact-line accuracy %.3f, character error rate %.4f [%.0f s]",
        result["pipeline"],
        ", ".join(f"{k}={v}" for k, v in result["steps"].items()),
        m["exact_line_accuracy"],
        m["character_error_rate"],
        result["seconds"],
    )


def curl_command(sample: str | Path, url: str = "http://127.0.0.1:8080", endpoint: str = "ocr") -> str:
    """The curl that reads a line image through the served pipeline."""
    return f"curl -s {url}/v1/endpoints/{endpoint}/predict -F image=@{sample}"


def ensure_built(
    registry: Any = None,
    *,
    rebuild: bool = False,
    n_train: int = 800,
    n_test: int = 500,
    candidates: Sequence[str] = tuple(CANDIDATES),
) -> dict[str, Any]:
    """Build unless ``digits-ocr@production`` exists; either way write a fresh sample line PNG.

    What ``make run`` calls: returns ``pipeline``, ``metrics``, ``sample`` (a PNG path), ``sample_text``,
    ``target`` (``pipeline:digits-ocr@production``) and ``curl``.
    """
    registry = registry or mr.Registry.from_env()
    work = registry.settings.home / "examples" / "ocr"
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] | None = None
    if not rebuild:
        try:
            mv = registry.resolve("digits-ocr@production")
            result = {"pipeline": mv.ref, "metrics": dict(mv.metrics), "built": False}
        except NotFound:
            pass
    if result is None:
        result = {**build(registry, work, n_train, n_test, candidates), "built": True}
    _, test_src = split_sources()
    line = make_lines(test_src, 1, seed=int(time.time()) % 10_000)[0]
    sample = work / "line.png"
    sample.write_bytes(line.png())
    result.update(
        sample=str(sample),
        sample_text=line.text,
        target="pipeline:digits-ocr@production",
        curl=curl_command(sample),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build and push the digit-string OCR pipeline.")
    parser.add_argument("--train-lines", type=int, default=800)
    parser.add_argument("--test-lines", type=int, default=500)
    parser.add_argument("--rebuild", action="store_true", help="push new versions even if already built")
    parser.add_argument(
        "--candidates",
        default=",".join(CANDIDATES),
        help=f"recognisers to train, comma-separated (default: {','.join(CANDIDATES)})",
    )
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown or not names:
        parser.error(f"unknown candidate(s) {unknown}; choose from {', '.join(CANDIDATES)}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("ocr").setLevel(logging.INFO)
    try:
        result = ensure_built(
            rebuild=args.rebuild, n_train=args.train_lines, n_test=args.test_lines, candidates=names
        )
    except ModelrunnerError as exc:
        log.error("error: %s", exc)
        return 2
    if result["built"]:
        report(result)
    else:
        log.info(
            "%s already built (%s); use --rebuild to build again",
            result["pipeline"],
            ", ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items()),
        )
    log.info("serve it:  modelrunner serve --endpoint ocr=%s", result["target"])
    log.info("read %s (%r):  %s", result["sample"], result["sample_text"], result["curl"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
