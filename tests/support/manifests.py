"""Valid and invalid InferenceModel manifests, shared by the pydantic and API-server tests.

Each invalid case names the field a user must be pointed at: both the pydantic
layer and the real API server must name it in their error.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def minimal(name: str = "fraud") -> dict[str, Any]:
    return {
        "apiVersion": "seaway.dev/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {"name": name},
        "spec": {"model": {"name": "fraud-detector", "alias": "champion"}},
    }


def example(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@dataclass(frozen=True)
class Invalid:
    id: str
    spec: dict[str, Any]
    field: str  # the path a user must see named, e.g. "spec.autoscaling.minReplicas"

    def manifest(self, name: str = "bad") -> dict[str, Any]:
        body = minimal(name)
        body["spec"] = copy.deepcopy(self.spec)
        return body


_MODEL = {"name": "fraud-detector", "alias": "champion"}


def _with(**spec: Any) -> dict[str, Any]:
    return {"model": _MODEL, **spec}


INVALID = [
    Invalid("alias-and-version", {"model": {"name": "m", "alias": "a", "version": "1"}},
            "spec.model"),
    Invalid("neither-alias-nor-version", {"model": {"name": "m"}}, "spec.model"),
    Invalid("model-name-missing", {"model": {"alias": "champion"}}, "spec.model.name"),
    Invalid("version-not-a-number", {"model": {"name": "m", "version": "v7"}},
            "spec.model.version"),
    Invalid("alias-with-space", {"model": {"name": "m", "alias": "the champ"}},
            "spec.model.alias"),
    Invalid("credentials-secret-not-a-dns-name",
            {"model": {**_MODEL, "credentialsSecretRef": {"name": "MLflow_Credentials"}}},
            "spec.model.credentialsSecretRef.name"),
    Invalid("credentials-secret-name-too-long",
            {"model": {**_MODEL, "credentialsSecretRef": {"name": "s" * 254}}},
            "spec.model.credentialsSecretRef.name"),
    Invalid("credentials-secret-ref-without-name",
            {"model": {**_MODEL, "credentialsSecretRef": {}}},
            "spec.model.credentialsSecretRef.name"),
    Invalid("credentials-secret-ref-as-a-bare-name",
            {"model": {**_MODEL, "credentialsSecretRef": "mlflow-credentials"}},
            "spec.model.credentialsSecretRef"),
    Invalid("protocol-unknown", _with(predictor={"protocol": "v3"}), "spec.predictor.protocol"),
    Invalid("deployment-mode-legacy-name", _with(predictor={"deploymentMode": "RawDeployment"}),
            "spec.predictor.deploymentMode"),
    Invalid("deployment-mode-lower-case", _with(predictor={"deploymentMode": "knative"}),
            "spec.predictor.deploymentMode"),
    Invalid("quantity-malformed", _with(predictor={"resources": {"requests": {"cpu": "lots"}}}),
            "spec.predictor.resources.requests.cpu"),
    Invalid("limit-below-request",
            _with(predictor={"resources": {"requests": {"memory": "4Gi"},
                                           "limits": {"memory": "2Gi"}}}),
            "spec.predictor.resources.limits"),
    Invalid("gpu-count-zero", _with(predictor={"gpu": {"count": 0}}), "spec.predictor.gpu.count"),
    Invalid("batch-size-zero", _with(predictor={"batching": {"maxBatchSize": 0}}),
            "spec.predictor.batching.maxBatchSize"),
    Invalid("unknown-field", _with(predictor={"gpus": 1}), "spec.predictor.gpus"),
    Invalid("min-above-max-replicas", _with(autoscaling={"minReplicas": 5, "maxReplicas": 2}),
            "spec.autoscaling.maxReplicas"),
    Invalid("scale-metric-unknown", _with(autoscaling={"metric": "gpu"}),
            "spec.autoscaling.metric"),
    Invalid("steps-unsorted", _with(rollout={"strategy": "canary", "steps": [50, 10, 100]}),
            "spec.rollout.steps"),
    Invalid("steps-repeat", _with(rollout={"strategy": "canary", "steps": [10, 10, 100]}),
            "spec.rollout.steps"),
    Invalid("steps-short-of-100", _with(rollout={"strategy": "canary", "steps": [10, 50]}),
            "spec.rollout.steps"),
    Invalid("step-interval-prose", _with(rollout={"stepInterval": "5 minutes"}),
            "spec.rollout.stepInterval"),
    Invalid("error-rate-above-one", _with(rollout={"analysis": {"maxErrorRate": 1.5}}),
            "spec.rollout.analysis.maxErrorRate"),
    Invalid("retrain-without-action",
            _with(monitoring={"retrain": {"when": {"metric": "error_rate", "above": 0.1}}}),
            "spec.monitoring.retrain"),
    Invalid("retrain-two-thresholds",
            _with(monitoring={"retrain": {"when": {"metric": "request_rate", "above": 9,
                                                   "below": 1},
                                          "webhook": {"url": "https://ci.example.com/x"}}}),
            "spec.monitoring.retrain.when"),
]  # fmt: skip
