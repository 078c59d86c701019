"""SPDX license identifiers and expressions, checked against the full SPDX list.

Accepted: any SPDX license id (any case; stored in canonical case, deprecated ids such as ``GPL-2.0`` as their
current form ``GPL-2.0-only``), ``LicenseRef-<idstring>`` for anything else (``Proprietary`` is stored as
``LicenseRef-Proprietary``), and SPDX expressions joining those with ``AND`` / ``OR`` / ``WITH <exception>``
and parentheses, e.g. ``"MIT OR Apache-2.0"``.

The ``license-expression`` library does the parsing; its SPDX database ships inside the package (nothing is
downloaded). It takes ~0.3 s to load, so it is loaded once, on the first license checked.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from modelrunner.errors import BundleError

_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$")
_PROPRIETARY = re.compile(r"(?<![\w.:-])proprietary(?![\w.-])", re.IGNORECASE)
_DEPRECATED_ID = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]*[0-9][A-Za-z0-9.\-]*\+?$")
"""What a deprecated SPDX id looks like (``GPL-2.0``, ``LGPL-2.1+``): no spaces, a version number."""
_EXTRA = {"openrail": "OpenRAIL"}
"""Model licenses outside the SPDX list that modelrunner always accepted (kept for existing bundles)."""
_HINT = "use an SPDX id like 'MIT' or 'Apache-2.0', or LicenseRef-<name>"


@functools.cache
def _licensing() -> Any:
    """SPDX ids and exceptions from the package's own database, with the deprecated SPDX ids as aliases.

    The library's ``get_spdx_licensing`` also maps loose names (``GPL`` -> ``GPL-1.0-or-later``,
    ``LicenseRef-MIT-TC`` -> ``MIT``): guesses we do not store, so those aliases are left out.
    """
    from license_expression import get_license_index, load_licensing_from_license_index

    index = get_license_index()  # the JSON shipped inside the package: nothing is downloaded
    return load_licensing_from_license_index(
        [
            {
                "key": lic["spdx_license_key"],
                "is_exception": lic.get("is_exception", False),
                "is_deprecated": lic.get("is_deprecated", False),
                "aliases": [
                    a
                    for a in lic.get("other_spdx_license_keys", [])
                    if _DEPRECATED_ID.match(a) and not a.lower().startswith(("licenseref-", "documentref-"))
                ],
            }
            for lic in index
            if lic.get("spdx_license_key")
        ]
    )


def normalize_license(text: str) -> str:
    """The canonical form of an SPDX id or expression; BundleError naming what is not valid."""
    if not isinstance(text, str) or not text.strip():
        raise BundleError("license must be an SPDX identifier such as 'MIT' or 'Apache-2.0'")
    from license_expression import ExpressionError

    licensing = _licensing()
    try:
        # strict: an exception only after WITH, and only an exception there
        expression = licensing.parse(text, validate=False, strict=True)
    except ExpressionError as exc:
        raise BundleError(f"invalid license {text!r}: {_reason(exc)} ({_HINT})") from None
    if expression is None:
        raise BundleError(f"invalid license {text!r}: no license in it ({_HINT})")
    for key in licensing.unknown_license_keys(expression):
        if not (_LICENSE_REF.match(key) or key.lower() == "proprietary" or key.lower() in _EXTRA):
            raise BundleError(
                f"invalid license {text!r}: {key!r} is not a known SPDX license id "
                f"(or LicenseRef-...); {_HINT}"
            )
    rendered = str(expression.render("{symbol.key}"))
    rendered = _PROPRIETARY.sub("LicenseRef-Proprietary", rendered)
    for lower, canonical in _EXTRA.items():
        rendered = re.sub(rf"(?<![\w.:-]){re.escape(lower)}(?![\w.-])", canonical, rendered, flags=re.I)
    return rendered


def _reason(exc: Exception) -> str:
    """The library's message without its position details (``for token: ... at position: 9``)."""
    return " ".join(str(exc).split(" for token:", 1)[0].split()) or "not a license expression"
