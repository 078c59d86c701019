"""The :class:`~modelrunner.monitoring.observer.Observer` the serving path is given in production: each
call recorded into the worker's Prometheus collectors (:mod:`modelrunner.monitoring.metrics`)."""

from __future__ import annotations

from modelrunner.monitoring.metrics import (
    endpoint_added,
    forget_endpoint,
    in_flight_add,
    observe_batch,
    observe_error,
    observe_request,
    observe_swap,
    set_loaded,
    set_online_labelled,
    set_online_metric,
    set_registry_contact,
    shadow_dropped,
    swap_failed,
    swap_started,
    swap_succeeded,
)


class PrometheusObserver:
    """:class:`~modelrunner.monitoring.observer.Observer` recording into these collectors (the worker's)."""

    __slots__ = ()

    def request_started(self, endpoint: str) -> None:
        in_flight_add(endpoint, 1)

    def request_ended(self, endpoint: str) -> None:
        in_flight_add(endpoint, -1)

    def request_answered(self, endpoint: str, version: int, protocol: str, seconds: float) -> None:
        observe_request(endpoint, version, protocol, seconds)

    def request_failed(self, endpoint: str, version: int | None, code: str) -> None:
        observe_error(endpoint, version, code)

    def batch(self, endpoint: str, rows: int) -> None:
        observe_batch(endpoint, rows)

    def swap_started(self, endpoint: str) -> None:
        swap_started(endpoint)

    def swap_failed(self, endpoint: str, reason: str) -> None:
        swap_failed(endpoint, reason)

    def swap_succeeded(self, endpoint: str, seconds: float, version: int, replaced: int | None) -> None:
        observe_swap(endpoint, seconds)
        swap_succeeded(endpoint)
        set_loaded(endpoint, version, 1)
        if replaced is not None and replaced != version:
            set_loaded(endpoint, replaced, 0)

    def endpoint_added(self, endpoint: str) -> None:
        endpoint_added(endpoint)

    def endpoint_removed(self, endpoint: str) -> None:
        forget_endpoint(endpoint)

    def registry_contact(self, connected: bool, stale_seconds: float) -> None:
        set_registry_contact(connected, stale_seconds)

    def online_metric(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        set_online_metric(endpoint, variant, metric, value)

    def online_labelled(self, endpoint: str, variant: str, rows: int) -> None:
        set_online_labelled(endpoint, variant, rows)

    def shadow_dropped(self, endpoint: str) -> None:
        shadow_dropped(endpoint)


PROMETHEUS = PrometheusObserver()
"""The one Prometheus observer (the collectors are per process anyway)."""
