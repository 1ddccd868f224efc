"""The InferenceModel API types: defaults, valid manifests, and bad input named by field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from seaway.operator import api, settings
from tests.support import manifests


@pytest.mark.parametrize("path", manifests.EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_valid(path: Path) -> None:
    model = api.InferenceModel.model_validate(manifests.example(path))
    assert model.spec.model.name


def test_examples_cover_cpu_gpu_and_canary() -> None:
    specs = [
        api.InferenceModel.model_validate(manifests.example(p)).spec for p in manifests.EXAMPLES
    ]
    assert any(s.predictor.gpu is None and s.model.alias == "champion" for s in specs)
    assert any(s.predictor.gpu is not None and s.model.version for s in specs)
    assert any(s.rollout.strategy == "canary" for s in specs)


def test_defaults_of_a_minimal_manifest() -> None:
    spec = api.parse_spec(manifests.minimal()["spec"])
    assert spec.predictor.protocol == "v2"
    assert spec.autoscaling.min_replicas == 1
    assert spec.autoscaling.max_replicas == 1
    assert spec.rollout.strategy == "immediate"
    assert spec.rollout.steps == [10, 50, 100]
    assert spec.rollout.analysis.max_error_rate == 0.01
    assert spec.monitoring is None


def test_dump_round_trips_in_camel_case() -> None:
    raw = manifests.example(manifests.EXAMPLES[0])
    model = api.InferenceModel.model_validate(raw)
    dumped = api.dump(model)
    assert dumped["spec"]["autoscaling"]["minReplicas"] == raw["spec"]["autoscaling"]["minReplicas"]
    assert api.InferenceModel.model_validate(dumped) == model


def test_for_is_spelled_for_on_the_wire() -> None:
    when = api.RetrainWhen.model_validate({"metric": "error_rate", "above": 0.1, "for": "1h"})
    assert when.for_ == "1h"
    assert api.dump(when)["for"] == "1h"


@pytest.mark.parametrize("case", manifests.INVALID, ids=lambda c: c.id)
def test_invalid_manifest_names_the_field(case: manifests.Invalid) -> None:
    with pytest.raises(ValidationError) as caught:
        api.parse_spec(case.spec)
    lines = api.field_errors(caught.value)
    assert any(line.startswith(case.field) for line in lines), lines


def test_at_least_ten_distinct_invalid_cases() -> None:
    assert len({c.id for c in manifests.INVALID}) >= 10


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("500m", 0.5), ("2Gi", 2 * 2**30), ("1.5k", 1500.0), ("1e3", 1000.0),
     (4, 4.0), ("100Mi", 100 * 2**20)],
)  # fmt: skip
def test_quantity_value(text: str | int, value: float) -> None:
    assert api.quantity_value(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "lots", "1GB", "2 Gi", "--1"])
def test_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        api.quantity_value(text)


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30s", timedelta(seconds=30)), ("5m", timedelta(minutes=5)),
     ("1h30m", timedelta(minutes=90)), ("250ms", timedelta(milliseconds=250))],
)  # fmt: skip
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert api.parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "5", "5 m", "1d", "m5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        api.parse_duration(text)


def test_limits_equal_to_requests_are_fine() -> None:
    resources = api.Resources.model_validate(
        {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1024Mi"}}
    )
    assert resources.limits is not None


def test_deployment_mode_and_credentials_are_unset_by_default() -> None:
    spec = api.parse_spec(manifests.minimal()["spec"])
    assert spec.predictor.deployment_mode is None  # the operator's default applies
    assert spec.model.credentials_secret_ref is None
    dumped = api.dump(spec)
    assert "deploymentMode" not in dumped["predictor"]
    assert "credentialsSecretRef" not in dumped["model"]


def test_deployment_mode_and_credentials_round_trip_in_camel_case() -> None:
    raw = {
        "model": {
            "name": "fraud-detector",
            "alias": "champion",
            "credentialsSecretRef": {"name": "mlflow-credentials.team-a"},
        },
        "predictor": {"deploymentMode": "Knative"},
    }
    spec = api.parse_spec(raw)
    assert spec.predictor.deployment_mode == "Knative"
    assert spec.model.credentials_secret_ref == api.SecretRef(name="mlflow-credentials.team-a")
    dumped = api.dump(spec)
    assert dumped["model"] == raw["model"]
    assert dumped["predictor"]["deploymentMode"] == "Knative"


def test_the_spec_knows_the_same_modes_as_the_operator_settings() -> None:
    assert get_args(api.DeploymentMode) == get_args(settings.DeploymentMode)


@pytest.mark.parametrize(
    ("former", "current"), [("RawDeployment", "Standard"), ("Serverless", "Knative")]
)
def test_kserves_former_mode_names_are_refused_with_the_current_one(
    former: str, current: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        api.parse_spec({**manifests.minimal()["spec"], "predictor": {"deploymentMode": former}})
    (line,) = api.field_errors(caught.value)
    assert line == (
        f"spec.predictor.deploymentMode: {former} is KServe's former name of this mode: "
        f"write {current}"
    )


@pytest.mark.parametrize(
    "name", ["mlflow-credentials", "a", "team-a.mlflow", "0credentials", "s" * 253]
)
def test_credentials_secret_names_that_kubernetes_accepts(name: str) -> None:
    assert api.SecretRef(name=name).name == name


@pytest.mark.parametrize(
    "name", ["", "MLflow", "under_score", "-lead", "trail-", "dot..dot", ".lead", "s" * 254]
)
def test_credentials_secret_names_that_kubernetes_refuses(name: str) -> None:
    with pytest.raises(ValidationError):
        api.SecretRef(name=name)
