"""How each server of the benchmark is launched: command line, environment, predict URL and body format.

Every server runs 2 workers on the same 2 cores, access logs off, one BLAS thread per process, serving one
model per launch (so cold start and memory are measured alike). ``launch(...)`` returns a :class:`Launch`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.models import BenchModel
from bench.peers import envs

HERE = Path(__file__).resolve().parent
WORKERS = 2
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Launch:
    """One server process tree to start: ``argv`` in ``cwd`` with ``env``; predictions at ``url``."""

    argv: list[str]
    url: str
    body_form: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    admin_url: str | None = None  # modelrunner: where batching is switched on between runs


def _env(venv: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELRUNNER_", "PROMETHEUS_"))}
    if venv is not None:  # servers that run their own tools (MLflow execs ``uvicorn``) find the venv's first
        env["PATH"] = f"{envs.venv_python(venv).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(ONE_THREAD)
    env.update(extra)
    return env


def modelrunner(model: BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
    from bench.models import push_bundles

    home = work / "home"
    push_bundles(home, {model.key: joblib_path}, [model])
    argv = [
        str(envs.venv_python("modelrunner")),
        "-m",
        "modelrunner",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--endpoint",
        f"{model.endpoint}={model.endpoint}@1",
    ]
    base = f"http://127.0.0.1:{port}"
    return Launch(
        argv,
        f"{base}/v1/endpoints/{model.endpoint}/predict",
        "modelrunner",
        work,
        _env("modelrunner", MODELRUNNER_HOME=str(home)),
        admin_url=base,
    )


def bare(model: BenchModel, port: int, work: Path, joblib_path: Path, answer: str = "labels") -> Launch:
    python = envs.venv_python("bare")
    argv = [
        str(python),
        "-m",
        "uvicorn",
        "bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Launch(
        argv,
        f"http://127.0.0.1:{port}/predict",
        "instances",
        HERE,
        _env("bare", BENCH_MODEL=str(joblib_path), BENCH_ANSWER=answer),
    )


def bare_proba(model: BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
    """The same-work ceiling: the bare app answering label + probabilities per row, as modelrunner does."""
    return bare(model, port, work, joblib_path, answer="proba")


def mlserver(model: BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
    import json

    folder = work / "models" / model.endpoint
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "parallel_workers": WORKERS,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": port + 1,
        "metrics_port": port + 2,
    }
    (work / "models" / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model.endpoint,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(joblib_path), "version": "v1"},
            }
        )
    )
    mlserver_bin = envs.venv_python("mlserver").parent / "mlserver"
    return Launch(
        [str(mlserver_bin), "start", str(work / "models")],
        f"http://127.0.0.1:{port}/v2/models/{model.endpoint}/infer",
        "v2",
        work,
        _env("mlserver"),
    )


def mlflow(model: BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
    python = envs.venv_python("mlflow")
    target = work / "model"
    if not (target / "MLmodel").exists():
        subprocess.run(
            [str(python), str(HERE / "mlflow_prepare.py"), str(joblib_path), str(target)],
            check=True,
            env=_env("mlflow"),
            capture_output=True,
        )
    argv = [
        str(python.parent / "mlflow"),
        "models",
        "serve",
        "-m",
        str(target),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(WORKERS),
    ]
    return Launch(
        argv,
        f"http://127.0.0.1:{port}/invocations",
        "mlflow",
        work,
        _env("mlflow", UVICORN_ACCESS_LOG="false", MLFLOW_TRACKING_URI=str(work / "mlruns")),
    )


def bentoml(model: BenchModel, port: int, work: Path, joblib_path: Path) -> Launch:
    python = envs.venv_python("bentoml")
    argv = [
        str(python.parent / "bentoml"),
        "serve",
        "bento_service:Digits",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return Launch(
        argv,
        f"http://127.0.0.1:{port}/predict",
        "instances",
        HERE,
        _env(
            "bentoml",
            BENCH_MODEL=str(joblib_path),
            BENTOML_HOME=str(work / "bentoml-home"),
            BENTOML_DO_NOT_TRACK="true",
        ),
    )


SERVERS: dict[str, Callable[[BenchModel, int, Path, Path], Launch]] = {
    "modelrunner": modelrunner,
    "bare": bare,
    "bare-proba": bare_proba,
    "mlserver": mlserver,
    "mlflow": mlflow,
    "bentoml": bentoml,
}
LABELS = {
    "modelrunner": "modelrunner (2 workers)",
    "bare": "bare ASGI app, labels only (uvicorn 2 workers, uvloop+httptools, orjson)",
    "bare-proba": "bare ASGI app, same work: predict_proba, label + proba per row (as bare)",
    "mlserver": "MLServer + sklearn runtime (parallel_workers=2)",
    "mlflow": "MLflow scoring server (--env-manager local -w 2)",
    "bentoml": "BentoML (workers=2)",
}
DISTRIBUTIONS = {
    "bare": "uvicorn",
    "bare-proba": "uvicorn",
    "mlserver": "mlserver",
    "mlflow": "mlflow",
    "bentoml": "bentoml",
}


VENVS = {"bare-proba": "bare"}
"""Servers that run in another server's virtual environment."""


def venv(name: str) -> str:
    """The virtual environment (peer name in ``envs``) server ``name`` runs in."""
    return VENVS.get(name, name)


def version(name: str) -> str:
    """The installed version of the server ``name``."""
    if name == "modelrunner":
        from importlib import metadata

        return metadata.version("modelrunner")
    python = envs.venv_python(venv(name))
    code = f"import importlib.metadata as m; print(m.version({DISTRIBUTIONS[name]!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"
