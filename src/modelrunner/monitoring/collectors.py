"""The runner's Prometheus collectors (one :class:`Collectors` per process, built lazily by
:mod:`modelrunner.monitoring.metrics`, which records into them and renders them)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
SWAP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Collectors:
    """Every collector of the runner, registered in a private registry (never the global one)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the output and multiprocess lacks them
        reg = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelrunner_requests",
            "Predict requests answered, by endpoint, version and protocol.",
            ["endpoint", "version", "protocol"],
            registry=reg,
        )
        self.errors = Counter(
            "modelrunner_request_errors",
            "Predict requests that failed, by endpoint, version and code.",
            ["endpoint", "version", "code"],
            registry=reg,
        )
        self.latency = Histogram(
            "modelrunner_request_duration_seconds",
            "Predict latency in seconds, by endpoint and version.",
            ["endpoint", "version"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "modelrunner_requests_in_flight",
            "Predict requests being answered now, by endpoint.",
            ["endpoint"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.swaps_started = Counter(
            "modelrunner_swaps_started", "Swaps started, by endpoint.", ["endpoint"], registry=reg
        )
        self.swaps_succeeded = Counter(
            "modelrunner_swaps_succeeded",
            "Swaps that switched the endpoint, by endpoint.",
            ["endpoint"],
            registry=reg,
        )
        self.swaps_failed = Counter(
            "modelrunner_swaps_failed",
            "Swaps that failed (old version kept), by endpoint and reason.",
            ["endpoint", "reason"],
            registry=reg,
        )
        self.swap_duration = Histogram(
            "modelrunner_swap_duration_seconds",
            "Load + warm-up + switch time of a swap, by endpoint.",
            ["endpoint"],
            buckets=SWAP_BUCKETS,
            registry=reg,
        )
        self.loaded = Gauge(
            "modelrunner_loaded_version",
            "Worker processes serving this endpoint version (1 per worker; 0 once unloaded).",
            ["endpoint", "version"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.step_latency = Histogram(
            "modelrunner_pipeline_step_duration_seconds",
            "Latency of one pipeline step in seconds (all its predict calls), by pipeline and step.",
            ["pipeline", "step"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_size = Histogram(
            "modelrunner_batch_size",
            "Rows per merged predict call of an endpoint with batching on (one observation per batch).",
            ["endpoint"],
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.feature_drift = Gauge(
            "modelrunner_feature_drift",
            "Drift score of one input or output feature over the monitoring window (PSI for numeric "
            "features, Jensen-Shannon distance for categorical ones), by endpoint, version and feature.",
            ["endpoint", "version", "feature"],
            multiprocess_mode="mostrecent",
            registry=reg,
        )
        self.drift_alert = Gauge(
            "modelrunner_drift_alert",
            "1 while a monitoring alert (drift, quality, accuracy) fires, else 0.",
            ["endpoint", "kind"],
            multiprocess_mode="mostrecent",
            registry=reg,
        )
        self.estimated_accuracy = Gauge(
            "modelrunner_estimated_accuracy",
            "Accuracy estimated without labels from the model's confidence (CBPE-like), by endpoint and "
            "version.",
            ["endpoint", "version"],
            multiprocess_mode="mostrecent",
            registry=reg,
        )
        self.registry_connected = Gauge(
            "modelrunner_registry_connected",
            "1 while every worker reaches the registry database (its last poll or heartbeat is recent), "
            "else 0: the worker keeps serving its last versions but misses changes.",
            multiprocess_mode="livemin",
            registry=reg,
        )
        self.registry_stale = Gauge(
            "modelrunner_registry_stale_seconds",
            "Seconds since the registry database last answered (the worst worker); the desired state may "
            "have changed since.",
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.online = Gauge(
            "modelrunner_online_metric",
            "Online metric of an experiment's variant (accuracy, error_rate, p99_ms, ...), from the "
            "prediction log and feedback.",
            ["endpoint", "variant", "metric"],
            multiprocess_mode="mostrecent",
            registry=reg,
        )
        self.online_labelled = Gauge(
            "modelrunner_online_labelled",
            "Logged predictions of an experiment's variant joined with feedback.",
            ["endpoint", "variant"],
            multiprocess_mode="mostrecent",
            registry=reg,
        )
        self.shadow_dropped = Counter(
            "modelrunner_shadow_dropped",
            "Shadow copies not sent to the candidate because its queue was full, by endpoint.",
            ["endpoint"],
            registry=reg,
        )
        self.log_dropped = Counter(
            "modelrunner_prediction_log_dropped",
            "Logged predictions dropped (buffer full or the database refused them), by endpoint.",
            ["endpoint"],
            registry=reg,
        )
        self.cache: dict[tuple[Any, ...], Any] = {}
