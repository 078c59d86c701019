"""The pickle choke point: :meth:`Bundle.load` asks the installed policy before a flavor that unpickles.

Loading a pickle runs arbitrary code. Library use (``load_model`` of your own file) has no policy and loads
as before; a serving worker installs one (``security.trust.install_policy``) that refuses an artifact
without a recorded trust decision (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Policy = Callable[[Path, str], None]
"""``(bundle folder, flavor name)``: returns to allow the load, raises (a ModelrunnerError) to refuse it."""

_policy: list[Policy] = []


def install(policy: Policy | None) -> None:
    """Set (or with None, clear) the process's policy."""
    _policy.clear()
    if policy is not None:
        _policy.append(policy)


def check(path: Path, flavor: str) -> None:
    """Raise when the installed policy refuses loading the pickle artifact at ``path``."""
    if _policy:
        _policy[0](path, flavor)
