"""server/request_meta.py: new request ids are 32 random hex digits, unique; a client's id is checked."""

from __future__ import annotations

import pytest

from modelrunner.errors import InvalidArgument
from modelrunner.server import request_meta


def test_new_request_ids_are_unique_hex_across_pool_refills() -> None:
    ids = [request_meta.request_id() for _ in range(3 * request_meta._POOL_IDS + 5)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(request_meta.request_id(b"  ")) == 32, "a blank header gets a new id"


def test_a_client_request_id_is_kept_or_refused_naming_the_header() -> None:
    assert request_meta.request_id(b"r-17") == "r-17"
    with pytest.raises(InvalidArgument) as err:
        request_meta.request_id("bad id")
    assert err.value.details.get("field") == request_meta.REQUEST_ID
