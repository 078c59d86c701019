"""Two threads loading bundles at once in a fresh interpreter: the loads are serialised (``LOAD_LOCK``).

scikit-learn's ``linear_model`` and ``svm`` import each other. Two threads unpickling a LogisticRegression
and an SVC in a process that has not imported them yet can deadlock on Python's per-module import locks;
Python breaks the deadlock by handing one thread a partially initialised module (``ImportError: cannot
import name 'BaseLibSVM' from partially initialized module 'sklearn.svm._base'``). The race is rare on its
own, so the child makes the overlap certain instead of hoping for it: an import hook holds the first thread
that starts executing a ``sklearn.linear_model``/``sklearn.svm`` module until the other thread is inside
one too (or 2 s pass). Without the lock both threads meet there every time; with it they never do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

CHILD = r"""
import importlib.abc, json, sys, threading

WATCHED = ("sklearn.linear_model", "sklearn.svm")
meet = threading.Barrier(2, timeout=2.0)
state = threading.Lock()
inside: dict[int, int] = {}  # thread id -> how deep it is in watched module bodies
overlaps: list[str] = []


class Meet(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if not name.startswith(WATCHED):
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = Held(spec.loader, name)
                return spec
        return None


class Held(importlib.abc.Loader):
    def __init__(self, real, name):
        self.real, self.name = real, name

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        me = threading.get_ident()
        with state:
            inside[me] = inside.get(me, 0) + 1
            others = [t for t, depth in inside.items() if t != me and depth]
            if others:
                overlaps.append(self.name)
        try:
            meet.wait()  # the first module body of each thread waits here for the other thread
        except threading.BrokenBarrierError:
            pass
        try:
            self.real.exec_module(module)
        finally:
            with state:
                inside[me] -= 1


sys.meta_path.insert(0, Meet())
from modelrunner.bundle.bundle import open_bundle  # noqa: E402

bundles = [open_bundle(p) for p in sys.argv[1:]]
start = threading.Barrier(len(bundles))
errors: list[str] = []
answers: list[list[int]] = []


def load(bundle):
    start.wait()
    try:
        predictor = bundle.load()
        answers.append(predictor.predict({"x": [[0.0, 1.0, 2.0, 3.0]]})["label"].tolist())
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


threads = [threading.Thread(target=load, args=(b,)) for b in bundles]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"errors": errors, "overlaps": overlaps, "answers": len(answers)}))
"""


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A LogisticRegression (imports linear_model) and an SVC (imports svm) bundle."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from modelrunner import save_model

    work = tmp_path_factory.mktemp("lock")
    x = np.random.default_rng(0).normal(size=(40, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    lr = save_model(
        LogisticRegression().fit(x, y), work / "lr", name="lr", sample={"x": x[:3]}, license="MIT"
    )
    svc = save_model(SVC().fit(x, y), work / "svc", name="svc", sample={"x": x[:3]}, license="MIT")
    return [lr.path, svc.path]


def test_two_threads_loading_sklearn_models_at_once_never_import_concurrently(
    two_bundles: list[Path],
) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, two_bundles)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], result
    assert result["overlaps"] == [], f"two threads ran sklearn module bodies at once: {result['overlaps']}"
    assert result["answers"] == 2
