"""``deploy/kubernetes``: both overlays render (``kubectl kustomize`` where installed, else the kustomize
subset in ``kustomize_lite``, which must then agree with it), every resource validates against the current
Kubernetes schemas (kubernetes-validate, offline), and the settings that make a fleet work hold: probes,
graceful termination matching the drain timeout, ports, autoscaling, the disruption budget, the Secret."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from support.kustomize_lite import kubectl_kustomize, render

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = ("tryout", "production")
K8S_VERSION = kubernetes_validate.latest_version()
SERVER_GRACE_S = 10  # runner/workers.py: workers get the drain timeout + 10 s after SIGTERM


@functools.cache
def rendered(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The overlay's resources by (kind, name), rendered once per run."""
    folder = ROOT / "overlays" / name
    docs = render(folder)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(by_kind) == len(docs), "a resource appears twice"
    official = kubectl_kustomize(folder)
    if official is not None:
        assert {(d["kind"], d["metadata"]["name"]): d for d in official} == by_kind, (
            "kustomize_lite renders differently from kubectl kustomize"
        )
    return by_kind


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, dict[tuple[str, str], dict[str, Any]]]:
    return request.param, rendered(request.param)


def example_secret(name: str) -> dict[str, str]:
    """The keys of the Secret the user creates (the overlay's example, validated like the rest)."""
    folder = ROOT / ("base" if name == "tryout" else f"overlays/{name}")
    doc = yaml.safe_load((folder / "secret.example.yaml").read_text())
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert (doc["kind"], doc["metadata"]["name"]) == ("Secret", "modelrunner")
    return doc["stringData"]


def container(docs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod = docs[("Deployment", "modelrunner")]["spec"]["template"]["spec"]
    (main,) = [c for c in pod["containers"] if c["name"] == "modelrunner"]
    return main


def env(main: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in main.get("env", [])}


def test_every_resource_validates_against_the_kubernetes_schemas(overlay) -> None:
    _, docs = overlay
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises naming the field


def test_the_deployment_probes_drains_and_is_scraped(overlay) -> None:
    name, docs = overlay
    deployment = docs[("Deployment", "modelrunner")]
    pod = deployment["spec"]["template"]
    main = container(docs)
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["args"][:2] == ["--host", "0.0.0.0"] and "--grpc-port" in main["args"]
    drain_s = float(env(main)["MODELRUNNER_DRAIN_TIMEOUT_S"])
    pre_stop_s = main["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + SERVER_GRACE_S
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(main["ports"][0]["containerPort"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"secretRef": {"name": "modelrunner"}} in main["envFrom"]
    assert not [k for k in docs if k[0] == "Secret"], "applying must not overwrite the user's Secret"
    assert "MODELRUNNER_ADMIN_TOKEN" in example_secret(name), "--host 0.0.0.0 needs the admin token"
    ports = {p["name"]: p["targetPort"] for p in docs[("Service", "modelrunner")]["spec"]["ports"]}
    assert ports == {"http": "http", "grpc": "grpc"}
    home = env(main)["MODELRUNNER_HOME"]
    assert home in {m["mountPath"] for m in main["volumeMounts"]}, "the registry home is a writable volume"


def test_tryout_is_one_replica_on_a_volume() -> None:
    docs = rendered("tryout")
    spec = docs[("Deployment", "modelrunner")]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["home"] == {"name": "home", "persistentVolumeClaim": {"claimName": "modelrunner-home"}}
    assert ("PersistentVolumeClaim", "modelrunner-home") in docs
    assert "MODELRUNNER_DATABASE_URL" not in example_secret("tryout"), "embedded SQLite"
    assert not [k for k in docs if k[0] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]


def test_production_shares_postgres_and_s3_and_scales() -> None:
    docs = rendered("production")
    deployment = docs[("Deployment", "modelrunner")]
    secret = example_secret("production")
    assert secret["MODELRUNNER_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert secret["MODELRUNNER_STORE_URL"].startswith("s3://")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MODELRUNNER_ADMIN_TOKEN"} <= set(secret)
    hpa = docs[("HorizontalPodAutoscaler", "modelrunner")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "modelrunner"}
    replicas = deployment["spec"]["replicas"]
    assert 1 < hpa["minReplicas"] <= replicas <= hpa["maxReplicas"]
    pdb = docs[("PodDisruptionBudget", "modelrunner")]["spec"]
    assert pdb["selector"] == deployment["spec"]["selector"] and pdb["minAvailable"] < hpa["minReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_kustomize_lite_merges_like_a_strategic_merge_patch() -> None:
    from support.kustomize_lite import merge

    base = {"a": {"b": 1, "c": 2}, "items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "args": [1, 2]}
    patch = {"a": {"c": None, "d": 3}, "items": [{"name": "y", "v": 5}, {"name": "z"}], "args": [3]}
    assert merge(base, patch) == {
        "a": {"b": 1, "d": 3},
        "args": [3],
        "items": [{"name": "x", "v": 1}, {"name": "y", "v": 5}, {"name": "z"}],
    }


def test_the_validation_refuses_a_broken_resource() -> None:
    broken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "eighty"}], "selectr": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
