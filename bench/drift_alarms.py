"""False-alarm and detection rates of the drift alert on digits, by window size.

    python bench/drift_alarms.py [--windows 200] [--shifted 50]

A LogisticRegression fitted on 1100 random digits rows is profiled on them (what ``save_model(...,
training_data=...)`` stores); windows of N rows are then drawn from the 697 held-out rows (same
distribution: every alert is a false alarm) and from the same rows with Gaussian noise (sd 2, clipped to
0..16: every window should alert). Prints the rates per window size (docs/monitoring.md quotes them).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def main(argv: list[str] | None = None) -> int:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from modelrunner.contract import Contract, Field
    from modelrunner.contract.types import DType
    from modelrunner.monitoring.drift import Thresholds, evaluate
    from modelrunner.monitoring.profile import build_profile
    from modelrunner.monitoring.sketch import Sketch

    p = argparse.ArgumentParser(prog="bench/drift_alarms.py")
    p.add_argument("--windows", type=int, default=200)
    p.add_argument("--shifted", type=int, default=50)
    args = p.parse_args(argv)
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1100], order[1100:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=300).fit(x[train], y[train])
    contract = Contract.build(
        [Field(name="pixels", dtype=DType.FLOAT64, shape=(64,))],
        [
            Field(name="label", dtype=DType.INT64),
            Field(name="probabilities", dtype=DType.FLOAT64, shape=(10,)),
        ],
    )

    def outputs(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": model.predict(rows), "probabilities": model.predict_proba(rows)}

    profile = build_profile(contract, {"pixels": x[train]}, outputs(x[train]), y[train])
    binner = profile.binner()

    def status(rows: np.ndarray, n: int) -> str:
        sketch = Sketch(binner.count({"pixels": rows}, outputs(rows)), len(rows))
        return evaluate(profile, sketch, Thresholds(min_rows=min(n, 200))).status

    print("| window rows | false alarms (held-out windows) | detected (noisy windows) |")  # noqa: T201
    print("|---|---|---|")  # noqa: T201
    for n in (100, 200, 500, 1000):
        false = sum(status(x[rng.choice(test, n)], n) == "drift" for _ in range(args.windows))
        found = sum(
            status(np.clip(x[rng.choice(test, n)] + rng.normal(0, 2, (n, 64)), 0, 16), n) == "drift"
            for _ in range(args.shifted)
        )
        print(f"| {n} | {false} / {args.windows} ({false / args.windows:.1%}) | {found} / {args.shifted} |")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
