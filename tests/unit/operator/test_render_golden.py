"""Rendered InferenceServices, compared byte for byte with the golden YAML files.

Regenerate after an intended change with

    SEAWAY_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/operator/test_render_golden.py

and review the diff. The same files are applied to a real API server with KServe's
CRDs by tests/integration/cluster/test_rendered_inference_services.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from model_builders import build_model, build_resolved, build_settings

from seaway.operator.render import render_inference_service
from seaway.registry.model import Delivery
from tests.support import manifests

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SEAWAY_UPDATE_GOLDEN") == "1"
HEADER = (
    "# Rendered by tests/unit/operator/test_render_golden.py ({case}); do not edit.\n"
    "# Regenerate with SEAWAY_UPDATE_GOLDEN=1 and review the diff.\n"
)
EXAMPLES = {path.stem: path for path in manifests.EXAMPLES}


@dataclass(frozen=True)
class Case:
    id: str
    manifest: dict[str, Any]
    resolved: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _example(stem: str) -> dict[str, Any]:
    return manifests.example(EXAMPLES[stem])


def _inline(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": spec}


CASES = [
    Case(
        "example-fraud-champion",  # CPU, follows an alias, the runtime downloads from MLflow
        _example("fraud-champion"),
        resolved={"name": "fraud-detector", "version": "7", "aliases": ("champion",)},
        settings={"mlflow_credentials_secret": "mlflow-credentials"},
    ),
    Case(
        "example-gpu-pinned",  # GPU, pinned version, batching, KServe's storage initializer
        _example("gpu-pinned"),
        resolved={"name": "reviews-sentiment", "version": "7", "delivery": Delivery.STORAGE_URI},
        settings={
            "gpu_node_selector": {"nvidia.com/gpu.present": "true"},
            "predictor_service_account": "model-reader",
        },
    ),
    Case(
        "example-canary",  # protocol v1: no gRPC port
        _example("canary"),
        resolved={
            "name": "churn-classifier",
            "version": "12",
            "delivery": Delivery.STORAGE_URI,
            "download_uri": "gs://ml-models/churn-classifier/12",
            "digest": None,
        },
    ),
    Case(
        "keda-concurrency",  # Standard mode, concurrency through KEDA and Prometheus
        _inline(
            "fraud-burst",
            {
                "model": {"name": "fraud-detector", "alias": "champion"},
                "predictor": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                "autoscaling": {
                    "minReplicas": 2,
                    "maxReplicas": 20,
                    "metric": "concurrency",
                    "target": 8,
                },
            },
        ),
        settings={
            "keda_prometheus_address": "http://prometheus.monitoring.svc:9090",
            "mlflow_credentials_secret": "mlflow-credentials",
        },
    ),
    Case(
        "knative-scale-to-zero",  # Knative mode, rps, scale to zero, own image
        _inline(
            "fraud-nightly",
            {
                "model": {"name": "fraud-detector", "version": "9"},
                "predictor": {"image": "registry.example.com/seaway-runtime:0.2.0-rc1"},
                "autoscaling": {"minReplicas": 0, "maxReplicas": 5, "metric": "rps", "target": 50},
            },
        ),
        resolved={"version": "9"},
        settings={"default_deployment_mode": "Knative"},
    ),
    Case(
        "knative-by-spec",  # the model asks for Knative; the operator's default is Standard
        _inline(
            "fraud-edge",
            {
                "model": {"name": "fraud-detector", "alias": "champion"},
                "predictor": {
                    "deploymentMode": "Knative",
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                },
                "autoscaling": {"minReplicas": 1, "maxReplicas": 6, "metric": "cpu", "target": 60},
            },
        ),
        resolved={"aliases": ("champion",)},
        settings={"default_deployment_mode": "Standard"},
    ),
    Case(
        "per-model-credentials",  # the model's MLflow Secret replaces the operator's
        _inline(
            "fraud-team-a",
            {
                "model": {
                    "name": "fraud-detector",
                    "alias": "champion",
                    "credentialsSecretRef": {"name": "team-a-mlflow"},
                },
            },
        ),
        resolved={"aliases": ("champion",)},
        settings={"mlflow_credentials_secret": "mlflow-credentials"},
    ),
    Case(
        "custom-gpu-resource",  # a GPU KServe does not know: listed in gpu-resource-types
        _inline(
            "vision",
            {
                "model": {"name": "vision-classifier", "alias": "prod"},
                "predictor": {
                    "gpu": {"count": 2, "resourceName": "example.com/accelerator"},
                    "nodeSelector": {"topology.kubernetes.io/zone": "eu-west-1a"},
                    "batching": {"maxBatchSize": 128, "maxLatencyMs": 20},
                },
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "metric": "memory",
                    "target": 75,
                },
            },
        ),
        resolved={"name": "vision-classifier", "version": "3", "delivery": Delivery.STORAGE_URI},
        settings={
            "gpu_toleration_key": "example.com/accelerator",
            "image_pull_secrets": ("registry-credentials",),
        },
    ),
]


def render_case(case: Case) -> dict[str, Any]:
    metadata = case.manifest["metadata"]
    model = build_model(
        case.manifest["spec"], name=metadata["name"], namespace=metadata["namespace"]
    )
    return render_inference_service(
        model, build_resolved(**case.resolved), build_settings(**case.settings)
    )


def as_golden_text(case: Case, rendered: dict[str, Any]) -> str:
    return HEADER.format(case=case.id) + yaml.safe_dump(rendered, sort_keys=False, width=100)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rendered_inference_service_matches_golden(case: Case) -> None:
    text = as_golden_text(case, render_case(case))
    path = GOLDEN / f"{case.id}.yaml"
    if UPDATE:
        path.write_text(text)
    assert path.is_file(), f"no golden file {path.name}: run with SEAWAY_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(c.id for c in CASES)


def test_every_example_has_a_golden_case() -> None:
    covered = {c.id.removeprefix("example-") for c in CASES if c.id.startswith("example-")}
    assert covered == set(EXAMPLES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rendering_is_deterministic_and_free_of_shared_parts(case: Case) -> None:
    first, second = render_case(case), render_case(case)
    assert first == second
    assert "&id" not in yaml.safe_dump(first)  # no object appears twice in the output
