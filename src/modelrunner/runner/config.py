"""An endpoint's options in the desired state: checked and written to the registry (admin API, CLI, catalog).

The options are read by :class:`~modelrunner.runner.batching.BatchConfig` (``batch``, ``max_batch_size``,
``max_latency_ms``), :class:`~modelrunner.runner.limits.LimitConfig` (``max_concurrency``, ``max_queue``,
``timeout_s``) and :class:`~modelrunner.runner.predlog.LogConfig` (``log_predictions``, ``log_inputs``,
``log_bytes_inputs``); every worker's reconciler applies a change without reloading the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelrunner.runner.batching import BatchConfig
from modelrunner.runner.limits import LimitConfig
from modelrunner.runner.predlog import LogConfig

if TYPE_CHECKING:
    from modelrunner.registry.registry import Registry
    from modelrunner.registry.types import EndpointState


def set_endpoint_config(
    registry: Registry, name: str, changes: Mapping[str, Any], actor: str | None = None
) -> EndpointState:
    """Merge ``changes`` into endpoint ``name``'s config (checked first) and write it to the desired state.

    The target stays the same, so reconcilers apply the new options without reloading the model.
    Returns the new ``EndpointState``.
    """
    state = registry.endpoint(name)
    config = {**state.config, **changes}
    if changes.get("max_batch_size") is not None and "batch" not in changes:
        config.pop("batch", None)  # a size given turns batching back on after ``batch: false``
    for key in ("batch", "max_batch_size", "max_latency_ms"):
        if key in config and config[key] is None:
            del config[key]  # null: back to the default
    check_config(config)  # InvalidArgument naming the bad option, before anything is written
    return registry.set_endpoint(name, state.target, config=config, actor=actor)


def check_config(config: Mapping[str, Any] | None) -> None:
    """Check every option of an endpoint config (batching, limits, prediction log); InvalidArgument naming a
    bad one."""
    BatchConfig.from_config(config)
    LimitConfig.from_config(config)
    LogConfig.from_config(config)
