"""Cost of validating one digits row against its contract (``contract.validate_batch``), in µs per call.

Moved here from the unit tests (tests check correctness, benchmarks measure speed): a 64-float row arrives
either as a numpy array (protobuf, V2 binary) or as nested lists (JSON). The budget it was held to is a
small share of the ~200 µs a request may take at 5,000 req/s per core: ~30 µs as an array, ~60 µs as JSON.

    python bench/validate.py [--rounds 5] [--calls 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from modelrunner.contract import Contract, DType, Field, validate_batch

BUDGET_US = {"array": 30.0, "json lists": 60.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    contract = Contract.build(
        [Field(name="pixels", dtype=DType.FLOAT32, shape=(64,))],
        [Field(name="label", dtype=DType.INT64, shape=())],
    )
    cases = {
        "array": {"pixels": np.random.default_rng(0).random((1, 64))},
        "json lists": {"pixels": [[0.25] * 64]},
    }
    print(f"{'input':<12} {'best µs/call':>13} {'median µs/call':>15} {'budget µs':>10}")
    for name, columns in cases.items():
        validate_batch(contract.inputs, columns)
        rounds = []
        for _ in range(args.rounds):  # best of N rounds: robust to a busy machine
            start = time.perf_counter()
            for _ in range(args.calls):
                validate_batch(contract.inputs, columns)
            rounds.append((time.perf_counter() - start) / args.calls * 1e6)
        rounds.sort()
        print(f"{name:<12} {rounds[0]:>13.1f} {rounds[len(rounds) // 2]:>15.1f} {BUDGET_US[name]:>10.0f}")


if __name__ == "__main__":
    main()
