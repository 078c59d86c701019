"""``modelrunner train``: one-line errors for bad options, exit 0 with the reason when nothing is due, the
lock refusal."""

from __future__ import annotations

from pathlib import Path

from modelrunner.registry import Registry
from support.cli_helpers import Cli
from support.training_helpers import serve_digits

TRAINER = (
    "from sklearn.neighbors import KNeighborsClassifier\n\n"
    "def train(data, base):\n    return KNeighborsClassifier(3).fit(data.X, data.y)\n"
)


def test_bad_options_are_one_line_errors(cli: Cli, tmp_path: Path) -> None:
    missing = cli("train", "digits", "--trainer", tmp_path / "nope.py:train")
    assert missing.code == 2 and "not found" in missing.err and len(missing.err.strip().splitlines()) == 1
    trainer = tmp_path / "t.py"
    trainer.write_text(TRAINER)
    for args, says in (
        (["--trigger", "sometimes"], "expected 'drift'"),
        (["--rollout", "blue-green"], "--rollout"),
        (["--require", "accuracy>>1"], "accuracy>>1"),
        (["--window", "soon"], "--window"),
    ):
        bad = cli("train", "digits", "--trainer", f"{trainer}:train", *args)
        assert bad.code == 2 and says in bad.err and len(bad.err.strip().splitlines()) == 1, bad


def test_nothing_due_exits_0_and_a_held_lock_refuses(cli: Cli, tmp_path: Path) -> None:
    trainer = tmp_path / "t.py"
    trainer.write_text(TRAINER)
    quiet = cli("train", "digits", "--trainer", f"{trainer}:train", "--trigger", "labels>=10")
    assert quiet.code == 0 and "nothing to do: labels>=10: 0 new labelled rows" in quiet.out
    with Registry() as registry:
        serve_digits(registry, tmp_path)
        holder = registry.start_training("digits", trigger="manual")
    locked = cli("train", "digits", "--trainer", f"{trainer}:train")
    assert locked.code == 2 and holder.id in locked.out
