"""V2 JSON answers: ``encode_outputs`` leaves float64/int/bool ``data`` as arrays for ``wire.dumps`` to write;
the bytes are exactly those of :func:`column_to_tensor`'s lists."""

from __future__ import annotations

import numpy as np
import pytest

from modelrunner.contract import column_to_tensor
from modelrunner.server.v2.codec import InferRequest, encode_outputs
from modelrunner.server.wire import dumps


@pytest.mark.parametrize(
    "column",
    [
        np.array([[np.nan, np.inf, -0.0], [1e-310, 0.1, 1 / 3]]),
        np.array([2**64 - 1, 0], np.uint64),
        np.array([-(2**63), 7], np.int64),
        np.array([True, False]),
        np.array([[1, -2]], np.int8),
        np.array([0.1, 2.5], np.float32),
        np.array(["a", "b"], dtype=object),
        np.arange(6.0).reshape(2, 3).T,  # not contiguous
    ],
)
def test_v2_json_outputs_are_the_bytes_column_to_tensor_gives(column: np.ndarray) -> None:
    tensors_, blobs = encode_outputs({"y": column}, InferRequest(inputs=[]))
    assert not blobs
    assert dumps(tensors_) == dumps([column_to_tensor("y", column)])
