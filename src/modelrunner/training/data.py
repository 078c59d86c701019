"""What a trainer gets: the original training set plus the labelled rows of the feedback log.

The original set is found through ``--data`` (a ``.npz``/``.csv``/``.parquet`` data set or a callable
``pkg.module:function`` / ``file.py:function`` returning ``(columns, target)``); its sha256 is compared with
the ``training_data_sha256`` the parent bundle recorded. The feedback rows are the endpoint's logged
requests with their inputs (endpoint config ``log_inputs``) joined with the feedback sent for them
(``Registry.labelled_inputs``), over ``window_s``. A random ``holdout`` share of them (fixed seed) is kept out
of training: the candidate is evaluated on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from modelrunner.bundle.provenance import sha256_of
from modelrunner.contract import Contract
from modelrunner.contract.codecs import columns_from_json
from modelrunner.contract.validate import validate_batch
from modelrunner.errors import InvalidArgument, ModelrunnerError
from modelrunner.evaluation.datasets import Dataset, load_dataset, sha256_columns
from modelrunner.registry.tables import utcnow
from modelrunner.training.loader import load_callable

Columns = dict[str, np.ndarray]


@dataclass
class TrainingData:
    """``X``: the inputs (an array for a one-input model, else the columns), ``y``: the targets; the original
    rows come first, then the labelled feedback rows. ``columns`` always holds the inputs by field name."""

    X: Any
    y: np.ndarray
    columns: Columns
    base_rows: int
    feedback_rows: int
    sha256: str
    base_sha256: str | None = None
    base_matches_parent: bool | None = None
    window_s: float | None = None
    balanced: bool = False
    holdout_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(len(self.y))

    def summary(self) -> dict[str, Any]:
        """The lineage record: row counts, hashes, window."""
        return {
            "sha256": self.sha256,
            "rows": self.rows,
            "base_rows": self.base_rows,
            "feedback_rows": self.feedback_rows,
            "holdout_rows": self.holdout_rows,
            "base_sha256": self.base_sha256,
            "base_matches_parent": self.base_matches_parent,
            "window_s": self.window_s,
            "balanced": self.balanced,
        }


def load_base(source: str | None, contract: Contract) -> Dataset | None:
    """The original training set named by ``--data`` (None without one)."""
    if not source:
        return None
    text = str(source)
    if ":" in text and not text.endswith((".npz", ".csv", ".parquet", ".pq")):
        loaded = load_callable(text, what="data")
        name = contract.inputs[0].name if len(contract.inputs) == 1 else "input"

        def columns_and_target() -> tuple[Any, Any]:
            got = loaded.fn()
            if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], np.ndarray):
                return {name: got[0]}, got[1]  # (X, y) of a one-input model
            return got  # type: ignore[no-any-return]

        ds = load_dataset(columns_and_target)
        return Dataset(name=text, columns=ds.columns, target=ds.target, sha256=ds.sha256, source=text)
    return load_dataset(text)


def feedback_rows(
    registry: Any, endpoint: str, contract: Contract, *, window_s: float | None
) -> tuple[Columns, np.ndarray]:
    """The endpoint's labelled logged inputs over the window as columns + targets (one row per input row)."""
    since = utcnow() - timedelta(seconds=window_s) if window_s else None
    parts: list[Columns] = []
    targets: list[np.ndarray] = []
    for row in registry.labelled_inputs(endpoint, since=since):
        try:
            cols = validate_batch(
                contract.inputs, columns_from_json(row.inputs, contract.inputs), allow_extra=True
            )
        except ModelrunnerError:
            continue  # inputs logged under an older contract: not usable for this one
        n = len(next(iter(cols.values()))) if cols else 0
        target = np.atleast_1d(np.asarray(row.target))
        if n == 0 or len(target) != n:
            continue
        parts.append(cols)
        targets.append(target)
    if not parts:
        empty = {
            f.name: np.zeros((0, *[max(d, 0) for d in f.shape]), dtype=f.dtype.numpy())
            for f in contract.inputs
        }
        return empty, np.zeros(0)
    names = list(parts[0])
    return {k: np.concatenate([p[k] for p in parts]) for k in names}, np.concatenate(targets)


def _take(cols: Columns, idx: np.ndarray) -> Columns:
    return {k: v[idx] for k, v in cols.items()}


def balance(cols: Columns, y: np.ndarray, seed: int = 0) -> tuple[Columns, np.ndarray]:
    """Oversample every class (with replacement, fixed seed) to the size of the largest one."""
    if len(y) == 0:
        return cols, y
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    top = int(counts.max())
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), size=top, replace=True) for c in classes])
    rng.shuffle(idx)
    return _take(cols, idx), y[idx]


def split_holdout(
    cols: Columns, y: np.ndarray, share: float, seed: int = 0
) -> tuple[Columns, np.ndarray, Columns, np.ndarray]:
    """(train cols, train y, held-out cols, held-out y): a random ``share`` of the rows held out."""
    if not 0 <= share < 1:
        raise InvalidArgument(f"--holdout must be a share from 0 to below 1, got {share}", field="holdout")
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(len(y) * share))
    held, kept = np.sort(order[:cut]), np.sort(order[cut:])
    return _take(cols, kept), y[kept], _take(cols, held), y[held]


def build(
    registry: Any,
    endpoint: str,
    contract: Contract,
    *,
    base: Dataset | None,
    parent_sha256: str | None,
    window_s: float | None,
    holdout: float,
    balanced: bool,
) -> tuple[TrainingData, Dataset]:
    """The trainer's data and the held-out data set of recent labelled rows the candidate is judged on."""
    fb_cols, fb_y = feedback_rows(registry, endpoint, contract, window_s=window_s)
    tr_cols, tr_y, ho_cols, ho_y = split_holdout(fb_cols, fb_y, holdout)
    if balanced:
        tr_cols, tr_y = balance(tr_cols, tr_y)
    base_cols = base.inputs_for(contract) if base is not None else None
    if base_cols is not None and base is not None:
        cols = {k: np.concatenate([np.asarray(base_cols[k]), tr_cols[k]]) for k in base_cols}
        y = np.concatenate([np.asarray(base.target), tr_y.astype(np.asarray(base.target).dtype, copy=False)])
    else:
        cols, y = tr_cols, tr_y
    single = contract.inputs[0].name if len(contract.inputs) == 1 else None
    base_sha = _base_sha(base, base_cols, single)
    data = TrainingData(
        X=cols[single] if single else cols,
        y=y,
        columns=cols,
        base_rows=base.rows if base else 0,
        feedback_rows=int(len(tr_y)),
        sha256=sha256_of({**cols, "__target__": y}),
        base_sha256=base_sha,
        base_matches_parent=(base_sha == parent_sha256) if base_sha and parent_sha256 else None,
        window_s=window_s,
        balanced=balanced,
        holdout_rows=int(len(ho_y)),
    )
    held = Dataset(
        name="holdout:recent-labelled",
        columns=ho_cols,
        target=ho_y,
        sha256=sha256_columns({**ho_cols, "__target__": ho_y}),
        source=f"feedback:{endpoint}",
    )
    return data, held


def _base_sha(base: Dataset | None, cols: Columns | None, single: str | None) -> str | None:
    """The base set hashed the way ``save_model(training_data=X)`` hashes it (the array of a one-input
    model, else the dict of columns), so it can be compared with the parent's recorded sha256."""
    if base is None or cols is None:
        return None
    return sha256_of(np.asarray(cols[single]) if single else dict(cols))
