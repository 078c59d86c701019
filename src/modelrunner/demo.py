"""``python -m modelrunner.demo`` (what ``make run`` runs): the digits example, served live.

Trains the example digit classifiers (``examples/digits/train.py``), pushes them to the registry under
``MODELRUNNER_HOME`` (default ``~/.modelrunner``), starts ``modelrunner serve`` with an endpoint ``digits``
following ``digits@production`` and an endpoint ``ocr`` serving the digit-string OCR pipeline
(``examples/ocr/build.py``, built once), waits until it is ready and prints commands to try. Runs until
Ctrl-C (``--exit-when-ready``: stops the server and exits once it answered).

The examples come from the source checkout (``examples/``) or, installed from a wheel, from the copy the wheel
installs under ``<prefix>/share/modelrunner/examples`` (pyproject ``data-files``); bundles and the test set
then go under ``MODELRUNNER_HOME/demo``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console

from modelrunner.errors import FailedPrecondition, ModelrunnerError, NotFound, Unavailable
from modelrunner.settings import Settings

log = logging.getLogger("modelrunner.demo")

CHECKOUT = Path(__file__).resolve().parents[2] / "examples"
INSTALLED = Path("share") / "modelrunner" / "examples"
DIGITS = Path("digits") / "train.py"
OCR = Path("ocr") / "build.py"
ENDPOINT = "digits"
OCR_ENDPOINT = "ocr"
DEFAULT_URL = "http://127.0.0.1:8080"


def example_roots() -> list[Path]:
    """Where the examples may be: the source checkout, then the wheel's data under this environment's
    prefix (a venv, the system) or the user base (``pip install --user``)."""
    roots = [CHECKOUT, Path(sysconfig.get_path("data")) / INSTALLED, Path(sys.prefix) / INSTALLED]
    user = sysconfig.get_config_var("userbase") or os.environ.get("PYTHONUSERBASE")
    if user:
        roots.append(Path(user) / INSTALLED)
    return roots


def examples_dir() -> Path:
    """The examples folder holding ``digits/train.py``; NotFound naming where it looked."""
    roots = example_roots()
    for root in roots:
        if (root / DIGITS).is_file():
            return root
    looked = ", ".join(str(r) for r in roots)
    raise NotFound(
        f"the demo's examples are not installed (looked in {looked}): run it from a source "
        "checkout or a wheel of modelrunner"
    )


def from_checkout() -> bool:
    return examples_dir() == CHECKOUT


def load_example(path: Path | None = None) -> dict[str, Any]:
    """The globals of the example training script (its functions: ``run``, ``load_split``, ...)."""
    path = path or examples_dir() / DIGITS
    if not path.is_file():
        raise NotFound(f"{path} not found: the demo runs from a source checkout or a wheel of modelrunner")
    return runpy.run_path(str(path), run_name="digits_example")


def train_and_push(example: dict[str, Any], bundles: Path | None, test_set: Path | None) -> dict[str, Any]:
    """Train the candidates, save their bundles (default ``bundles/``) and push them; return the result."""
    started = time.perf_counter()
    out = bundles or example["DEFAULT_OUT"]
    result: dict[str, Any] = example["run"](out, test_set=test_set or example["TEST_SET"])
    result["test_set"] = test_set or example["TEST_SET"]
    log.info("trained and pushed %d models in %.1fs", len(result["pushed"]), time.perf_counter() - started)
    return result


def build_ocr(path: Path | None = None) -> dict[str, Any]:
    """The digit-string OCR pipeline (built and pushed once; later runs reuse it) and a fresh sample PNG."""
    started = time.perf_counter()
    example = load_example(path or examples_dir() / OCR)
    result: dict[str, Any] = example["ensure_built"]()
    log.info("OCR pipeline %s ready in %.1fs", result["pipeline"], time.perf_counter() - started)
    return result


def check_port_free(host: str, port: int) -> None:
    """Raise FailedPrecondition when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            raise FailedPrecondition(f"port {port} is already in use: stop what runs there or use --port")


def start_server(
    host: str, port: int, workers: int, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``modelrunner serve`` in a child process: ``digits=digits@production`` and ``extra`` endpoints."""
    cmd = [
        sys.executable,
        "-m",
        "modelrunner",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--endpoint",
        f"{ENDPOINT}={ENDPOINT}@production",
    ]
    for spec in extra or []:
        cmd += ["--endpoint", spec]
    log.info("starting: %s", " ".join(cmd[1:]))
    return subprocess.Popen(cmd)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll ``/readyz`` until it answers 200; raise Unavailable if the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"the server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise Unavailable(f"the server at {url} was not ready after {timeout:.0f}s")


def sample_body(test_set: Path, row: int = 0) -> tuple[dict[str, Any], int]:
    """A predict request with one row of the digits test set (64 pixel values 0..16) and its true label."""
    data = np.load(test_set)
    pixels = [int(v) if float(v).is_integer() else float(v) for v in data["input"][row]]
    return {"instances": [{"input": pixels}]}, int(data["target"][row])


def predict_once(url: str, body: dict[str, Any]) -> str:
    """The server's answer to ``body`` (the label and the version that answered), for the banner."""
    response = httpx.post(f"{url}/v1/endpoints/{ENDPOINT}/predict", json=body, timeout=10.0)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    data = response.json()
    label = data.get("predictions", [{}])[0].get("label")
    return f"label {label} from {data.get('model')}@{data.get('version')}"


def cli_name() -> str:
    """How to call the CLI from here: ``modelrunner`` when it is on PATH, else the venv's script path."""
    if shutil.which("modelrunner"):
        return "modelrunner"
    script = Path(sys.executable).parent / "modelrunner"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def read_line(url: str, png: str) -> str:
    """The OCR endpoint's reading of a line image, for the banner."""
    with open(png, "rb") as fh:
        response = httpx.post(f"{url}/v1/endpoints/{OCR_ENDPOINT}/predict", files={"image": fh}, timeout=10.0)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return str(response.json().get("text"))


def ocr_lines(url: str, ocr: dict[str, Any] | None) -> list[str]:
    """The OCR endpoint's lines of the banner (none when the demo runs without it)."""
    if ocr is None:
        return []
    metrics = ocr.get("metrics", {})
    scores = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, float))
    return [
        f"# OCR pipeline '{OCR_ENDPOINT}' -> {ocr['target']} ({scores})",
        f"# this PNG reads {ocr['sample_text']}; the server read: {read_line(url, ocr['sample'])}",
        f"curl -s {url}/v1/endpoints/{OCR_ENDPOINT}/predict -F image=@{ocr['sample']}",
        "",
    ]


def instructions(
    url: str,
    result: dict[str, Any],
    body: dict[str, Any],
    label: int,
    answer: str,
    ocr: dict[str, Any] | None = None,
) -> str:
    """The commands to try, with real versions and a real row."""
    versions = {key: mv.version for key, mv in result["pushed"].items()}
    flag = "" if url == DEFAULT_URL else f" --url {url}"
    mr = cli_name()
    home = os.environ.get("MODELRUNNER_HOME")
    data = json.dumps(body, separators=(",", ":"))
    lines = [
        f"modelrunner is serving endpoint '{ENDPOINT}' -> {ENDPOINT}@production at {url}",
        f"web catalog (models, endpoints, swaps, audit): {url}/ui",
        "",
        f"# predict: this row is a {label}; the server answered: {answer}",
        f"curl -s {url}/v1/endpoints/{ENDPOINT}/predict -H 'content-type: application/json' -d '{data}'",
        f"curl -s {url}/v1/endpoints/{ENDPOINT}/contract.proto",
        "",
        *ocr_lines(url, ocr),
        "# the registry:" + (f" (in another shell: export MODELRUNNER_HOME={home})" if home else ""),
        f"{mr} models",
        f"{mr} show {ENDPOINT}@production",
        f"{mr} contract {ENDPOINT}@production --format proto",
        "",
        "# move an alias (the endpoint follows it), pin a version live, roll back to the alias:",
        f"{mr} alias set {ENDPOINT}@{versions.get('rf', 3)} production",
        f"{mr} endpoints{flag}",
        f"{mr} swap {ENDPOINT} {ENDPOINT}@{versions.get('svc', 2)} --wait{flag}",
        f"{mr} rollback {ENDPOINT} --wait{flag}",
        f"{mr} audit",
        "",
        "# an online experiment: half the traffic to the SVC; promoted once feedback shows it is not worse",
        f"{mr} experiment start {ENDPOINT} --candidate {ENDPOINT}@{versions.get('svc', 2)} --mode canary "
        '--percent 50 --decide "accuracy >= baseline - 0.02" --min-labels 1000 --then promote',
        f"{mr} experiment status {ENDPOINT}    # feedback: POST {url}/v1/endpoints/{ENDPOINT}/feedback "
        "(docs/experiments.md)",
        "",
        "Ctrl-C stops the server.",
    ]
    return "\n".join(lines)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Ask the server to stop (SIGINT, then SIGTERM, then SIGKILL)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelrunner.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MODELRUNNER_DEMO_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bundles", type=Path, default=None, help="where to save bundles (default bundles/)")
    parser.add_argument("--test-set", type=Path, default=None, help="where to write the digits test set")
    parser.add_argument("--no-ocr", action="store_true", help="skip the OCR pipeline endpoint")
    parser.add_argument("--exit-when-ready", action="store_true", help="stop once ready (for tests)")
    return parser


def run(args: argparse.Namespace, out: Console) -> int:
    """Train, push, serve, print the commands; wait for Ctrl-C (or return when ready, for tests)."""
    out.print(f"registry: {Settings().resolved_database_url()}")
    check_port_free(args.host, args.port)
    example = load_example()
    bundles, test_set = args.bundles, args.test_set
    if not from_checkout():  # installed: write nothing next to the installed examples
        demo_home = Settings().home / "demo"
        bundles, test_set = bundles or demo_home / "bundles", test_set or demo_home / "test.npz"
    result = train_and_push(example, bundles, test_set)
    for item in result["trained"]:
        version = result["pushed"][item.key].version
        alias = f" @{item.alias}" if item.alias else ""
        out.print(f"  {item.key:<4} accuracy {item.accuracy:.4f} -> {ENDPOINT} version {version}{alias}")
    ocr = None if args.no_ocr else build_ocr()
    url = f"http://{args.host}:{args.port}"
    extra = [] if ocr is None else [f"{OCR_ENDPOINT}={ocr['target']}"]
    proc = start_server(args.host, args.port, args.workers, extra)
    try:
        wait_ready(url, proc)
        body, label = sample_body(result["test_set"])
        text = instructions(url, result, body, label, predict_once(url, body), ocr)
        out.print(text, soft_wrap=True, markup=False, highlight=False)
        if args.exit_when_ready:
            return 0
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("modelrunner.demo", "examples.digits"):
        logging.getLogger(name).setLevel(logging.INFO)
    out = Console(highlight=False)
    try:
        return run(_parser().parse_args(argv), out)
    except ModelrunnerError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
