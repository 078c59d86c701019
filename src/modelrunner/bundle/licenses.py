"""SPDX license identifiers and expressions (a compact list of the commonly used ids).

Accepted: a known SPDX id (any case; stored in canonical case), ``LicenseRef-<idstring>`` for anything
else (``Proprietary`` is stored as ``LicenseRef-Proprietary``), and SPDX expressions joining those with
``AND`` / ``OR`` / ``WITH <exception>`` and parentheses, e.g. ``"MIT OR Apache-2.0"``.
"""

from __future__ import annotations

import re

from modelrunner.errors import BundleError

SPDX_IDS: tuple[str, ...] = (
    "0BSD", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0", "APSL-2.0",
    "Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause",
    "BSD-3-Clause-Clear", "BSD-4-Clause", "BSL-1.0", "CAL-1.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-NC-4.0",
    "CC-BY-NC-ND-4.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0",
    "CDDL-1.0", "CDDL-1.1", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0", "CECILL-2.1", "ECL-2.0", "EPL-1.0",
    "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "GFDL-1.3-only", "GFDL-1.3-or-later", "GPL-2.0-only",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "ISC", "LGPL-2.1-only", "LGPL-2.1-or-later",
    "LGPL-3.0-only", "LGPL-3.0-or-later", "LPPL-1.3c", "MIT", "MIT-0", "MPL-1.1", "MPL-2.0", "MS-PL",
    "MS-RL", "MulanPSL-2.0", "NCSA", "ODbL-1.0", "OFL-1.1", "OpenRAIL", "OSL-3.0", "PostgreSQL",
    "PSF-2.0", "Python-2.0", "Ruby", "Unicode-3.0", "Unlicense", "UPL-1.0", "Vim", "W3C", "WTFPL",
    "X11", "Zlib", "ZPL-2.1",
)  # fmt: skip

SPDX_EXCEPTIONS: tuple[str, ...] = (
    "Autoconf-exception-3.0", "Bison-exception-2.2", "Classpath-exception-2.0", "GCC-exception-3.1",
    "LLVM-exception", "OpenJDK-assembly-exception-1.0", "Qt-LGPL-exception-1.1",
)  # fmt: skip

_CANON = {i.lower(): i for i in SPDX_IDS}
_EXC = {e.lower(): e for e in SPDX_EXCEPTIONS}
_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def normalize_license(text: str) -> str:
    """The canonical form of an SPDX id or expression; BundleError naming what is not valid."""
    if not isinstance(text, str) or not text.strip():
        raise BundleError("license must be an SPDX identifier such as 'MIT' or 'Apache-2.0'")
    tokens = _TOKEN.findall(text)
    out = _Parser(tokens, text).expression()
    return " ".join(out).replace("( ", "(").replace(" )", ")")


class _Parser:
    """Recursive descent over ``expr := term ((AND|OR) term)*``, ``term := id [WITH exc] | ( expr )``."""

    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.text = text

    def fail(self, why: str) -> BundleError:
        hint = "use an SPDX id like 'MIT' or 'Apache-2.0'"
        return BundleError(f"invalid license {self.text!r}: {why} ({hint})")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.pos += 1
        return tok

    def expression(self, depth: int = 0) -> list[str]:
        out = self.term(depth)
        while (op := self.peek()) is not None and op.upper() in ("AND", "OR"):
            self.pos += 1
            out += [op.upper(), *self.term(depth)]
        if depth == 0 and self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return out

    def term(self, depth: int) -> list[str]:
        tok = self.take()
        if tok == "(":
            inner = self.expression(depth + 1)
            if self.take() != ")":
                raise self.fail("missing ')'")
            return ["(", *inner, ")"]
        out = [self.license_id(tok)]
        if (nxt := self.peek()) is not None and nxt.upper() == "WITH":
            self.pos += 1
            exc = self.take()
            if exc.lower() not in _EXC:
                raise self.fail(f"unknown license exception {exc!r}")
            out += ["WITH", _EXC[exc.lower()]]
        return out

    def license_id(self, tok: str) -> str:
        plus = tok.endswith("+")
        base = tok[:-1] if plus else tok
        if base.lower() == "proprietary":
            return "LicenseRef-Proprietary"
        if _LICENSE_REF.match(base):
            return tok
        if base.lower() in _CANON:
            return _CANON[base.lower()] + ("+" if plus else "")
        raise self.fail(f"{tok!r} is not a known SPDX license id (or LicenseRef-...)")
