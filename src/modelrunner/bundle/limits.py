"""Expansion limits of bundle archives: a zip or tar.gz bomb is refused before it fills the disk.

Declared sizes (zip central directory, tar headers) are checked before anything is written, and the bytes
actually written are counted too, since headers can lie. The ratio is only checked past ``RATIO_FLOOR``
unpacked bytes: a small manifest or a pickle compresses well and is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrunner.errors import BundleError

RATIO_FLOOR = 64 * 1024 * 1024


def human(n: float) -> str:
    """``2147483648`` -> ``"2.0 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Limits:
    """How far an archive may expand: total bytes, ratio to its packed size, number of entries."""

    max_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0
    max_members: int = 100_000
    ratio_floor: int = RATIO_FLOOR

    @classmethod
    def from_settings(cls) -> Limits:
        from modelrunner.settings import Settings

        s = Settings()
        return cls(s.max_unpacked_bytes, s.max_expansion_ratio, s.max_archive_members)

    def tally(self, packed: int) -> Tally:
        return Tally(self, max(packed, 1))

    def check(self, unpacked: int, packed: int, *, verb: str = "expands to") -> None:
        """Refuse ``unpacked`` bytes from a ``packed``-byte archive when past a limit (naming it)."""
        if unpacked > self.max_bytes:
            raise BundleError(
                f"bundle archive refused: it {verb} more than {human(self.max_bytes)} "
                f"(limit MODELRUNNER_MAX_UNPACKED_BYTES={self.max_bytes})"
            )
        if unpacked > self.ratio_floor and unpacked > self.max_ratio * packed:
            raise BundleError(
                f"bundle archive refused: it {verb} {human(unpacked)}, {unpacked / packed:.0f} times "
                f"its packed {human(packed)} (limit {self.max_ratio:g}:1, MODELRUNNER_MAX_EXPANSION_RATIO)"
            )


class Tally:
    """Running totals of one extraction: declared sizes (before writing) and bytes written."""

    def __init__(self, limits: Limits, packed: int) -> None:
        self.limits, self.packed = limits, packed
        self.members = self.declared = self.written = 0

    def declare(self, size: int) -> None:
        """One more entry declaring ``size`` bytes; refused when the declared totals pass a limit."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise BundleError(
                f"bundle archive refused: more than {self.limits.max_members} entries "
                "(limit MODELRUNNER_MAX_ARCHIVE_MEMBERS)"
            )
        self.declared += max(size, 0)
        self.limits.check(self.declared, self.packed, verb="declares")

    def wrote(self, n: int) -> None:
        """``n`` more bytes written to disk; refused when the actual total passes a limit."""
        self.written += n
        self.limits.check(self.written, self.packed)
