"""Model references: ``name``, ``name@3``, ``name@production``, ``name@latest``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelrunner.errors import InvalidArgument

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
LATEST = "latest"


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``version`` or ``alias`` is set (a bare name means ``alias="latest"``)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}"

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias == LATEST


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidArgument`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (at most 128, no '@')"
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it can be set by users (not ``latest``, not a number), else raise."""
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '.', '_' or '-'"
        )
    if alias == LATEST:
        raise InvalidArgument("'latest' is reserved: it always means the newest version")
    return alias


def parse_ref(ref: str) -> Ref:
    """Parse ``name``, ``name@<int>``, ``name@<alias>`` or ``name@latest``; raise InvalidArgument."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgument(
            f"invalid model reference {ref!r}: expected name, name@<version> or name@<alias>"
        )
    text = ref.strip()
    name, sep, label = text.partition("@")
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid model reference {ref!r}: bad model name {name!r}")
    if not sep:
        return Ref(name=name, alias=LATEST)
    if label.isdigit():
        version = int(label)
        if version < 1:
            raise InvalidArgument(f"invalid model reference {ref!r}: versions start at 1")
        return Ref(name=name, version=version)
    if not ALIAS_RE.match(label):
        raise InvalidArgument(
            f"invalid model reference {ref!r}: after '@' expected a version number or an alias"
        )
    return Ref(name=name, alias=label)


TARGET_KINDS: dict[str, str] = {"pipeline": "pipeline"}
"""An endpoint target's ``kind:`` prefix -> the flavor its model ref must have (``pipeline:digits-ocr@3``)."""


def parse_target(target: str) -> tuple[str | None, str]:
    """``(kind, ref)`` of an endpoint target: ``digits@production`` -> (None, ...), ``pipeline:x@1`` ->
    ("pipeline", "x@1"). InvalidArgument for an unknown kind or a bad ref, naming it."""
    text = target.strip()
    kind, sep, ref = text.partition(":")
    if not sep:
        parse_ref(text)
        return None, text
    if kind not in TARGET_KINDS:
        known = ", ".join(f"'{k}:'" for k in TARGET_KINDS)
        raise InvalidArgument(
            f"invalid target {target!r}: unknown kind {kind + ':'!r} (known: {known}, "
            "or a model ref like 'digits@production')"
        )
    parse_ref(ref)
    return kind, ref.strip()
