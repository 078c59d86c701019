"""A feature of the tabular end-to-end model (importable, so its pickle loads): days since 2024-01-01 of a
datetime column, whatever its unit (pandas trains on ns, a served batch is datetime64[us])."""

from __future__ import annotations

from typing import Any

import numpy as np


def days_since_2024(frame: Any) -> np.ndarray:
    import pandas as pd

    col = frame.iloc[:, 0]
    return ((col - pd.Timestamp("2024-01-01")).dt.total_seconds() / 86400).to_numpy().reshape(-1, 1)
