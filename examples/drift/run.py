"""The drift demo: a model that stays good in production (``make demo-drift``).

    python examples/drift/run.py [--quick] [--plot PATH] [--port N]

Serves digits (an RBF SVC) from a fresh registry with one worker; sends traffic from the test split with the
labels fed back half a second later; then shifts the traffic (rotated, thickened, noisier digits). Online
accuracy falls, the drift alert fires, ``modelrunner train --trigger drift`` retrains on the recent labelled
data, the candidate passes its gates and a 20 % canary, the decider promotes it, and online accuracy recovers.
Accuracy after the swap is measured on test digits the retrained model never saw. Writes a PNG and ends with
``pre-drift accuracy A, drifted B, recovered C, failed requests F, plot PATH``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from shift import shift, split  # noqa: E402
from traffic import Traffic  # noqa: E402
from trainer import make_model  # noqa: E402

SERVER_ENV = {
    "MODELRUNNER_DRIFT_BUCKET_S": "2",
    "MODELRUNNER_DRIFT_FLUSH_S": "0.5",
    "MODELRUNNER_DRIFT_CHECK_S": "1",
    "MODELRUNNER_DRIFT_WINDOW_S": "12",
    "MODELRUNNER_PREDICTION_LOG_FLUSH_S": "0.2",
}


@dataclass
class Sizes:
    pre: int = 450  # clean requests before the drift
    drift: int = 1350  # drifted requests before training starts (at least; more until the alert fires)
    post: int = 898  # requests after the swap (test digits the new model never saw)
    repeats: int = 3  # drifted copies of each first-half test digit (fresh noise each)


QUICK = Sizes(pre=200, drift=900, post=300, repeats=2)


@dataclass
class Marks:
    t0: float = field(default_factory=time.time)
    events: dict[str, float] = field(default_factory=dict)
    drift: list[tuple[float, float, float]] = field(default_factory=list)  # t, drifted share, threshold

    def mark(self, name: str) -> None:
        if name not in self.events:
            self.events[name] = time.time()
            print(f"[{time.time() - self.t0:6.1f}s] {name}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "modelrunner", *args]
    print("$ modelrunner " + " ".join(shlex.quote(a) for a in args), flush=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def setup_registry(home: Path) -> Any:
    """Version 1: an SVC on the training half, profiled for drift; endpoint ``digits`` logging its inputs."""
    from modelrunner import Registry, save_model
    from modelrunner.settings import Settings

    x_tr, _, y_tr, _ = split()
    registry = Registry(Settings(home=home))
    bundle = save_model(
        make_model().fit(x_tr, y_tr),
        home / "digits-v1",
        name="digits",
        sample=x_tr[:5],
        license="MIT",
        description="RBF SVC on clean digits",
        training_data=x_tr,
    )
    registry.push(bundle.path, alias="production")
    registry.set_endpoint("digits", "digits@production", config={"log_predictions": True, "log_inputs": 1.0})
    return registry


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "modelrunner", "serve", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the server did not become ready in 90 s")


def sample_drift(registry: Any, marks: Marks, stop: threading.Event) -> None:
    """Every second: the share of drifted features over the monitoring window (and the alert threshold)."""
    from modelrunner.monitoring.status import drift_status

    window = float(SERVER_ENV["MODELRUNNER_DRIFT_WINDOW_S"])
    while not stop.wait(1.0):
        try:
            report = drift_status(registry, "digits", window_s=window)
        except Exception:  # noqa: BLE001 - a sample missed (e.g. mid-swap) is just not plotted
            continue
        n = max(1, len(report.features))
        if report.status in ("ok", "drift"):
            marks.drift.append((time.time(), report.drifted / n, report.needed / n))
        if any(a.state == "firing" and a.kind == "drift" for a in registry.alerts("digits")):
            marks.mark("alert")


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def train(registry: Any, env: dict[str, str], marks: Marks, min_labels: int) -> str:
    """Wait until the drifted labels are in the log, then run ``modelrunner train --trigger drift``."""
    want = len(registry.labelled_inputs("digits")) + 1
    wait_for("labelled rows", lambda: len(registry.labelled_inputs("digits")) >= want, 30)
    marks.mark("training")
    proc = cli(
        "train",
        "digits",
        "--trainer",
        str(HERE / "trainer.py") + ":train",
        "--data",
        str(HERE / "trainer.py") + ":original",
        "--trigger",
        "drift",
        "--require",
        "accuracy>=0.95",
        "--rollout",
        "canary 20 then promote",
        "--decide",
        "accuracy >= baseline",
        "--min-labels",
        str(min_labels),
        env=env,
    )
    print((proc.stdout + proc.stderr).strip(), flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"modelrunner train exited with {proc.returncode}")
    marks.mark("canary")
    exp = registry.experiment("digits")
    if exp is None:
        raise RuntimeError("training did not start an experiment")
    return str(exp.id)


def await_promotion(registry: Any, exp_id: str, marks: Marks) -> int:
    exp = wait_for(
        "the experiment's decision",
        lambda: (e := registry.experiment_by_id(exp_id)).state != "running" and e,
        300,
    )
    print(f"experiment {exp.id}: {exp.state} ({(exp.decision or {}).get('reason', '')})", flush=True)
    if exp.state != "promoted":
        raise RuntimeError(f"the candidate was not promoted: {exp.state}")
    version = registry.resolve("digits@production").version
    wait_for(
        "the swap",
        lambda: all(w.version == version for w in registry.workers("digits")) and registry.workers("digits"),
        120,
    )
    marks.mark("swap")
    return int(version)


def run(sizes: Sizes, plot: Path, port: int | None, home: Path) -> str:
    x_tr, x_te, y_tr, y_te = split()
    half = len(y_te) // 2
    rng = np.random.default_rng(1)
    first_x, first_y = x_te[:half], y_te[:half]
    drifted_x = shift(np.repeat(first_x, sizes.repeats, axis=0), rng)
    drifted_y = np.repeat(first_y, sizes.repeats)
    order = rng.permutation(len(drifted_y))
    unseen_x, unseen_y = shift(x_te[half:], rng), y_te[half:]
    env = {
        **os.environ,
        **SERVER_ENV,
        "MODELRUNNER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    registry = setup_registry(home)
    port = port or free_port()
    server = start_server(env, port)
    marks, stop = Marks(), threading.Event()
    traffic = Traffic(f"http://127.0.0.1:{port}")
    sampler = threading.Thread(target=sample_drift, args=(registry, marks, stop), daemon=True)
    try:
        traffic.start()
        sampler.start()
        traffic.use("pre", x_te[:half], y_te[:half])
        traffic.wait_sent("pre", sizes.pre)
        marks.mark("drift starts")
        traffic.use("drifted", drifted_x[order], drifted_y[order])
        traffic.wait_sent("drifted", sizes.drift)
        wait_for("the drift alert", lambda: "alert" in marks.events, 120)
        exp_id = train(registry, env, marks, min_labels=60)
        traffic.use("canary", unseen_x, unseen_y)
        await_promotion(registry, exp_id, marks)
        traffic.use("recovered", unseen_x, unseen_y)
        traffic.wait_sent("recovered", sizes.post)
    finally:
        stop.set()
        traffic.stop()
        server.terminate()
        server.wait(timeout=60)
        registry.close()
    a, b, c = (traffic.accuracy(p) for p in ("pre", "drifted", "recovered"))
    from plot import draw

    draw(plot, traffic.answers, marks)
    return (
        f"pre-drift accuracy {a:.4f}, drifted {b:.4f}, recovered {c:.4f}, "
        f"failed requests {traffic.failed}, plot {plot}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (the test's shortened form)")
    parser.add_argument("--plot", type=Path, default=ROOT / "build" / "drift-demo.png", help="PNG to write")
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    parser.add_argument("--home", type=Path, default=None, help="registry home (default: a temporary one)")
    args = parser.parse_args(argv)
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drift-demo-") as tmp:
        home = args.home or Path(tmp)
        line = run(QUICK if args.quick else Sizes(), args.plot, args.port, home)
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
