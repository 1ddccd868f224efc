"""What render refuses (naming the field), what it translates, and what it tells the runtime."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from model_builders import build_model, build_resolved, build_settings

from seaway.operator.errors import InvalidSpec, SeawayOperatorError
from seaway.operator.render import (
    AUTOSCALER_CLASS,
    CONTAINER_NAME,
    GPU_RESOURCE_TYPES,
    KNATIVE_AUTOSCALER_CLASS,
    ModelObject,
    credentials_secret,
    deployment_mode,
    render_inference_service,
)
from seaway.registry.model import Delivery
from seaway.serving_runtime.settings import RuntimeSettings

MODEL = {"name": "fraud-detector", "alias": "champion"}
KEDA = {"keda_prometheus_address": "http://prometheus:9090"}
KNATIVE = {"default_deployment_mode": "Knative"}


def _spec(**parts: Any) -> dict[str, Any]:
    return {"model": MODEL, **parts}


def _render(
    spec: dict[str, Any] | None = None, name: str = "fraud", **settings: Any
) -> dict[str, Any]:
    return render_inference_service(
        build_model(spec, name=name), build_resolved(), build_settings(**settings)
    )


def _container(isvc: dict[str, Any]) -> dict[str, Any]:
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["name"] == CONTAINER_NAME
    return container


def _env(isvc: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(isvc)["env"]}


# --- refusals -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    id: str
    spec: dict[str, Any]
    field: str
    says: str  # a fragment of the message a user reads
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = "fraud"


REFUSALS = [
    Refusal("scale-to-zero-in-standard", _spec(autoscaling={"minReplicas": 0, "maxReplicas": 3}),
            "spec.autoscaling.minReplicas", "Knative"),
    Refusal("concurrency-without-keda",
            _spec(autoscaling={"maxReplicas": 3, "metric": "concurrency", "target": 8}),
            "spec.autoscaling.metric", "SEAWAY_OPERATOR_KEDA_PROMETHEUS_ADDRESS"),
    Refusal("rps-without-keda", _spec(autoscaling={"metric": "rps", "target": 100}),
            "spec.autoscaling.metric", "ignore rps"),
    Refusal("keda-without-target", _spec(autoscaling={"metric": "rps"}),
            "spec.autoscaling.target", "KEDA has no default", KEDA),
    Refusal("memory-without-target", _spec(autoscaling={"metric": "memory"}),
            "spec.autoscaling.target", "scale on CPU instead"),
    Refusal("cpu-target-over-100", _spec(autoscaling={"metric": "cpu", "target": 150}),
            "spec.autoscaling.target", "1 to 100"),
    Refusal("memory-target-over-100", _spec(autoscaling={"metric": "memory", "target": 120}),
            "spec.autoscaling.target", "1 to 100"),
    Refusal("memory-in-knative", _spec(autoscaling={"metric": "memory", "target": 70}),
            "spec.autoscaling.metric", "Standard mode only", KNATIVE),
    Refusal("cpu-scale-to-zero-in-knative",
            _spec(autoscaling={"minReplicas": 0, "maxReplicas": 2, "metric": "cpu"}),
            "spec.autoscaling.minReplicas", "concurrency or rps", KNATIVE),
    Refusal("gpu-in-limits",
            _spec(predictor={"resources": {"limits": {"nvidia.com/gpu": 1}}}),
            "spec.predictor.resources.limits.nvidia.com/gpu", "spec.predictor.gpu"),
    Refusal("gpu-in-requests-beside-gpu",
            _spec(predictor={"gpu": {"count": 1, "resourceName": "amd.com/gpu"},
                             "resources": {"requests": {"amd.com/gpu": 1}}}),
            "spec.predictor.resources.requests.amd.com/gpu", "spec.predictor.gpu"),
    Refusal("mig-slice-in-limits",
            _spec(predictor={"resources": {"limits": {"nvidia.com/mig-1g.5gb": 1}}}),
            "spec.predictor.resources.limits.nvidia.com/mig-1g.5gb", "spec.predictor.gpu"),
    Refusal("dotted-name", _spec(), "metadata.name", "no dots", name="fraud.v2"),
    Refusal("name-starting-with-a-digit", _spec(), "metadata.name", "starting with a letter",
            name="7fraud"),
    Refusal("name-too-long-for-standard", _spec(), "metadata.name", "at most 53",
            name="f" * 54),
    Refusal("name-too-long-for-knative", _spec(), "metadata.name", "at most 47", KNATIVE,
            name="f" * 48),
    # The model's own mode wins over the operator's default, for every rule above.
    Refusal("scale-to-zero-in-standard-by-spec",
            _spec(predictor={"deploymentMode": "Standard"},
                  autoscaling={"minReplicas": 0, "maxReplicas": 3, "metric": "rps"}),
            "spec.autoscaling.minReplicas", "spec.predictor.deploymentMode to Knative", KNATIVE),
    Refusal("memory-in-knative-by-spec",
            _spec(predictor={"deploymentMode": "Knative"},
                  autoscaling={"metric": "memory", "target": 70}),
            "spec.autoscaling.metric", "Standard mode only"),
    Refusal("name-too-long-for-knative-by-spec", _spec(predictor={"deploymentMode": "Knative"}),
            "metadata.name", "too long for Knative mode", name="f" * 48),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.id)
def test_refused_specs_name_the_field(case: Refusal) -> None:
    with pytest.raises(InvalidSpec) as refused:
        _render(case.spec, case.name, **case.settings)
    assert refused.value.field == case.field
    assert case.says in refused.value.message
    assert str(refused.value).startswith(f"{case.field}: ")
    assert isinstance(refused.value, SeawayOperatorError)
    assert not refused.value.transient


def test_longest_names_still_render() -> None:
    assert _render(_spec(), "f" * 53)["metadata"]["name"] == "f" * 53
    assert _render(_spec(), "f" * 47, **KNATIVE)["metadata"]["name"] == "f" * 47


def test_a_spec_the_api_refuses_is_invalid_spec_with_its_field() -> None:
    with pytest.raises(InvalidSpec) as refused:
        build_model({"model": {"name": "fraud-detector"}, "autoscaling": {"maxReplicas": 0}})
    assert refused.value.field == "spec.model"
    assert "also: spec.autoscaling.maxReplicas" in refused.value.message


def test_a_resolved_version_of_another_model_is_a_callers_mistake() -> None:
    with pytest.raises(ValueError, match="not a version of"):
        render_inference_service(
            build_model(), build_resolved(name="other-model"), build_settings()
        )
    pinned = build_model({"model": {"name": "fraud-detector", "version": "3"}})
    with pytest.raises(ValueError, match="fraud-detector version 3"):
        render_inference_service(pinned, build_resolved(version="4"), build_settings())


# --- translations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    id: str
    autoscaling: dict[str, Any]
    settings: dict[str, Any]
    annotations: dict[str, str]
    predictor: dict[str, Any]  # the scaling fields of spec.predictor, exactly


TRANSLATIONS = [
    Translation("cpu-gets-kserves-default-target", {"maxReplicas": 4}, {},
                {AUTOSCALER_CLASS: "hpa"},
                {"minReplicas": 1, "maxReplicas": 4, "scaleMetric": "cpu", "scaleTarget": 80}),
    Translation("memory-with-target", {"metric": "memory", "target": 70}, {},
                {AUTOSCALER_CLASS: "hpa"},
                {"minReplicas": 1, "maxReplicas": 1, "scaleMetric": "memory",
                 "scaleTarget": 70}),
    Translation("rps-through-keda", {"maxReplicas": 6, "metric": "rps", "target": 40}, KEDA,
                {AUTOSCALER_CLASS: "keda"},
                {"minReplicas": 1, "maxReplicas": 6, "autoScaling": {"metrics": [{
                    "type": "External",
                    "external": {
                        "metric": {
                            "backend": "prometheus",
                            "serverAddress": "http://prometheus:9090",
                            "query": 'sum(rate(seaway_requests_total{namespace="ml",'
                                     'model="fraud"}[1m]))',
                        },
                        "target": {"type": "Value", "value": "40"},
                    },
                }]}}),
    Translation("knative-concurrency-keeps-knatives-default",
                {"minReplicas": 0, "maxReplicas": 3, "metric": "concurrency"}, KNATIVE,
                {KNATIVE_AUTOSCALER_CLASS: "kpa.autoscaling.knative.dev"},
                {"minReplicas": 0, "maxReplicas": 3, "scaleMetric": "concurrency"}),
    Translation("knative-cpu-through-its-hpa-class", {"maxReplicas": 3, "target": 60}, KNATIVE,
                {KNATIVE_AUTOSCALER_CLASS: "hpa.autoscaling.knative.dev"},
                {"minReplicas": 1, "maxReplicas": 3, "scaleMetric": "cpu", "scaleTarget": 60}),
]  # fmt: skip

_SCALING_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling")
_CLASSES = (AUTOSCALER_CLASS, KNATIVE_AUTOSCALER_CLASS)


@pytest.mark.parametrize("case", TRANSLATIONS, ids=lambda c: c.id)
def test_autoscaling_is_written_the_way_kserve_honours_it(case: Translation) -> None:
    isvc = _render(_spec(autoscaling=case.autoscaling), **case.settings)
    predictor = isvc["spec"]["predictor"]
    annotations = isvc["metadata"]["annotations"]
    assert {k: predictor[k] for k in _SCALING_FIELDS if k in predictor} == case.predictor
    assert {k: annotations[k] for k in _CLASSES if k in annotations} == case.annotations


@pytest.mark.parametrize(
    ("settings", "mode"),
    [({}, "Standard"), (KNATIVE, "Knative"), ({"default_deployment_mode": "RawDeployment"},
     "Standard"), ({"default_deployment_mode": "Serverless"}, "Knative")],
    ids=["default", "knative", "legacy-raw", "legacy-serverless"],
)  # fmt: skip
def test_deployment_mode_is_always_explicit_in_kserves_current_spelling(
    settings: dict[str, Any], mode: str
) -> None:
    spec = _spec(autoscaling={"metric": "concurrency", "target": 5, "minReplicas": 1})
    isvc = _render(spec, **settings, **KEDA)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode


KNATIVE_BY_SPEC = {"deploymentMode": "Knative"}
STANDARD_BY_SPEC = {"deploymentMode": "Standard"}


@pytest.mark.parametrize(
    ("predictor", "settings", "mode"),
    [({}, {}, "Standard"), ({}, KNATIVE, "Knative"), (KNATIVE_BY_SPEC, {}, "Knative"),
     (STANDARD_BY_SPEC, KNATIVE, "Standard"), (STANDARD_BY_SPEC, {}, "Standard"),
     (KNATIVE_BY_SPEC, KNATIVE, "Knative"), (STANDARD_BY_SPEC, {"default_deployment_mode":
     "Serverless"}, "Standard")],
    ids=["default", "operator-knative", "spec-knative", "spec-standard-over-operator-knative",
         "spec-standard-as-default", "both-knative", "spec-over-legacy-default"],
)  # fmt: skip
def test_the_models_mode_wins_and_is_always_written(
    predictor: dict[str, Any], settings: dict[str, Any], mode: str
) -> None:
    isvc = _render(_spec(predictor=predictor), **settings)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert deployment_mode(build_model(_spec(predictor=predictor)).spec,
                           build_settings(**settings)) == mode  # fmt: skip


@pytest.mark.parametrize(
    "spec",
    [_spec(), _spec(autoscaling={"minReplicas": 0, "maxReplicas": 4, "metric": "rps"}),
     _spec(predictor={"protocol": "v2", "gpu": {}}, autoscaling={"maxReplicas": 3}),
     _spec(autoscaling={"metric": "concurrency", "target": 4, "maxReplicas": 2})],
    ids=["minimal", "scale-to-zero", "gpu-cpu-scaling", "concurrency"],
)  # fmt: skip
@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_a_models_mode_renders_exactly_what_the_same_operator_default_renders(
    spec: dict[str, Any], mode: str
) -> None:
    """Scaling rules, name checks, ports and the fields Knative refuses all follow the
    mode in effect, wherever it was set."""
    other = "Knative" if mode == "Standard" else "Standard"
    by_default = _try_render(spec, default_deployment_mode=mode, **KEDA)
    by_spec = _try_render(
        {**spec, "predictor": {**spec.get("predictor", {}), "deploymentMode": mode}},
        default_deployment_mode=other,
        **KEDA,
    )
    assert by_spec == by_default


def _try_render(spec: dict[str, Any], **settings: Any) -> dict[str, Any] | str:
    try:
        return _render(spec, **settings)
    except InvalidSpec as refused:
        return str(refused)


# --- the runtime container ------------------------------------------------------------


def test_runtime_environment_is_what_the_runtime_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(predictor={"batching": {"maxBatchSize": 64, "maxLatencyMs": 10}})
    env = _env(_render(spec))
    runtime = {name: value for name, value in env.items() if name.startswith("SEAWAY_RUNTIME_")}
    fields = {f"SEAWAY_RUNTIME_{name.upper()}" for name in RuntimeSettings.model_fields}
    assert set(runtime) <= fields
    for name, value in runtime.items():
        monkeypatch.setenv(name, value)
    settings = RuntimeSettings()
    assert settings.model_uri == "models:/fraud-detector/7"
    assert settings.tracking_uri == "http://mlflow.mlflow.svc:5000"
    assert (settings.model_name, settings.model_version) == ("fraud", "7")
    assert (settings.host, settings.http_port, settings.grpc_port) == ("0.0.0.0", 8080, 8081)
    assert (settings.batching, settings.max_batch_size, settings.max_latency_ms) == (True, 64, 10)
    assert settings.device == "cpu"


def test_storage_uri_delivery_lets_kserve_fill_mnt_models() -> None:
    isvc = render_inference_service(
        build_model(),
        build_resolved(delivery=Delivery.STORAGE_URI),
        build_settings(mlflow_credentials_secret="mlflow-credentials"),
    )
    env = _env(isvc)
    assert env["STORAGE_URI"] == "s3://ml-models/prod/fraud-detector/7"
    assert env["SEAWAY_RUNTIME_MODEL_URI"] == "/mnt/models"
    assert "SEAWAY_RUNTIME_TRACKING_URI" not in env
    assert not any(name.startswith("MLFLOW_") for name in env)


def test_runtime_download_takes_mlflow_credentials_from_the_secret_only() -> None:
    without = _env(_render())
    assert "STORAGE_URI" not in without
    assert not any(name.startswith("MLFLOW_") for name in without)
    with_secret = _env(_render(mlflow_credentials_secret="mlflow-credentials"))
    credentials = {k: v for k, v in with_secret.items() if k.startswith("MLFLOW_")}
    assert set(credentials) == {
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    }
    for key, source in credentials.items():
        assert source == {
            "secretKeyRef": {"name": "mlflow-credentials", "key": key, "optional": True}
        }


@pytest.mark.parametrize(
    ("model_secret", "operator_secret", "expected"),
    [("team-a-mlflow", "mlflow-credentials", "team-a-mlflow"),
     ("team-a-mlflow", None, "team-a-mlflow"),
     (None, "mlflow-credentials", "mlflow-credentials")],
    ids=["model-over-operator", "model-only", "operator-only"],
)  # fmt: skip
def test_a_models_credentials_secret_overrides_the_operators(
    model_secret: str | None, operator_secret: str | None, expected: str
) -> None:
    ref = {"credentialsSecretRef": {"name": model_secret}} if model_secret else {}
    spec = {"model": {**MODEL, **ref}}
    env = _container(_render(spec, mlflow_credentials_secret=operator_secret))["env"]
    credentials = [e for e in env if e["name"].startswith("MLFLOW_")]
    assert credentials == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": expected, "key": key,
                                                     "optional": True}}}
        for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                    "MLFLOW_TRACKING_PASSWORD")
    ]  # fmt: skip
    assert credentials_secret(build_model(spec).spec, build_settings(
        mlflow_credentials_secret=operator_secret)) == expected  # fmt: skip


def test_a_models_credentials_secret_is_unused_when_kserve_fetches_the_files() -> None:
    spec = {"model": {**MODEL, "credentialsSecretRef": {"name": "team-a-mlflow"}}}
    isvc = render_inference_service(
        build_model(spec), build_resolved(delivery=Delivery.STORAGE_URI), build_settings()
    )
    assert not any(name.startswith("MLFLOW_") for name in _env(isvc))
    assert "team-a-mlflow" not in json.dumps(isvc)


@pytest.mark.parametrize(
    ("protocol", "settings", "ports", "grpc_port"),
    [("v2", {}, [8080, 8081], "8081"), ("v1", {}, [8080], "0"), ("v2", KNATIVE, [8080], "0")],
    ids=["v2-standard", "v1", "v2-knative-one-port"],
)
def test_ports_follow_protocol_and_mode(
    protocol: str, settings: dict[str, Any], ports: list[int], grpc_port: str
) -> None:
    isvc = _render(_spec(predictor={"protocol": protocol}), **settings)
    container = _container(isvc)
    assert [p["containerPort"] for p in container["ports"]] == ports
    assert _env(isvc)["SEAWAY_RUNTIME_GRPC_PORT"] == grpc_port
    assert _env(isvc)["PROTOCOL"] == protocol
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}


@pytest.mark.parametrize("settings", [{}, KNATIVE], ids=["standard", "knative"])
def test_restricted_security_context(settings: dict[str, Any]) -> None:
    isvc = _render(**settings)
    container = _container(isvc)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in isvc["spec"]["predictor"]["volumes"]


def test_knative_mode_leaves_out_the_fields_knative_refuses() -> None:
    predictor = _render(**KNATIVE)["spec"]["predictor"]
    assert "automountServiceAccountToken" not in predictor
    assert "securityContext" not in predictor
    standard = _render()["spec"]["predictor"]
    assert standard["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("gpu", "device", "annotation"),
    [
        ({"count": 2}, "cuda", None),
        ({"resourceName": "amd.com/gpu"}, "cuda", None),
        ({"resourceName": "nvidia.com/mig-1g.5gb"}, "cuda", '["nvidia.com/mig-1g.5gb"]'),
        ({"resourceName": "example.com/tpu"}, "auto", '["example.com/tpu"]'),
    ],
    ids=["nvidia", "amd", "mig-slice", "custom"],
)
def test_gpus_set_limits_toleration_device_and_kserves_list(
    gpu: dict[str, Any], device: str, annotation: str | None
) -> None:
    isvc = _render(_spec(predictor={"gpu": gpu, "resources": {"limits": {"memory": "8Gi"}}}))
    name = gpu.get("resourceName", "nvidia.com/gpu")
    container = _container(isvc)
    assert container["resources"]["limits"] == {"memory": "8Gi", name: str(gpu.get("count", 1))}
    assert isvc["spec"]["predictor"]["tolerations"] == [
        {"key": name, "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert _env(isvc)["SEAWAY_RUNTIME_DEVICE"] == device
    assert isvc["metadata"]["annotations"].get(GPU_RESOURCE_TYPES) == annotation
    if annotation is not None:
        assert json.loads(annotation) == [name]


def test_spec_node_selector_wins_over_the_gpu_default() -> None:
    spec = _spec(predictor={"gpu": {}, "nodeSelector": {"gpu-type": "a100", "pool": "ml"}})
    isvc = _render(spec, gpu_node_selector={"gpu-type": "any", "nvidia.com/gpu.present": "true"})
    assert isvc["spec"]["predictor"]["nodeSelector"] == {
        "gpu-type": "a100",
        "nvidia.com/gpu.present": "true",
        "pool": "ml",
    }
    assert "nodeSelector" not in _render(gpu_node_selector={"a": "b"})["spec"]["predictor"]


def test_values_that_are_not_label_values_stay_in_annotations_only() -> None:
    model = build_model({"model": {"name": "Fraud Detector (EU)", "alias": "_shadow"}})
    resolved = build_resolved(name="Fraud Detector (EU)")
    isvc = render_inference_service(model, resolved, build_settings())
    labels, annotations = isvc["metadata"]["labels"], isvc["metadata"]["annotations"]
    assert "seaway.dev/model" not in labels
    assert "seaway.dev/alias" not in labels
    assert labels["seaway.dev/version"] == "7"
    assert annotations["seaway.dev/model"] == "Fraud Detector (EU)"
    assert annotations["seaway.dev/alias"] == "_shadow"
    assert _env(isvc)["SEAWAY_RUNTIME_MODEL_URI"] == "models:/Fraud Detector (EU)/7"


def test_owner_reference_makes_the_inference_model_the_controller() -> None:
    model: ModelObject = build_model()
    (owner,) = _render()["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "seaway.dev/v1alpha1",
        "kind": "InferenceModel",
        "name": "fraud",
        "uid": model.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_pods_are_scraped_on_the_runtimes_own_port() -> None:
    predictor = _render()["spec"]["predictor"]
    assert predictor["annotations"]["prometheus.io/scrape"] == "true"
    assert predictor["annotations"]["prometheus.io/port"] == "8080"
    # Without this, KServe's pod webhook points prometheus.io/port at its queue-proxy.
    assert predictor["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "false"


def test_image_from_settings_unless_the_spec_names_one() -> None:
    assert _container(_render())["image"] == "registry.example.com/seaway-runtime:0.1.0"
    own = _render(_spec(predictor={"image": "example.com/runtime:dev"}))
    assert _container(own)["image"] == "example.com/runtime:dev"


def test_render_leaves_its_inputs_alone() -> None:
    model = build_model(_spec(predictor={"gpu": {}, "nodeSelector": {"pool": "ml"}}))
    settings = build_settings(gpu_node_selector={"nvidia.com/gpu.present": "true"})
    before = (model.spec.model_dump(), settings.model_dump())
    first = render_inference_service(model, build_resolved(), settings)
    first["spec"]["predictor"]["nodeSelector"]["pool"] = "changed"
    second = render_inference_service(model, build_resolved(), settings)
    assert second["spec"]["predictor"]["nodeSelector"]["pool"] == "ml"
    assert (model.spec.model_dump(), settings.model_dump()) == before
