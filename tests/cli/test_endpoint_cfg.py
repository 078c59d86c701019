"""``modelrunner endpoint set``: batching options written to the desired state; bad input is one line."""

from __future__ import annotations

from pathlib import Path

from support.cli_helpers import Cli


def test_set_batching_without_a_server_writes_the_config(cli: Cli, iris_bundle: Path, free_url: str) -> None:
    assert cli("push", iris_bundle, "--alias", "production").code == 0
    assert cli("endpoint", "create", "iris", "iris@production", "--url", free_url).code == 0
    result = cli("endpoint", "set", "iris", "--batch", "32", "--batch-latency-ms", "5", "--url", free_url)
    assert result.code == 0, result.err
    assert "iris: batching max_batch_size=32 max_latency_ms=5 " in result.out
    from modelrunner.registry.registry import Registry

    with Registry() as registry:
        state = registry.endpoint("iris")
        assert state.config == {"max_batch_size": 32, "max_latency_ms": 5.0}
        assert state.target == "iris@production" and state.previous_target is None
    latency_only = cli("endpoint", "set", "iris", "--batch-latency-ms", "2", "--url", free_url)
    assert "max_batch_size=32 max_latency_ms=2" in latency_only.out
    off = cli("endpoint", "set", "iris", "--batch", "1", "--url", free_url)
    assert off.code == 0 and "iris: batching off" in off.out


def test_no_batch_and_auto_batch_switch_the_default(cli: Cli, iris_bundle: Path, free_url: str) -> None:
    from modelrunner.registry.registry import Registry

    assert cli("push", iris_bundle, "--alias", "production").code == 0
    assert cli("endpoint", "create", "iris", "iris@production", "--url", free_url).code == 0
    off = cli("endpoint", "set", "iris", "--no-batch", "--url", free_url)
    assert off.code == 0 and "iris: batching off " in off.out, off.err
    with Registry() as registry:
        assert registry.endpoint("iris").config == {"batch": False}
    sized = cli("endpoint", "set", "iris", "--batch", "16", "--url", free_url)
    assert "iris: batching max_batch_size=16 max_latency_ms=5 " in sized.out, "a size turns batching back on"
    auto = cli("endpoint", "set", "iris", "--auto-batch", "--url", free_url)
    assert "iris: batching auto (batch-safe flavors) max_batch_size=64 " in auto.out
    with Registry() as registry:
        assert registry.endpoint("iris").config == {}
    both = cli("endpoint", "set", "iris", "--batch", "8", "--no-batch", "--url", free_url)
    assert both.code == 2 and "only one of --batch, --no-batch and --auto-batch" in both.err


def test_bad_endpoint_options_are_one_line_errors(cli: Cli, iris_bundle: Path, free_url: str) -> None:
    nothing = cli("endpoint", "set", "iris", "--url", free_url)
    assert nothing.code == 2 and "nothing to set" in nothing.err
    negative = cli("endpoint", "set", "iris", "--batch", "-3", "--url", free_url)
    assert negative.code == 2 and "max_batch_size must be an integer" in negative.err
    unknown = cli("endpoint", "set", "nope", "--batch", "8", "--url", free_url)
    assert unknown.code == 2 and "unknown endpoint 'nope'" in unknown.err
    for result in (nothing, negative, unknown):
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_set_limits_without_a_server_writes_the_config(cli: Cli, iris_bundle: Path, free_url: str) -> None:
    assert cli("push", iris_bundle, "--alias", "production").code == 0
    assert cli("endpoint", "create", "iris", "iris@production", "--url", free_url).code == 0
    result = cli(
        "endpoint",
        "set",
        "iris",
        "--concurrency",
        "2",
        "--queue",
        "16",
        "--timeout",
        "7.5",
        "--url",
        free_url,
    )
    assert result.code == 0, result.err
    auto = "batching auto (batch-safe flavors) max_batch_size=64 max_latency_ms=5"
    assert f"iris: {auto}, max_concurrency=2, max_queue=16, timeout_s=7.5 " in result.out
    from modelrunner.registry.registry import Registry

    with Registry() as registry:
        assert registry.endpoint("iris").config == {"max_concurrency": 2, "max_queue": 16, "timeout_s": 7.5}
    for args, message in (
        (("--concurrency", "0"), "max_concurrency must be an integer from 1"),
        (("--timeout", "-1"), "timeout_s must be a number of seconds"),
    ):
        bad = cli("endpoint", "set", "iris", *args, "--url", free_url)
        assert bad.code == 2 and message in bad.err and len(bad.err.strip().splitlines()) == 1, bad.err


def test_set_the_prediction_log_without_a_server(cli: Cli, iris_bundle: Path, free_url: str) -> None:
    assert cli("push", iris_bundle, "--alias", "production").code == 0
    assert cli("endpoint", "create", "iris", "iris@production", "--url", free_url).code == 0
    result = cli("endpoint", "set", "iris", "--log-predictions", "--log-inputs", "0.25", "--url", free_url)
    assert result.code == 0, result.err
    auto = "batching auto (batch-safe flavors) max_batch_size=64 max_latency_ms=5"
    assert f"iris: {auto}, log every answer, log_inputs=0.25 " in result.out
    from modelrunner.registry.registry import Registry

    with Registry() as registry:
        assert registry.endpoint("iris").config == {"log_predictions": True, "log_inputs": 0.25}
    bad = cli("endpoint", "set", "iris", "--log-inputs", "2", "--url", free_url)
    assert bad.code == 2 and "log_inputs must be a fraction" in bad.err, bad.err
