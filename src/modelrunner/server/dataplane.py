"""The protocol-neutral data plane every adapter (native REST, V2 REST, gRPC) calls.

Adapters decode their wire format, call :func:`infer` and encode the :class:`Prediction` back. This is
where per-request metrics are recorded, so every protocol counts the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from modelrunner.contract import Contract
from modelrunner.contract.validate import validate_batch
from modelrunner.errors import ModelrunnerError, Unavailable
from modelrunner.monitoring import metrics
from modelrunner.runner.endpoint import Endpoint, Prediction
from modelrunner.server import request_meta

Decoder = Callable[[Contract], Mapping[str, np.ndarray]]
"""Turns a request into columns, given the contract of the version serving now."""

OFFLOAD_BYTES = 256 * 1024
"""Bodies larger than this are parsed and decoded in a thread, not on the event loop: a 32 MiB body takes
seconds to decode, and the worker's other requests must not wait for it. Smaller ones stay on the loop,
where they cost less than a hand-off to a thread (the 1-row hot path is ~1 KB)."""


class RuntimeLike(Protocol):
    """What the server needs of :class:`modelrunner.runner.runtime.Runtime`."""

    endpoints: Mapping[str, Endpoint]

    def get(self, name: str) -> Endpoint: ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _version(endpoint: Endpoint) -> int | None:
    dep = endpoint.current
    return dep.version if dep is not None else None


async def infer(endpoint: Endpoint, decode: Decoder, protocol: str, *, alone: bool = False,
                offload: bool = False, request_id: str | bytes | None = None,
                sticky: request_meta.Lookup | None = None) -> Prediction:
    """Decode against the serving contract, predict on the pinned version, record metrics; ``alone`` keeps
    the request out of batching (a traced request: its pipeline steps' times are its own); ``offload``
    decodes in a thread (a large body: see :data:`OFFLOAD_BYTES`). ``request_id``: the client's (checked),
    else a new one; ``sticky``: where the running experiment's sticky key is found besides the input
    columns (headers, body fields, V2 parameters: see ``request_meta``). The Prediction says both the
    request id and the variant that answered."""
    rid = request_meta.request_id(request_id)
    key = endpoint.sticky_key
    given = sticky(key) if key is not None and sticky is not None else None
    sticky = None  # the lookup may hold the parsed body: not kept alive while the request waits
    name = endpoint.name
    gauge = metrics.in_flight(name)
    gauge.inc()
    start = time.perf_counter()
    try:
        contract = endpoint.contract
        columns = await asyncio.to_thread(decode, contract) if offload else decode(contract)
        if no_rows(columns):
            pred = empty_prediction(endpoint, columns, rid)
        else:
            value = _sticky(columns, key, given) if key is not None else None
            pred = await endpoint.predict(columns, alone=alone, request_id=rid, sticky=value)
    except ModelrunnerError as exc:
        metrics.observe_error(name, _version(endpoint), exc.code)
        raise
    except Exception:
        metrics.observe_error(name, _version(endpoint), "internal")
        raise
    finally:
        gauge.dec()
    metrics.observe_request(name, pred.version, protocol, time.perf_counter() - start)
    return pred


def no_rows(columns: Mapping[str, Any]) -> bool:
    """True for a batch of zero rows (judged by its first column; the validator checks the others)."""
    for col in columns.values():
        shape: tuple[int, ...] | None = getattr(col, "shape", None)
        return shape is not None and len(shape) > 0 and shape[0] == 0
    return False


def _sticky(columns: Mapping[str, Any], key: str, given: Any) -> str | None:
    """The sticky key's value: an input column of that name (first row), else what the request said."""
    from modelrunner.runner.experiment import sticky_value

    found = sticky_value(columns[key]) if key in columns else None
    return found if found is not None else sticky_value(given)


def empty_prediction(endpoint: Endpoint, columns: Mapping[str, Any], request_id: str = "") -> Prediction:
    """Zero rows in, zero rows out, without calling the model (most models refuse an empty batch: sklearn's
    "Found array with 0 sample(s)"). The inputs are still validated, so a wrong field is still a 422."""
    dep = endpoint.current
    if dep is None:
        raise Unavailable(f"endpoint {endpoint.name!r} has no model loaded yet")
    validate_batch(dep.contract.inputs, columns)
    outputs = {f.name: np.zeros((0, *(max(d, 0) for d in f.shape)), dtype=f.dtype.numpy())
               for f in dep.contract.outputs}
    return Prediction(outputs, dep.model, dep.version, dep.ref, request_id=request_id)


def endpoint_summary(endpoint: Endpoint) -> dict[str, Any]:
    """Name, readiness and the version serving now (for listings)."""
    dep = endpoint.current
    return {
        "name": endpoint.name,
        "ready": dep is not None,
        "model": dep.model if dep else None,
        "version": dep.version if dep else None,
        "ref": dep.ref if dep else None,
        "target": dep.target if dep else None,
    }
