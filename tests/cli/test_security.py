"""``modelrunner token create|list|revoke`` and ``modelrunner trust`` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.cli_helpers import Cli


def test_token_lifecycle(cli: Cli, tmp_home: Path) -> None:
    from modelrunner.registry import tokens
    from modelrunner.registry.registry import Registry

    made = cli("token", "create", "--role", "deployer", "--name", "ci-bot", "--expires", "30d")
    assert made.code == 0, made.err
    value = made.out.strip()
    assert value.startswith("mrt_") and "shown once" in made.err
    listed = cli("token", "list")
    assert "ci-bot" in listed.out and "deployer" in listed.out and value.split("_", 2)[2] not in listed.out
    with Registry.from_env() as registry:
        assert tokens.verify(registry, value).role == "deployer"
        stored: Any = registry.engine.connect().exec_driver_sql("SELECT hash, salt FROM api_tokens").first()
        assert value.split("_", 2)[2] not in (stored.hash + stored.salt)
        again = cli("token", "create", "--role", "viewer", "--name", "ci-bot")
        assert again.code == 2 and "exists" in again.err
        assert cli("token", "revoke", "ci-bot").code == 0
        assert tokens.count(registry) == 0
        audit = [e.action for e in registry.audit(subject="token:ci-bot")]
        assert audit == ["token.revoke", "token.create"]


def test_bad_token_input_is_one_line(cli: Cli, tmp_home: Path) -> None:
    for args, needle in (
        (("--role", "boss", "--name", "x"), "unknown role 'boss'"),
        (("--role", "viewer", "--name", "x", "--expires", "soon"), "invalid duration"),
        (("--role", "viewer", "--name", "a b"), "invalid token name"),
    ):
        result = cli("token", "create", *args)
        assert result.code == 2 and needle in result.err and "Traceback" not in result.err
    assert "no token named 'ghost'" in cli("token", "revoke", "ghost").err


def test_trust_records_who_and_when(cli: Cli, tmp_home: Path, iris_bundle: Path) -> None:
    assert cli("push", iris_bundle).code == 0
    result = cli("trust", "iris@1")
    assert result.code == 0 and "trusted iris@1" in result.out
    assert "not found" in cli("trust", "iris@9").err.lower() or cli("trust", "iris@9").code == 2


def test_cli_through_the_server_sends_modelrunner_token(cli: Cli, tmp_path: Path, monkeypatch: Any) -> None:
    from support.auth_helpers import auth_stack

    with auth_stack(tmp_path / "served") as stack:
        monkeypatch.setenv("MODELRUNNER_TOKEN", stack.tokens["viewer"])
        refused = cli("swap", "digits", "digits@2", "--url", stack.url)
        assert refused.code == 2 and "lacks the role 'deployer'" in refused.err
        monkeypatch.setenv("MODELRUNNER_TOKEN", stack.tokens["deployer"])
        done = cli("swap", "digits", "digits@2", "--url", stack.url, "--wait")
        assert done.code == 0, done.err
        assert stack.registry.audit(limit=1, subject="endpoint:digits")[0].actor == "token:deployer-bot"
