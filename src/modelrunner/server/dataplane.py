"""The data plane: the one protocol-neutral object every adapter calls (as MLServer's ``DataPlane``).

Native REST (routed and plain), V2 REST, gRPC (V2 and the per-contract services) and the protobuf route
decode their wire format, call :meth:`DataPlane.infer` and encode the :class:`Prediction` back. Health,
liveness, readiness, model metadata and the version check of ``.../versions/{v}`` are answered here once,
for every protocol; every request is reported here to the observer it is given (``monitoring.observer``;
Prometheus in a worker), so every protocol counts the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from modelrunner.contract import Contract
from modelrunner.contract.validate import validate_batch
from modelrunner.errors import ModelrunnerError, NotFound, Unavailable
from modelrunner.monitoring.observer import RequestObserver
from modelrunner.monitoring.prometheus import PROMETHEUS
from modelrunner.runner.endpoint import Endpoint, Prediction
from modelrunner.server import request_meta
from modelrunner.settings import Settings
from modelrunner.version import package_version

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry

Decoder = Callable[[Contract], Mapping[str, np.ndarray]]
"""Turns a request into columns, given the contract of the version serving now."""

OFFLOAD_BYTES = 256 * 1024
"""Bodies larger than this are parsed and decoded in a thread, not on the event loop: a 32 MiB body takes
seconds to decode, and the worker's other requests must not wait for it. Smaller ones stay on the loop,
where they cost less than a hand-off to a thread (the 1-row hot path is ~1 KB)."""

SERVER_NAME = "modelrunner"


class RuntimeLike(Protocol):
    """What the server needs of :class:`modelrunner.runner.runtime.Runtime` (``registry`` and ``wake``: what
    the web catalog needs of it, ``catalog.web.Runtime``; a runtime without a registry mounts no catalog)."""

    @property
    def endpoints(self) -> Mapping[str, Endpoint]: ...

    @property
    def registry(self) -> Registry: ...

    def wake(self) -> None: ...

    def get(self, name: str) -> Endpoint: ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class DataPlane:
    """Inference, health and metadata over one runtime (one per worker process), for every protocol;
    requests are reported to ``observer`` (Prometheus unless given)."""

    def __init__(
        self, runtime: RuntimeLike, settings: Settings | None = None, observer: RequestObserver | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or Settings()
        self.observer: RequestObserver = observer if observer is not None else PROMETHEUS
        self.max_bytes = self.settings.max_request_bytes
        self.max_rows = self.settings.max_request_rows
        self.demand = getattr(runtime, "demand", None)  # on-demand endpoints (runner/ondemand.py), if any

    @property
    def endpoints(self) -> Mapping[str, Endpoint]:
        return self.runtime.endpoints

    @property
    def registry(self) -> Any:
        """The runtime's registry (None for a runtime without one: tests, a static set of endpoints)."""
        return getattr(self.runtime, "registry", None)

    # -- inference -------------------------------------------------------------------------------------

    def endpoint(self, name: str, version: str | None = None, *, hint: str = "") -> Endpoint:
        """The endpoint ``name`` (NotFound); with a ``version``, only while that version serves (a NotFound
        ending with the protocol's ``hint`` otherwise, Unavailable while nothing is loaded)."""
        endpoint = self.runtime.get(name)
        if version:
            dep = endpoint.current
            if dep is None and self.demand is not None and self.demand.loads(name):
                return endpoint  # loaded by the request; ``infer`` checks the version that answered
            if dep is None:
                raise Unavailable(f"model {name!r} has no version loaded yet")
            if str(dep.version) != version:
                raise NotFound(
                    f"model {name!r} serves version {dep.version}, not {version!r}"
                    + (f" ({hint})" if hint else "")
                )
        return endpoint

    async def infer(
        self,
        endpoint: Endpoint,
        decode: Decoder,
        protocol: str,
        *,
        alone: bool = False,
        offload: bool = False,
        version: str | None = None,
        request_id: str | bytes | None = None,
        sticky: request_meta.Lookup | None = None,
    ) -> Prediction:
        """Decode against the serving contract, predict on the pinned version, record metrics.

        ``alone`` keeps the request out of batching (a traced request: its pipeline steps' times are its
        own); ``offload`` decodes in a thread (a large body: see :data:`OFFLOAD_BYTES`); ``version`` (as
        asked in the request) must still be the one that answered, else Unavailable (retry).
        ``request_id``: the client's (checked), else a new one; ``sticky``: where the running experiment's
        sticky key is found besides the input columns (headers, body fields, V2 parameters: see
        ``request_meta``). The Prediction says both the request id and the variant that answered."""
        rid = request_meta.new_request_id() if request_id is None else request_meta.request_id(request_id)
        key = endpoint.sticky_key
        given = sticky(key) if key is not None and sticky is not None else None
        sticky = None  # the lookup may hold the parsed body: not kept alive while the request waits
        name, observer = endpoint.name, self.observer
        observer.request_started(name)
        start = time.perf_counter()
        demand = held = None
        try:
            if demand := self.demand:  # loaded now if needed; not evicted until the request ends
                held = await demand.enter(endpoint)
                endpoint = held or endpoint
            contract = endpoint.contract
            columns = await asyncio.to_thread(decode, contract) if offload else decode(contract)
            if no_rows(columns):
                pred = empty_prediction(endpoint, columns, rid)
            else:
                value = _sticky(columns, key, given) if key is not None else None
                pred = await endpoint.predict(columns, alone=alone, request_id=rid, sticky=value)
        except ModelrunnerError as exc:
            observer.request_failed(name, _version(endpoint), exc.code)
            raise
        except Exception:
            observer.request_failed(name, _version(endpoint), "internal")
            raise
        finally:
            if held is not None and demand is not None:
                demand.exit(name)
            observer.request_ended(name)
        observer.request_answered(name, pred.version, protocol, time.perf_counter() - start)
        if version and str(pred.version) != version:
            raise Unavailable(
                f"model {endpoint.name!r} switched to version {pred.version} during the request; retry"
            )
        return pred

    # -- health and metadata ---------------------------------------------------------------------------

    @staticmethod
    def live() -> bool:
        return True

    def ready(self) -> bool:
        """The server is ready: started, every endpoint loaded or refused for good (``runtime.ready``)."""
        return bool(self.runtime.ready)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """``/readyz``: 200 once the runtime has started and every endpoint has settled — it serves a
        version, or its load failed for good (named under ``not_serving`` with the error; its requests
        answer 503) — else 503 naming the endpoints still loading or retrying (``waiting_for``) and why."""
        not_serving = {
            name: {"state": ep.state, "error": ep.error}
            for name, ep in sorted(self.endpoints.items())
            if not ep.ready
        }
        waiting = [name for name, row in not_serving.items() if row["state"] != "failed"]
        if self.runtime.ready and not waiting:
            return 200, {
                "status": "ready",
                **({"not_serving": not_serving} if not_serving else {}),
                **self._registry_contact(),
            }
        return 503, {"status": "not ready", "waiting_for": waiting, "not_serving": not_serving}

    def _registry_contact(self) -> dict[str, Any]:
        """``{"registry": {"connected", "stale_s"[, "stale"]}}`` when the runtime tracks its registry: a
        worker cut off it stays ready (it answers with the versions it loaded) and says it is stale."""
        contact = getattr(self.runtime, "registry_contact", None)
        if not callable(contact):
            return {}
        detail = dict(contact())
        if not detail.get("connected", True):
            detail["stale"] = True
        return {"registry": detail}

    @staticmethod
    def server_metadata(extensions: Sequence[str]) -> dict[str, Any]:
        """V2 server metadata: name, version and the protocol's ``extensions``."""
        return {"name": SERVER_NAME, "version": package_version(), "extensions": list(extensions)}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """``name`` (NotFound) has a version loaded — ``version`` itself, when given."""
        dep = self.runtime.get(name).current
        return dep is not None and (not version or str(dep.version) == version)

    def model_metadata(self, name: str, version: str | None = None, *, hint: str = "") -> dict[str, Any]:
        """V2 model metadata (inputs/outputs) of the version serving ``name`` (see :meth:`endpoint`)."""
        from modelrunner.contract.schema import v2_metadata

        dep = self.endpoint(name, version, hint=hint).current
        if dep is None:
            raise Unavailable(f"model {name!r} has no version loaded yet")
        return v2_metadata(dep.contract, name, [str(dep.version)], SERVER_NAME)

    def summaries(self) -> list[dict[str, Any]]:
        """Every endpoint's :func:`endpoint_summary`, by name."""
        return sorted((endpoint_summary(ep) for ep in self.endpoints.values()), key=lambda e: e["name"])


def _version(endpoint: Endpoint) -> int | None:
    dep = endpoint.current
    return dep.version if dep is not None else None


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
    outputs = {
        f.name: np.zeros((0, *(max(d, 0) for d in f.shape)), dtype=f.dtype.numpy())
        for f in dep.contract.outputs
    }
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
