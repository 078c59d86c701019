"""What the serving path tells the outside world about itself: an observer passed in, not a global reached.

The data plane (every request), the batcher (every merged call), the reconciler (every swap, endpoints
coming and going) and online experiments (the decider's series, dropped shadow copies) call an
:class:`Observer`. The worker's composition root (``server.compose``) passes the
Prometheus one (:class:`modelrunner.monitoring.prometheus.PrometheusObserver`); tests pass a
:class:`RecordingObserver` and read what was recorded, or :class:`NullObserver` to record nothing.

The calls on the request path (``request_started``/``request_ended`` around every request, then
``request_answered`` or ``request_failed``; ``batch``) must stay cheap: they run on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class RequestObserver(Protocol):
    """Per-request calls (the data plane) and per merged call (the batcher)."""

    def request_started(self, endpoint: str) -> None:
        """A request to ``endpoint`` is being answered (the in-flight count goes up)."""

    def request_ended(self, endpoint: str) -> None:
        """That request is over, however it ended (in-flight goes down)."""

    def request_answered(self, endpoint: str, version: int, protocol: str, seconds: float) -> None:
        """A request was answered by ``version`` over ``protocol`` in ``seconds``."""

    def request_failed(self, endpoint: str, version: int | None, code: str) -> None:
        """A request failed with error ``code`` (``version`` None when none was pinned)."""

    def batch(self, endpoint: str, rows: int) -> None:
        """One merged predict call of ``rows`` rows (batching on)."""


class SwapObserver(Protocol):
    """Calls of the reconciler and the runtime: swaps, endpoints joining or leaving the desired state, and
    whether the registry answers."""

    def swap_started(self, endpoint: str) -> None: ...

    def swap_failed(self, endpoint: str, reason: str) -> None:
        """``reason``: a short, bounded word (an error ``code``, ``incompatible``)."""

    def swap_succeeded(self, endpoint: str, seconds: float, version: int, replaced: int | None) -> None:
        """``endpoint`` serves ``version`` after a swap of ``seconds``; ``replaced`` is the version it
        served before (None at the first load)."""

    def endpoint_added(self, endpoint: str) -> None: ...

    def endpoint_removed(self, endpoint: str) -> None: ...

    def registry_contact(self, connected: bool, stale_seconds: float) -> None:
        """The registry answers (``connected``); seconds since it last did."""


class ExperimentObserver(Protocol):
    """Calls of online experiments: the decider's online metrics per variant, the shadow mirror's drops."""

    def online_metric(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        """The current value of an online ``metric`` (``requests``, ``accuracy``, ...) of ``variant``."""

    def online_labelled(self, endpoint: str, variant: str, rows: int) -> None:
        """How many of ``variant``'s predicted rows have feedback (labels) so far."""

    def shadow_dropped(self, endpoint: str) -> None:
        """A shadow copy of a request was dropped (the candidate's mirror queue was full)."""


class Observer(RequestObserver, SwapObserver, ExperimentObserver, Protocol):
    """Everything the serving path reports."""


class NullObserver:
    """Records nothing."""

    def request_started(self, endpoint: str) -> None:
        pass

    def request_ended(self, endpoint: str) -> None:
        pass

    def request_answered(self, endpoint: str, version: int, protocol: str, seconds: float) -> None:
        pass

    def request_failed(self, endpoint: str, version: int | None, code: str) -> None:
        pass

    def batch(self, endpoint: str, rows: int) -> None:
        pass

    def swap_started(self, endpoint: str) -> None:
        pass

    def swap_failed(self, endpoint: str, reason: str) -> None:
        pass

    def swap_succeeded(self, endpoint: str, seconds: float, version: int, replaced: int | None) -> None:
        pass

    def endpoint_added(self, endpoint: str) -> None:
        pass

    def endpoint_removed(self, endpoint: str) -> None:
        pass

    def registry_contact(self, connected: bool, stale_seconds: float) -> None:
        pass

    def online_metric(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        pass

    def online_labelled(self, endpoint: str, variant: str, rows: int) -> None:
        pass

    def shadow_dropped(self, endpoint: str) -> None:
        pass


@dataclass
class RecordingObserver:
    """Keeps every call as ``(name, *arguments)`` in :attr:`calls` (for tests), and the in-flight count."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    contact: tuple[bool, float] | None = None

    def named(self, name: str) -> list[tuple[Any, ...]]:
        """The recorded calls called ``name``, without the name."""
        return [call[1:] for call in self.calls if call[0] == name]

    def request_started(self, endpoint: str) -> None:
        self.in_flight[endpoint] = self.in_flight.get(endpoint, 0) + 1
        self.calls.append(("request_started", endpoint))

    def request_ended(self, endpoint: str) -> None:
        self.in_flight[endpoint] -= 1
        self.calls.append(("request_ended", endpoint))

    def request_answered(self, endpoint: str, version: int, protocol: str, seconds: float) -> None:
        self.calls.append(("request_answered", endpoint, version, protocol, seconds))

    def request_failed(self, endpoint: str, version: int | None, code: str) -> None:
        self.calls.append(("request_failed", endpoint, version, code))

    def batch(self, endpoint: str, rows: int) -> None:
        self.calls.append(("batch", endpoint, rows))

    def swap_started(self, endpoint: str) -> None:
        self.calls.append(("swap_started", endpoint))

    def swap_failed(self, endpoint: str, reason: str) -> None:
        self.calls.append(("swap_failed", endpoint, reason))

    def swap_succeeded(self, endpoint: str, seconds: float, version: int, replaced: int | None) -> None:
        self.calls.append(("swap_succeeded", endpoint, seconds, version, replaced))

    def endpoint_added(self, endpoint: str) -> None:
        self.calls.append(("endpoint_added", endpoint))

    def endpoint_removed(self, endpoint: str) -> None:
        self.calls.append(("endpoint_removed", endpoint))

    def registry_contact(self, connected: bool, stale_seconds: float) -> None:
        self.contact = (connected, stale_seconds)  # every 0.5 s: kept, not appended to ``calls``

    def online_metric(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        self.calls.append(("online_metric", endpoint, variant, metric, value))

    def online_labelled(self, endpoint: str, variant: str, rows: int) -> None:
        self.calls.append(("online_labelled", endpoint, variant, rows))

    def shadow_dropped(self, endpoint: str) -> None:
        self.calls.append(("shadow_dropped", endpoint))
