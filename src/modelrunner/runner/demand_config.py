"""Options of on-demand endpoints (``serve --endpoint 'tenant-*=tenant-*@production' --max-loaded 100
--memory-budget 2GB``): the pattern syntax, byte sizes, and the limits one worker keeps its models under.

A pattern endpoint is ``NAME_GLOB=TARGET`` where ``NAME_GLOB`` has exactly one ``*`` and ``TARGET`` has at
most one: every endpoint name the glob matches serves ``TARGET`` with the ``*`` replaced by what it matched
(``tenant-7`` -> ``tenant-7@production``). A ``TARGET`` without ``*`` serves one model under many names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from modelrunner.errors import InvalidArgument

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_STAR_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
"""What ``*`` matches: a non-empty piece of a model name (letters, digits, ``.``, ``_``, ``-``)."""


def parse_bytes(text: str | int) -> int:
    """``"2GB"`` -> 2_000_000_000, ``"512MiB"`` -> 536_870_912, ``"0"`` -> 0 (no budget); InvalidArgument."""
    if isinstance(text, int):
        if text < 0:
            raise InvalidArgument(f"invalid memory size {text}: must be >= 0")
        return text
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise InvalidArgument(
            f"invalid memory size {text!r}: expected a number and a unit, e.g. 2GB, 512MiB, 750MB"
        )
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class Pattern:
    """``NAME_GLOB=TARGET`` (see the module docstring)."""

    name: str
    target: str

    @classmethod
    def parse(cls, item: str) -> Pattern:
        name, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not name or not target:
            raise InvalidArgument(
                f"invalid --endpoint {item!r}: expected NAME=TARGET, e.g. tenant-*=tenant-*"
            )
        if name.count("*") != 1 or target.count("*") > 1:
            raise InvalidArgument(
                f"invalid pattern endpoint {item!r}: the name needs exactly one '*' and the target at most "
                "one, e.g. tenant-*=tenant-*@production"
            )
        return cls(name, target)

    @property
    def _regex(self) -> re.Pattern[str]:
        before, after = self.name.split("*")
        return re.compile(f"^{re.escape(before)}({_STAR_PART}){re.escape(after)}$")

    def target_for(self, endpoint: str) -> str | None:
        """The target endpoint ``endpoint`` serves under this pattern, else None (no match)."""
        match = self._regex.match(endpoint)
        return self.target.replace("*", match.group(1)) if match else None

    def endpoint_for(self, model: str) -> str | None:
        """The endpoint name under which registry model ``model`` is served (None: no match)."""
        ref = self.target.split("@", 1)[0]
        if "*" not in ref:
            return None
        before, after = ref.split("*")
        match = re.match(f"^{re.escape(before)}({_STAR_PART}){re.escape(after)}$", model)
        return self.name.replace("*", match.group(1)) if match else None

    def __str__(self) -> str:
        return f"{self.name}={self.target}"


def is_pattern(item: str) -> bool:
    """An ``--endpoint`` whose name has a ``*``: a pattern endpoint, not a desired-state one."""
    return "*" in item.partition("=")[0]


@dataclass(frozen=True)
class DemandConfig:
    """Pattern endpoints and the limits one worker process keeps its on-demand models under.

    ``max_loaded`` (0: no limit) counts on-demand endpoints loaded (or loading) in this worker;
    ``memory_budget`` (bytes, 0: none) bounds the sum of their estimated footprints. Desired-state
    endpoints (``--endpoint NAME=TARGET``, the admin API, a V2 repository load) are pinned: never evicted and
    outside both limits."""

    patterns: tuple[Pattern, ...] = ()
    max_loaded: int = 0
    memory_budget: int = 0

    @classmethod
    def build(
        cls, patterns: Iterable[str], max_loaded: int = 0, memory_budget: str | int = 0
    ) -> DemandConfig:
        if max_loaded < 0:
            raise InvalidArgument(f"invalid --max-loaded {max_loaded}: must be >= 0 (0: no limit)")
        return cls(tuple(Pattern.parse(p) for p in patterns), max_loaded, parse_bytes(memory_budget))

    @property
    def enabled(self) -> bool:
        return bool(self.patterns)

    def target_for(self, endpoint: str) -> str | None:
        """The target of ``endpoint`` under the first pattern matching it, else None."""
        for pattern in self.patterns:
            target = pattern.target_for(endpoint)
            if target is not None:
                return target
        return None

    def endpoints_for(self, models: Iterable[str]) -> dict[str, str]:
        """Every endpoint the patterns make of registered ``models``: ``{endpoint: target}``."""
        out: dict[str, str] = {}
        for model in models:
            for pattern in self.patterns:
                name = pattern.endpoint_for(model)
                if name is not None and name not in out and self.target_for(name) is not None:
                    out[name] = self.target_for(name) or ""
        return out
