"""Load one model version into a warmed-up :class:`Deployment` (blocking: run it off the event loop)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modelrunner.bundle.predictor import Columns, Predictor
from modelrunner.errors import ModelrunnerError, SwapFailed, Unavailable
from modelrunner.runner import startup
from modelrunner.runner.endpoint import Deployment, DriftHook

if TYPE_CHECKING:
    from modelrunner.pipelines.targets import ResolvedTarget
    from modelrunner.registry.registry import Registry

log = logging.getLogger(__name__)


Loader = Callable[["Registry", "ResolvedTarget"], tuple[Predictor, "Mapping[str, np.ndarray] | None"]]
"""``(registry, resolved target) -> (predictor, example input or None)``."""

DriftHookFactory = Callable[[str, Any], "DriftHook | None"]
"""``(endpoint, model_version) -> the deployment's drift hook`` (drift monitoring: ``monitoring.monitor``)."""


def load_bundle(registry: Registry, mv: ResolvedTarget) -> tuple[Predictor, Mapping[str, np.ndarray] | None]:
    """Fetch the bundle (verified, cached by sha256), load its predictor, read its example input.

    A pipeline (resolved by ``pipelines.targets.resolve_target``) loads all its steps instead.
    """
    from modelrunner.bundle.bundle import open_bundle
    from modelrunner.pipelines.targets import PipelineVersion, load_pipeline_version

    if isinstance(mv, PipelineVersion):
        return load_pipeline_version(registry, mv)

    with startup.step("fetch"):  # verified and unpacked into the cache once per host (or found there)
        folder = registry.fetch(mv)
    with startup.step("load"):
        bundle = open_bundle(folder)
        predictor = bundle.load()
    try:
        example = bundle.example_input()
    except ModelrunnerError as exc:
        log.warning("%s has no usable example input (%s); skipping warm-up", mv.ref, exc)
        example = None
    return predictor, example


def build_deployment(
    endpoint: str,
    target: str,
    mv: ResolvedTarget,
    registry: Registry,
    loader: Loader = load_bundle,
    drift_hook_for: DriftHookFactory | None = None,
) -> Deployment:
    """Load ``mv`` and warm it up with its example input; SwapFailed (old keeps serving) on a model error,
    Unavailable (retried with back-off) on a transient one: see :func:`transient_cause`.

    Flavor loads (``Bundle.load``, every step of a pipeline too) and warm-ups run one at a time per process
    (``LOAD_LOCK``): both import the model's libraries. Fetching a bundle is outside the lock, so two
    endpoints' downloads still overlap."""
    from modelrunner.bundle.bundle import LOAD_LOCK

    t0 = time.perf_counter()
    try:
        predictor, example = loader(registry, mv)
    except Unavailable:  # the store or database is down: transient, retried with back-off
        raise
    except Exception as exc:  # noqa: BLE001 - any model error refuses the swap, never the worker
        raise _refusal(f"loading {mv.ref} failed", exc) from exc
    t1 = time.perf_counter()
    try:
        if example is not None:
            with LOAD_LOCK, startup.step("warmup"):  # a first predict may import lazily, like unpickling
                warm_up(predictor, example)
    except Exception as exc:  # noqa: BLE001
        _close_quietly(predictor)
        raise _refusal(f"warm-up of {mv.ref} failed", exc) from exc
    t2 = time.perf_counter()
    contract = getattr(predictor, "contract", None) or mv.contract
    return Deployment(
        endpoint=endpoint,
        model=mv.name,
        version=mv.version,
        ref=mv.ref,
        target=target,
        contract=contract,
        predictor=predictor,
        sha256=mv.sha256,
        load_ms=(t1 - t0) * 1000,
        warmup_ms=(t2 - t1) * 1000,
        drift_hook=_drift_hook(drift_hook_for, endpoint, mv),
        batch_safe=bool(getattr(predictor, "batch_safe", False)),
    )


def _drift_hook(drift_hook_for: DriftHookFactory | None, endpoint: str, mv: Any) -> DriftHook | None:
    """The deployment's monitoring hook; a monitoring failure never refuses a swap (it is logged)."""
    if drift_hook_for is None:
        return None
    try:
        return drift_hook_for(endpoint, mv)
    except Exception:  # noqa: BLE001
        log.warning("drift monitoring of %s is off: its reference could not be read", mv.ref, exc_info=True)
        return None


TRANSIENT = (ImportError, MemoryError, OSError)
"""Load errors about this process rather than the bundle: a concurrent import, memory, the file system."""
PERMANENT = (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, NotADirectoryError)
"""...except these, which are about the bundle: it needs a package this image lacks, or a file it lacks."""


def transient_cause(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s cause chain that another attempt may not meet, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TRANSIENT) and not isinstance(current, PERMANENT):
            return current
        if type(current).__name__ == "_DeadlockError":  # importlib's own, a RuntimeError: the same race
            return current
        current = current.__cause__ or current.__context__
    return None


def _refusal(what: str, exc: Exception) -> ModelrunnerError:
    cause = transient_cause(exc)
    if cause is not None:
        return Unavailable(f"{what}: {_one_line(cause)}")
    return SwapFailed(f"{what}: {_one_line(exc)}")


def warm_up(predictor: Predictor, example: Mapping[str, np.ndarray]) -> Columns:
    """Predict on the example input and check the answer has every declared output, one row per input."""
    out = predictor.predict(example)
    if not isinstance(out, Mapping):
        raise TypeError(f"predict returned {type(out).__name__}, expected a dict of columns")
    n = len(next(iter(example.values()))) if example else 0
    for field in getattr(predictor.contract, "outputs", ()):
        if field.optional:
            continue
        if field.name not in out:
            raise ValueError(f"output {field.name!r} missing from the answer")
        if n and len(out[field.name]) != n:
            raise ValueError(f"output {field.name!r} has {len(out[field.name])} rows for {n} input rows")
    return dict(out)


def _close_quietly(predictor: Predictor) -> None:
    try:
        predictor.close()
    except Exception:  # noqa: BLE001
        log.exception("closing a refused predictor failed")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, ModelrunnerError) else first
