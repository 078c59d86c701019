"""Request ids, variants and sticky keys on the wire, the same for every protocol (no web framework here).

Every answer says which request it answers and which variant of the endpoint produced it:

* the request id is the client's ``x-request-id`` (V2: else the request's ``id``), else a new one
  (32 random hex digits, as ``uuid4().hex``); it is what ``POST .../feedback`` joins the ground truth to;
* the variant is ``production`` or ``candidate`` (an experiment's canary/ab share; see
  ``runner/experiment.py``); without an experiment, ``production``.

Native JSON bodies carry ``request_id`` and ``variant`` beside ``model``/``version``; every HTTP answer also
has the ``x-request-id`` and ``x-modelrunner-variant`` headers; V2 answers set ``id`` and
``parameters.variant``/``parameters.request_id``; gRPC answers send both as trailing metadata.

An experiment's sticky key is looked up in the request: an input column of that name (its first row), a
top-level field of a JSON body, the header ``x-<key>`` or ``<key>``, or a V2 ``parameters[key]``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelrunner.errors import InvalidArgument

REQUEST_ID = "x-request-id"
VARIANT = "x-modelrunner-variant"
MAX_REQUEST_ID = 128

Lookup = Callable[[str], Any]
"""``key -> value or None``: where a sticky key's value is found in one request."""


_POOL_IDS = 256
_pool = b""
_pos = 0
_pool_lock = threading.Lock()


def new_request_id() -> str:
    """32 random hex digits (128 bits from ``os.urandom``), drawn from a pool read 256 ids at a time: one
    system call per request (which also hands the GIL to the predict threads) cost more than the id."""
    global _pool, _pos
    with _pool_lock:
        pool, pos = _pool, _pos
        if pos >= len(pool):
            pool = _pool = os.urandom(16 * _POOL_IDS)
            pos = 0
        _pos = pos + 16
    return pool[pos : pos + 16].hex()  # (slicing the rest off the pool copied ~2 KB per request)


def request_id(given: str | bytes | None = None) -> str:
    """The client's request id (checked: 1-128 visible ASCII characters, InvalidArgument naming the
    header otherwise), else a new one."""
    if given is None:
        return new_request_id()
    text = given.decode("latin-1") if isinstance(given, bytes) else str(given)
    text = text.strip()
    if not text:
        return new_request_id()
    if len(text) > MAX_REQUEST_ID or not (text.isascii() and text.isprintable() and " " not in text):
        raise InvalidArgument(
            f"{REQUEST_ID}: expected at most {MAX_REQUEST_ID} visible ASCII characters, got {text[:40]!r}",
            field=REQUEST_ID,
        )
    return text


def raw_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """A header of a raw ASGI scope (lower-case ``name``)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def header_lookup(get: Callable[[str], Any]) -> Lookup:
    """A sticky lookup over headers: ``x-<key>`` first, then ``<key>`` (``get`` is case-insensitive)."""

    def lookup(key: str) -> Any:
        key = key.lower()
        value = get(f"x-{key}")
        return value if value is not None else get(key)

    return lookup


def raw_header_lookup(headers: Iterable[tuple[bytes, bytes]]) -> Lookup:
    items = list(headers)

    def get(name: str) -> str | None:
        value = raw_header(items, name.encode("latin-1"))
        return value.decode("latin-1") if value is not None else None

    return header_lookup(get)


def mapping_lookup(values: Any) -> Lookup:
    """A sticky lookup in a JSON object (a body's top-level fields, V2 ``parameters``)."""

    def lookup(key: str) -> Any:
        return values.get(key) if isinstance(values, Mapping) else None

    return lookup


def chain(*lookups: Lookup | None) -> Lookup:
    """The first lookup that finds the key."""
    present = [lk for lk in lookups if lk is not None]

    def lookup(key: str) -> Any:
        for lk in present:
            value = lk(key)
            if value is not None:
                return value
        return None

    return lookup


def lookup(fields: Any, header: Callable[[str], Any]) -> Lookup:
    """The usual sticky lookup: a field of ``fields`` (body fields, V2 parameters), else a header."""
    return chain(mapping_lookup(fields), header_lookup(header))


def headers_of(pred: Any) -> dict[str, str]:
    """``x-request-id`` and ``x-modelrunner-variant`` of an answer."""
    return {REQUEST_ID: pred.request_id, VARIANT: pred.variant}


_RAW_REQUEST_ID = REQUEST_ID.encode("latin-1")
_RAW_VARIANT = VARIANT.encode("latin-1")


def raw_headers_of(pred: Any) -> list[tuple[bytes, bytes]]:
    """:func:`headers_of` as raw ASGI headers (for answers sent on raw ASGI)."""
    return [
        (_RAW_REQUEST_ID, pred.request_id.encode("latin-1")),
        (_RAW_VARIANT, pred.variant.encode("latin-1")),
    ]


def body_fields(pred: Any) -> dict[str, Any]:
    """The fields a native JSON answer carries besides model and version."""
    return {"request_id": pred.request_id, "variant": pred.variant}
