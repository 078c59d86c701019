"""Hostile bundle archives for tests: a real zip bomb built in milliseconds, a YAML alias bomb.

Compressing 2 GiB of zeros takes ~40 s; instead one 1 MiB block is deflated once (ending in a full flush,
which resets the compressor, so every further block compresses to the same bytes) and repeated.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MIB = 1024 * 1024
ZERO_CRC_2GIB = 0x4DBDF21C  # zlib.crc32 of 2**31 zero bytes (computed once: 2048 x crc32(bytes(MIB)))
MANIFEST = b"name: bomb\nflavor: python\n"


def _deflated_zeros(mib: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    return block * mib + comp.flush(zlib.Z_FINISH)


def _entry(name: bytes, method: int, crc: int, csize: int, usize: int) -> tuple[bytes, bytes]:
    """(local header, central directory header without the offset) of one member, made on Unix."""
    common = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, csize, usize)
    local = struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(name), 0) + name
    central = (
        struct.pack("<IH", 0x02014B50, (3 << 8) | 20)
        + common
        + struct.pack("<HHHHHI", len(name), 0, 0, 0, 0, 0o100644 << 16)
    )
    return local, central


def zip_bomb(path: Path, mib: int = 2048) -> Path:
    """A valid zip: a manifest and ``weights.bin`` of ``mib`` MiB of zeros (2 GiB from ~2 MiB: 1024:1)."""
    data = _deflated_zeros(mib)
    usize = mib * MIB
    crc = ZERO_CRC_2GIB if mib == 2048 else _zero_crc(mib)
    members = [
        (b"modelrunner.yaml", 0, zlib.crc32(MANIFEST), MANIFEST, len(MANIFEST)),
        (b"weights.bin", 8, crc, data, usize),
    ]
    body, directory = b"", b""
    for name, method, member_crc, payload, size in members:
        local, central = _entry(name, method, member_crc, len(payload), size)
        directory += central + struct.pack("<I", len(body)) + name
        body += local + payload
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)
    return path


def _zero_crc(mib: int) -> int:
    crc, block = 0, bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return crc


def yaml_alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs' in YAML: a few hundred bytes whose expansion has 10**levels leaves."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"description: *a{levels - 1}")
    return "\n".join(lines) + "\n"
