"""The runner: endpoints that hot-swap deployments, the reconciler, the runtime, worker processes."""
