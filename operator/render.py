"""The desired KServe InferenceService of an InferenceModel, as a pure function.

`render_inference_service(model, resolved, settings)` returns the complete
`serving.kserve.io/v1beta1` InferenceService for server-side apply: a custom
predictor running the Seaway runtime, the resolved version's files, scaling,
GPUs, a restricted security context, Prometheus annotations and an owner
reference to the InferenceModel. The same inputs give the same dict, keys in
the same order, so an unchanged model never causes a write.

Facts of KServe v0.20 this module relies on (pkg/apis/serving/v1beta1 and
pkg/constants of github.com/kserve/kserve@v0.20.0):

- A custom predictor's container is found by the name `kserve-container`; an env
  STORAGE_URI on it makes the storage initializer fill /mnt/models, and an env
  PROTOCOL (v1 | v2) tells KServe its protocol (predictor_custom.go).
- `serving.kserve.io/deploymentMode` is written explicitly, always: the default differs
  between KServe's kustomize and Helm installs, and the webhook compares it with
  "Standard" verbatim when it validates autoscaling (inference_service_validation.go),
  so the legacy names RawDeployment / Serverless are never written. The mode is the
  model's `spec.predictor.deploymentMode`, else the operator's default. KServe refuses
  to change the mode of an existing InferenceService; the act layer recreates the
  object when this annotation differs from the live one, so it must never be left out.
- Standard mode: with `serving.kserve.io/autoscalerClass: hpa`, minReplicas below 1
  is raised to 1 and only cpu/memory are honoured (hpa_reconciler.go); concurrency and
  rps need `autoscalerClass: keda` with `autoScaling.metrics` (an External Prometheus
  query) and no scaleMetric (keda_reconciler.go). Such specs are rejected or translated
  here, never passed through.
- Knative mode: the Knative Pod Autoscaler handles concurrency/rps and scale to zero;
  cpu needs `autoscaling.knative.dev/class: hpa.autoscaling.knative.dev`, which never
  scales to zero. Knative allows one container port, no pod-level securityContext and
  no automountServiceAccountToken by default, and needs its
  `kubernetes.podspec-volumes-emptydir` feature for the /tmp volume.
- GPU resource names other than nvidia.com/gpu, amd.com/gpu, intel.com/gpu and
  habana.ai/gaudi must be listed in `serving.kserve.io/gpu-resource-types`.
- KServe's pod webhook overwrites prometheus.io/port with its queue-proxy port unless
  `serving.kserve.io/enable-prometheus-scraping` is "false" on the pod
  (metrics_aggregate_injector.go); the runtime serves /metrics itself on 8080.

Pure layer: imports no kopf, kubernetes client or mlflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from seaway import wire
from seaway.operator import api
from seaway.operator.errors import InvalidSpec
from seaway.operator.settings import OperatorSettings
from seaway.registry.model import Delivery, ResolvedModel

FIELD_MANAGER = "seaway-operator"
"""The one field manager of every server-side apply of a rendered object; `status` reads
its Apply time back from managedFields."""
API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
CONTAINER_NAME = "kserve-container"
MODEL_DIR = "/mnt/models"
HTTP_PORT = 8080
GRPC_PORT = 8081
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
RUNTIME_USER_HOME = "/tmp"

# KServe's annotations (pkg/constants/constants.go).
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
GPU_RESOURCE_TYPES = "serving.kserve.io/gpu-resource-types"
KSERVE_PROMETHEUS_SCRAPING = "serving.kserve.io/enable-prometheus-scraping"
KSERVE_PROMETHEUS_PORT = "prometheus.kserve.io/port"
KSERVE_PROMETHEUS_PATH = "prometheus.kserve.io/path"
KNATIVE_AUTOSCALER_CLASS = "autoscaling.knative.dev/class"
KNATIVE_KPA = "kpa.autoscaling.knative.dev"
KNATIVE_HPA = "hpa.autoscaling.knative.dev"
KSERVE_GPU_RESOURCE_NAMES = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")
DEFAULT_CPU_UTILIZATION = 80  # KServe's constants.DefaultCPUUtilization
RATE_WINDOW = "1m"  # the rate() window of the rps query KEDA runs

# Seaway's labels and annotations on the InferenceService and its pods.
LABEL_MODEL = "seaway.dev/model"
LABEL_VERSION = "seaway.dev/version"
LABEL_ALIAS = "seaway.dev/alias"
ANNOTATION_DIGEST = "seaway.dev/model-digest"
COMMON_LABELS = {
    "app.kubernetes.io/name": "seaway-runtime",
    "app.kubernetes.io/component": "predictor",
    "app.kubernetes.io/part-of": "seaway",
    "app.kubernetes.io/managed-by": "seaway-operator",
}

# MLflow's own variables, read by the runtime's MLflow client; each is an optional key
# of the credentials Secret.
MLFLOW_CREDENTIAL_KEYS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)

_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # KServe's IsvcNameFmt
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The longest child name KServe derives: a Service "<name>-predictor" (Standard), a
# Knative revision "<name>-predictor-00001" (Knative); each must be a DNS label.
_DERIVED_SUFFIX: dict[api.DeploymentMode, str] = {
    "Standard": "-predictor",
    "Knative": "-predictor-00001",
}


@dataclass(frozen=True)
class ModelObject:
    """The InferenceModel as gathered: what rendering and status need of it."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: api.InferenceModelSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ModelObject:
        """From the object as the API server returns it; `InvalidSpec` for a bad spec."""
        metadata = body["metadata"]
        try:
            spec = api.parse_spec(body["spec"])
        except ValidationError as error:
            raise _invalid_from(error) from None
        return cls(
            name=metadata["name"],
            namespace=metadata["namespace"],
            uid=metadata["uid"],
            generation=int(metadata.get("generation", 0)),
            spec=spec,
        )


@dataclass(frozen=True)
class _Scaling:
    annotations: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


def render_inference_service(
    model: ModelObject, resolved: ResolvedModel, settings: OperatorSettings
) -> dict[str, Any]:
    """The InferenceService that serves `resolved` for `model`.

    Raises `InvalidSpec`, naming the field, for a spec KServe would refuse or
    silently serve otherwise than written; `ValueError` when `resolved` is not
    a version of the model the spec names (a caller's mistake).
    """
    spec = model.spec
    mode = deployment_mode(spec, settings)
    _check_name(model.name, mode)
    _check_resolved(spec.model, resolved)
    scaling = _scaling(model, spec.autoscaling, mode, settings)
    gpu = spec.predictor.gpu

    labels = _labels(model, resolved)
    annotations = {
        DEPLOYMENT_MODE: mode,
        **scaling.annotations,
        **_model_annotations(model, resolved),
    }
    if gpu is not None and gpu.resource_name not in KSERVE_GPU_RESOURCE_NAMES:
        annotations[GPU_RESOURCE_TYPES] = json.dumps([gpu.resource_name])

    predictor: dict[str, Any] = {
        **scaling.fields,
        "labels": dict(labels),
        "annotations": _pod_annotations(),
    }
    if settings.predictor_service_account is not None:
        predictor["serviceAccountName"] = settings.predictor_service_account
    if mode == "Standard":
        # The runtime never talks to the Kubernetes API; Knative refuses this field.
        predictor["automountServiceAccountToken"] = False
    if settings.image_pull_secrets:
        predictor["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    node_selector = {
        **(settings.gpu_node_selector if gpu is not None else {}),
        **(spec.predictor.node_selector or {}),
    }
    if node_selector:
        predictor["nodeSelector"] = dict(sorted(node_selector.items()))
    if gpu is not None:
        predictor["tolerations"] = [
            {
                "key": settings.gpu_toleration_key or gpu.resource_name,
                "operator": "Exists",
                "effect": "NoSchedule",
            }
        ]
    if mode == "Standard":
        # Knative allows a pod-level securityContext only behind a feature flag; the
        # container's own context below is complete either way.
        predictor["securityContext"] = {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    predictor["containers"] = [_container(model, resolved, settings, mode)]
    predictor["volumes"] = [{"name": "tmp", "emptyDir": {}}]

    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": model.name,
            "namespace": model.namespace,
            "labels": labels,
            "annotations": dict(sorted(annotations.items())),
            "ownerReferences": [owner_reference(model)],
        },
        "spec": {"predictor": predictor},
    }


def deployment_mode(spec: api.InferenceModelSpec, settings: OperatorSettings) -> api.DeploymentMode:
    """The KServe deployment mode `spec` is served in: its own, else the operator's default."""
    return spec.predictor.deployment_mode or settings.default_deployment_mode


def credentials_secret(spec: api.InferenceModelSpec, settings: OperatorSettings) -> str | None:
    """The Secret the runtime pods take MLflow credentials from: the model's own, else the
    operator's; None for none."""
    ref = spec.model.credentials_secret_ref
    return ref.name if ref is not None else settings.mlflow_credentials_secret


def owner_reference(model: ModelObject) -> dict[str, Any]:
    """The controller reference that makes Kubernetes delete the InferenceService with
    its InferenceModel, and kopf route KServe's status changes back to it."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": model.name,
        "uid": model.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def label_value(text: str) -> str | None:
    """`text` when it is a valid label value, else None (the annotation still holds it)."""
    return text if len(text) <= 63 and _LABEL_VALUE.match(text) else None


# --- checks ---------------------------------------------------------------------------


def _invalid_from(error: ValidationError) -> InvalidSpec:
    lines = api.field_errors(error)
    first, _, message = lines[0].partition(": ")
    if len(lines) > 1:
        message += " (also: " + "; ".join(lines[1:]) + ")"
    return InvalidSpec(first, message)


def _check_name(name: str, mode: api.DeploymentMode) -> None:
    if not _ISVC_NAME.match(name):
        raise InvalidSpec(
            "metadata.name",
            f"{name!r} cannot name a KServe InferenceService: use lower-case letters, digits "
            "and '-', starting with a letter (no dots)",
        )
    suffix = _DERIVED_SUFFIX[mode]
    if len(name + suffix) > 63:
        raise InvalidSpec(
            "metadata.name",
            f"{name!r} is too long for {mode} mode: KServe derives {name + suffix!r}, which "
            f"must fit in 63 characters, so use at most {63 - len(suffix)}",
        )


def _check_resolved(ref: api.ModelRef, resolved: ResolvedModel) -> None:
    if resolved.name != ref.name or ref.version not in (None, resolved.version):
        wanted = f"{ref.name} version {ref.version}" if ref.version else f"{ref.name}@{ref.alias}"
        raise ValueError(f"resolved {resolved.models_uri} is not a version of {wanted}")


def _is_gpu_resource(name: str, gpu: api.Gpu | None) -> bool:
    return (
        name in KSERVE_GPU_RESOURCE_NAMES
        or name.startswith("nvidia.com/mig-")
        or (gpu is not None and name == gpu.resource_name)
    )


# --- autoscaling ----------------------------------------------------------------------


def _scaling(
    model: ModelObject,
    scaling: api.Autoscaling,
    mode: api.DeploymentMode,
    settings: OperatorSettings,
) -> _Scaling:
    bounds = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
    if mode == "Knative":
        return _knative_scaling(scaling, bounds)
    if scaling.min_replicas == 0:
        raise InvalidSpec(
            "spec.autoscaling.minReplicas",
            "0 (scale to zero) needs KServe's Knative deployment mode; in Standard mode "
            "KServe raises it to 1 without saying so. Set minReplicas to 1 or more, or "
            "spec.predictor.deploymentMode to Knative",
        )
    if scaling.metric in ("cpu", "memory"):
        target = _utilisation_target(scaling)
        return _Scaling(
            annotations={AUTOSCALER_CLASS: "hpa"},
            fields={**bounds, "scaleMetric": scaling.metric, "scaleTarget": target},
        )
    if settings.keda_prometheus_address is None:
        raise InvalidSpec(
            "spec.autoscaling.metric",
            f"{scaling.metric} scaling in Standard mode needs KEDA and a Prometheus that "
            "scrapes the runtime, and this operator has none configured "
            "(SEAWAY_OPERATOR_KEDA_PROMETHEUS_ADDRESS); KServe's HPA would ignore "
            f"{scaling.metric} without saying so. Use cpu or memory, or set "
            "spec.predictor.deploymentMode to Knative",
        )
    if scaling.target is None:
        raise InvalidSpec(
            "spec.autoscaling.target",
            f"metric {scaling.metric} in Standard mode needs a target per replica "
            "(KEDA has no default), e.g. target: 8",
        )
    metric = {
        "type": "External",
        "external": {
            "metric": {
                "backend": "prometheus",
                "serverAddress": settings.keda_prometheus_address,
                "query": keda_query(model, scaling.metric, settings),
            },
            "target": {"type": "Value", "value": str(scaling.target)},
        },
    }
    return _Scaling(
        annotations={AUTOSCALER_CLASS: "keda"},
        fields={**bounds, "autoScaling": {"metrics": [metric]}},
    )


def _knative_scaling(scaling: api.Autoscaling, bounds: dict[str, int]) -> _Scaling:
    if scaling.metric == "memory":
        raise InvalidSpec(
            "spec.autoscaling.metric",
            "memory scaling works in Standard mode only: Knative's HPA class reads the "
            "target as MiB, not as the utilisation percent Seaway promises. Use cpu, "
            "concurrency or rps",
        )
    if scaling.metric == "cpu":
        if scaling.min_replicas == 0:
            raise InvalidSpec(
                "spec.autoscaling.minReplicas",
                "0 (scale to zero) needs metric concurrency or rps: Knative scales on cpu "
                "through an HPA, which never goes below one replica",
            )
        target = _utilisation_target(scaling)
        return _Scaling(
            annotations={KNATIVE_AUTOSCALER_CLASS: KNATIVE_HPA},
            fields={**bounds, "scaleMetric": "cpu", "scaleTarget": target},
        )
    fields: dict[str, Any] = {**bounds, "scaleMetric": scaling.metric}
    if scaling.target is not None:
        fields["scaleTarget"] = scaling.target
    return _Scaling(annotations={KNATIVE_AUTOSCALER_CLASS: KNATIVE_KPA}, fields=fields)


def _utilisation_target(scaling: api.Autoscaling) -> int:
    if scaling.target is None:
        if scaling.metric == "memory":
            raise InvalidSpec(
                "spec.autoscaling.target",
                "metric memory needs a target utilisation percent: KServe's HPA has no "
                "default for memory and would scale on CPU instead",
            )
        return DEFAULT_CPU_UTILIZATION
    if scaling.target > 100:
        raise InvalidSpec(
            "spec.autoscaling.target",
            f"{scaling.target} is not a utilisation percent; for metric {scaling.metric} "
            "the target is a percent of the request, 1 to 100",
        )
    return scaling.target


def keda_query(model: ModelObject, metric: str, settings: OperatorSettings) -> str:
    """The PromQL KEDA runs for `concurrency` or `rps`: the model's total over all its
    pods. KEDA's default AverageValue target divides it by the replica count."""
    selector = (
        f'{settings.prometheus_namespace_label}="{model.namespace}",'
        f'{wire.LABEL_MODEL}="{model.name}"'
    )
    if metric == "concurrency":
        return f"sum({wire.INFLIGHT}{{{selector}}})"
    return f"sum(rate({wire.REQUESTS}{{{selector}}}[{RATE_WINDOW}]))"


# --- metadata -------------------------------------------------------------------------


def _labels(model: ModelObject, resolved: ResolvedModel) -> dict[str, str]:
    labels = {**COMMON_LABELS, "app.kubernetes.io/instance": model.name}
    values = {
        LABEL_MODEL: label_value(resolved.name),
        LABEL_VERSION: label_value(resolved.version),
        LABEL_ALIAS: label_value(model.spec.model.alias) if model.spec.model.alias else None,
    }
    labels.update({key: value for key, value in values.items() if value is not None})
    return dict(sorted(labels.items()))


def _model_annotations(model: ModelObject, resolved: ResolvedModel) -> dict[str, str]:
    # The full values, also where they are not valid label values.
    annotations = {LABEL_MODEL: resolved.name, LABEL_VERSION: resolved.version}
    if model.spec.model.alias is not None:
        annotations[LABEL_ALIAS] = model.spec.model.alias
    if resolved.content_digest is not None:
        annotations[ANNOTATION_DIGEST] = resolved.content_digest
    return annotations


def _pod_annotations() -> dict[str, str]:
    return {
        "prometheus.io/path": METRICS_PATH,
        "prometheus.io/port": str(HTTP_PORT),
        "prometheus.io/scrape": "true",
        KSERVE_PROMETHEUS_PATH: METRICS_PATH,
        KSERVE_PROMETHEUS_PORT: str(HTTP_PORT),
        KSERVE_PROMETHEUS_SCRAPING: "false",
    }


# --- the runtime container ------------------------------------------------------------


def _container(
    model: ModelObject,
    resolved: ResolvedModel,
    settings: OperatorSettings,
    mode: api.DeploymentMode,
) -> dict[str, Any]:
    predictor = model.spec.predictor
    # gRPC (V2 only) gets its own port where KServe can route it: Knative allows one port.
    grpc = predictor.protocol == "v2" and mode == "Standard"
    ports = [{"name": "http1", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    if grpc:
        ports.append({"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"})
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": predictor.image or settings.runtime_image,
        "env": _env(model, resolved, settings, grpc),
        "ports": ports,
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, "port": HTTP_PORT},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
        },
    }
    resources = _resources(predictor)
    if resources:
        container["resources"] = resources
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    return container


def _env(
    model: ModelObject, resolved: ResolvedModel, settings: OperatorSettings, grpc: bool
) -> list[dict[str, Any]]:
    predictor = model.spec.predictor
    runtime = wire.ENV_PREFIX

    def value(name: str, text: str) -> dict[str, Any]:
        return {"name": name, "value": text}

    env: list[dict[str, Any]] = []
    if resolved.delivery is Delivery.STORAGE_URI:
        env.append(value("STORAGE_URI", resolved.download_uri))
    env.append(value("PROTOCOL", predictor.protocol))
    # The root filesystem is read-only: libraries that cache under ~ write to /tmp.
    env.append(value("HOME", RUNTIME_USER_HOME))
    if resolved.delivery is Delivery.STORAGE_URI:
        env.append(value(f"{runtime}MODEL_URI", MODEL_DIR))
    else:
        env.append(value(f"{runtime}MODEL_URI", resolved.download_uri))
        env.append(value(f"{runtime}TRACKING_URI", settings.mlflow_tracking_uri))
        secret = credentials_secret(model.spec, settings)
        if secret is not None:
            env.extend(
                {
                    "name": key,
                    "valueFrom": {
                        "secretKeyRef": {
                            "name": secret,
                            "key": key,
                            "optional": True,
                        }
                    },
                }
                for key in MLFLOW_CREDENTIAL_KEYS
            )
    env.append(value(f"{runtime}MODEL_NAME", model.name))
    env.append(value(f"{runtime}MODEL_VERSION", resolved.version))
    env.append(value(f"{runtime}HOST", "0.0.0.0"))
    env.append(value(f"{runtime}HTTP_PORT", str(HTTP_PORT)))
    env.append(value(f"{runtime}GRPC_PORT", str(GRPC_PORT if grpc else 0)))
    batching = predictor.batching
    env.append(value(f"{runtime}BATCHING", "true" if batching is not None else "false"))
    if batching is not None:
        env.append(value(f"{runtime}MAX_BATCH_SIZE", str(batching.max_batch_size)))
        env.append(value(f"{runtime}MAX_LATENCY_MS", str(batching.max_latency_ms)))
    env.append(value(f"{runtime}DEVICE", _device(predictor.gpu)))
    return env


def _device(gpu: api.Gpu | None) -> str:
    if gpu is None:
        return "cpu"
    # CUDA (and ROCm, which PyTorch also calls cuda) fails loudly when the GPU is missing;
    # other accelerators are left to the runtime's own detection.
    if gpu.resource_name.startswith("nvidia.com/") or gpu.resource_name == "amd.com/gpu":
        return "cuda"
    return "auto"


def _resources(predictor: api.Predictor) -> dict[str, dict[str, str]]:
    gpu = predictor.gpu
    spec = predictor.resources or api.Resources()
    out: dict[str, dict[str, str]] = {}
    for kind, given in (("requests", spec.requests), ("limits", spec.limits)):
        for name in given or {}:
            if _is_gpu_resource(name, gpu):
                raise InvalidSpec(
                    f"spec.predictor.resources.{kind}.{name}",
                    "ask for GPUs with spec.predictor.gpu, which also tolerates the GPU "
                    "nodes' taint and selects them",
                )
        if given:
            out[kind] = {name: str(quantity) for name, quantity in sorted(given.items())}
    if gpu is not None:
        limits = {**out.get("limits", {}), gpu.resource_name: str(gpu.count)}
        out["limits"] = dict(sorted(limits.items()))
    return out
