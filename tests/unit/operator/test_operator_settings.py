"""Operator settings from the environment: names, defaults, and refusals at start-up."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from seaway.operator.settings import OperatorSettings

IMAGE = "registry.example.com/seaway-runtime:0.1.0"


def test_defaults_need_only_the_runtime_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWAY_OPERATOR_RUNTIME_IMAGE", IMAGE)
    settings = OperatorSettings()
    assert settings.runtime_image == IMAGE
    assert settings.default_deployment_mode == "Standard"
    assert settings.namespaces == ()
    assert settings.keda_prometheus_address is None
    assert settings.mlflow_credentials_secret is None


def test_the_runtime_image_is_required() -> None:
    with pytest.raises(ValidationError, match="runtime_image"):
        OperatorSettings()


def test_lists_and_maps_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWAY_OPERATOR_RUNTIME_IMAGE", IMAGE)
    monkeypatch.setenv("SEAWAY_OPERATOR_NAMESPACES", '["ml", "ml-staging"]')
    monkeypatch.setenv("SEAWAY_OPERATOR_GPU_NODE_SELECTOR", '{"nvidia.com/gpu.present": "true"}')
    monkeypatch.setenv("SEAWAY_OPERATOR_KEDA_PROMETHEUS_ADDRESS", "http://prometheus:9090/")
    settings = OperatorSettings()
    assert settings.namespaces == ("ml", "ml-staging")
    assert settings.gpu_node_selector == {"nvidia.com/gpu.present": "true"}
    assert settings.keda_prometheus_address == "http://prometheus:9090"


@pytest.mark.parametrize(
    ("legacy", "mode"), [("RawDeployment", "Standard"), ("Serverless", "Knative")]
)
def test_legacy_mode_names_are_normalised(
    monkeypatch: pytest.MonkeyPatch, legacy: str, mode: str
) -> None:
    monkeypatch.setenv("SEAWAY_OPERATOR_RUNTIME_IMAGE", IMAGE)
    monkeypatch.setenv("SEAWAY_OPERATOR_DEFAULT_DEPLOYMENT_MODE", legacy)
    assert OperatorSettings().default_deployment_mode == mode


def test_tracking_uri_ours_then_the_registrys_then_mlflows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEAWAY_OPERATOR_RUNTIME_IMAGE", IMAGE)
    assert OperatorSettings().mlflow_tracking_uri == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000/")
    assert OperatorSettings().mlflow_tracking_uri == "http://mlflow:5000"
    monkeypatch.setenv("SEAWAY_REGISTRY_TRACKING_URI", "http://registry:5000")
    assert OperatorSettings().mlflow_tracking_uri == "http://registry:5000"
    monkeypatch.setenv("SEAWAY_OPERATOR_MLFLOW_TRACKING_URI", "http://mlflow.mlflow.svc:5000")
    assert OperatorSettings().mlflow_tracking_uri == "http://mlflow.mlflow.svc:5000"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mlflow_tracking_uri", "file:///tmp/mlruns"),
        ("mlflow_tracking_uri", "https://user:secret@mlflow.example.com"),
        ("default_deployment_mode", "ModelMesh"),
        ("namespaces", ["ML"]),
        ("mlflow_credentials_secret", "MLflow_Credentials"),
        ("image_pull_secrets", ["ok", "not ok"]),
        ("gpu_toleration_key", "bad key"),
        ("gpu_node_selector", {"zone": "not a label value"}),
        ("keda_prometheus_address", "prometheus:9090"),
        ("prometheus_namespace_label", "kubernetes-namespace"),
        ("resync_interval_seconds", 1),
        ("metrics_port", 0),
        ("workers", 0),
        ("progress_deadline_seconds", 1),
        ("lease_name", "x" * 254),
        ("lease_namespace", "Not-A-Namespace"),
    ],
)
def test_bad_values_are_refused_at_start_up(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        OperatorSettings(runtime_image=IMAGE, **{field: value})
    assert "secret@" not in str(refused.value)


def test_settings_are_frozen_and_every_field_is_documented() -> None:
    settings = OperatorSettings(runtime_image=IMAGE)
    with pytest.raises(ValidationError):
        settings.metrics_port = 9000  # type: ignore[misc]
    undocumented = [
        name for name, info in OperatorSettings.model_fields.items() if not info.description
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "problem"),
    [
        (15, 15, 2, "renew_deadline_seconds must be shorter"),
        (15, 10, 10, "retry_period_seconds must be shorter"),
    ],
    ids=["renew-not-shorter-than-lease", "retry-not-shorter-than-renew"],
)
def test_leader_election_timings_must_nest(
    lease: float, renew: float, retry: float, problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        OperatorSettings(
            runtime_image=IMAGE,
            lease_duration_seconds=lease,
            renew_deadline_seconds=renew,
            retry_period_seconds=retry,
        )


def test_identity_defaults_to_the_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "seaway-operator-7d9f-abcde")
    assert OperatorSettings(runtime_image=IMAGE).identity == "seaway-operator-7d9f-abcde"
