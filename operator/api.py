"""The InferenceModel API: spec and status as pydantic models.

This module is the one source of truth for the resource. The CRD's OpenAPI
schema is generated from these models (`seaway.operator.crd`), and a test fails
when the committed CRD drifts from them. Every cross-field rule is written
twice on purpose: once as a pydantic validator (for the CLI, the operator and
the unit tests) and once as a CEL rule (`x-kubernetes-validations`) so that
the API server rejects a bad `kubectl apply` with the field named, before the
operator ever sees it.

Pure layer: imports no kopf, kubernetes client or mlflow.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "seaway.dev"
VERSION = "v1alpha1"
KIND = "InferenceModel"
PLURAL = "inferencemodels"
SINGULAR = "inferencemodel"
SHORT_NAMES = ("im", "imodel")
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes' own quantity grammar (k8s.io/apimachinery resource.Quantity).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_SUFFIX = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip

# Go-style durations as Kubernetes tools write them: "30s", "5m", "1h30m".
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_DURATION_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}

# MLflow registered-model names allow most characters but not '/', ':' or '%'
# (they would break models:/ URIs); aliases are identifiers that MLflow itself
# restricts further (no "latest", no "v<digits>").
MODEL_NAME_PATTERN = r"^[^/:%\s][^/:%]{0,254}[^/:%\s]$|^[^/:%\s]$"
ALIAS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$"
VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"
RESOURCE_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A Kubernetes object name such as a Secret's (apimachinery IsDNS1123Subdomain).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DeploymentMode = Literal["Standard", "Knative"]
"""KServe's deployment modes as KServe v0.20 spells them (the operator's settings use the
same two). The former names RawDeployment and Serverless are refused in a spec: KServe's
webhook compares the annotation with "Standard" verbatim, and one spelling per mode keeps
the rendered annotation, and so the decision to recreate, unambiguous."""
_FORMER_MODE_NAMES = {"RawDeployment": "Standard", "Serverless": "Knative"}


def quantity_value(quantity: str | int) -> float:
    """Numeric value of a Kubernetes quantity ("500m" -> 0.5, "2Gi" -> 2**31)."""
    text = str(quantity)
    if not _QUANTITY_RE.match(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    match = re.match(r"^([+-]?[0-9.]+)([eE][+-]?[0-9.]+|[A-Za-z]*)$", text)
    if match is None:  # pragma: no cover - the grammar above already holds
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(number) * 10 ** float(suffix[1:])
    return float(number) * _SUFFIX[suffix]


def parse_duration(text: str) -> timedelta:
    """A Go-style duration ("1h30m", "45s", "250ms") as a timedelta."""
    if not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 5m, 1h30m)")
    seconds = sum(int(n) * _DURATION_UNIT[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _check_quantity(value: str | int) -> str | int:
    quantity_value(value)
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Quantity = Annotated[
    str | int,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": 32,  # bounds the cost of the CEL rule comparing quantities
            "x-kubernetes-int-or-string": True,
        }
    ),
]
Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(_check_duration),
]
ResourceName = Annotated[str, StringConstraints(pattern=RESOURCE_NAME_PATTERN, max_length=253)]
FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class _Model(BaseModel):
    """Base for every API type: camelCase on the wire, strict about unknown keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class SecretRef(_Model):
    """A Secret in the InferenceModel's own namespace, by name."""

    name: Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)]
    """Name of the Secret (a DNS subdomain: lower-case letters, digits, '-' and '.')."""


class ModelRef(_Model):
    """Which MLflow registered model to serve, by alias (followed as it moves) or version."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "has(self.alias) != has(self.version)",
                "message": "exactly one of spec.model.alias or spec.model.version must be set",
            }
        )
    )

    name: Annotated[str, StringConstraints(pattern=MODEL_NAME_PATTERN, max_length=256)]
    """Registered model name in the MLflow model registry."""
    alias: Annotated[str, StringConstraints(pattern=ALIAS_PATTERN, max_length=255)] | None = None
    """MLflow alias to follow, e.g. `champion`; a move of the alias rolls the new version out."""
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] | None = None
    """A pinned model version number, e.g. "7" (a string, as MLflow reports versions)."""
    # A description too long for one line is a Field's, not a docstring: a docstring's
    # line breaks would reach the CRD and `kubectl explain`.
    credentials_secret_ref: SecretRef | None = Field(
        None,
        description=(
            "Secret with the MLflow credentials the runtime pods use to download this model, "
            "in place of the operator's (SEAWAY_OPERATOR_MLFLOW_CREDENTIALS_SECRET): keys "
            "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
            "each optional. The pods reference it; the operator never reads it. Unused when "
            "KServe's storage initializer fetches the version from an object store."
        ),
    )

    @model_validator(mode="after")
    def _alias_xor_version(self) -> Self:
        if (self.alias is None) == (self.version is None):
            raise ValueError("exactly one of spec.model.alias or spec.model.version must be set")
        return self


class Resources(_Model):
    """Container resource requests and limits, as in a Pod spec."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "!has(self.requests) || !has(self.limits) || "
                "self.requests.all(k, !(k in self.limits) || "
                "quantity(string(self.limits[k]))"
                ".compareTo(quantity(string(self.requests[k]))) >= 0)",
                "message": "each limit must be at least its request",
                "fieldPath": ".limits",
            }
        )
    )

    requests: Annotated[dict[ResourceName, Quantity], Field(max_length=16)] | None = None
    """Minimum resources, e.g. {cpu: "1", memory: 2Gi}."""
    limits: Annotated[dict[ResourceName, Quantity], Field(max_length=16)] | None = None
    """Maximum resources, e.g. {memory: 4Gi}; each must be at least its request."""

    @field_validator("limits")
    @classmethod
    def _limits_cover_requests(
        cls, limits: dict[str, str | int] | None, info: ValidationInfo
    ) -> dict[str, str | int] | None:
        for name, request in (info.data.get("requests") or {}).items():
            limit = (limits or {}).get(name)
            if limit is not None and quantity_value(limit) < quantity_value(request):
                raise ValueError(
                    f"limits.{name} ({limit}) must be at least requests.{name} ({request})"
                )
        return limits


class Gpu(_Model):
    """GPUs for each predictor replica: sets the limit, the GPU toleration and node selection."""

    count: Annotated[int, Field(ge=1, le=16)] = 1
    """GPUs per replica."""
    resource_name: ResourceName = "nvidia.com/gpu"
    """Extended resource name of the device plugin, e.g. nvidia.com/gpu or amd.com/gpu."""


class Batching(_Model):
    """Adaptive batching in the runtime: concurrent requests coalesce into one model call."""

    max_batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    """Largest number of rows in one model call."""
    max_latency_ms: Annotated[int, Field(ge=1, le=1000)] = 5
    """Longest a request waits for others to join its batch, in milliseconds."""


class Predictor(_Model):
    """How the Seaway serving runtime is run for this model."""

    protocol: Literal["v1", "v2"] = "v2"
    """Inference protocol: v1 (KServe V1) or v2 (Open Inference Protocol)."""
    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    """Runtime image; defaults to the operator's configured Seaway runtime image."""
    resources: Resources | None = None
    """Requests and limits of the predictor container."""
    gpu: Gpu | None = None
    """GPUs per replica; omit for CPU serving."""
    batching: Batching | None = None
    """Adaptive batching; omit to serve each request on its own."""
    node_selector: Annotated[dict[str, str], Field(max_length=32)] | None = None
    """Node labels the predictor pods must match."""
    deployment_mode: DeploymentMode | None = Field(
        None,
        description=(
            "KServe deployment mode: Standard (a Deployment scaled by HPA or KEDA) or Knative "
            "(Knative Services, scale to zero); the operator's default when unset. KServe "
            "cannot change the mode of an existing InferenceService, so a change of the mode "
            "in effect (this field, or the operator's default while it is unset) recreates "
            "the InferenceService: a brief outage. The former names RawDeployment and "
            "Serverless are not accepted."
        ),
    )

    @field_validator("deployment_mode", mode="before")
    @classmethod
    def _former_mode_names(cls, value: Any) -> Any:
        if isinstance(value, str) and value in _FORMER_MODE_NAMES:
            raise ValueError(
                f"{value} is KServe's former name of this mode: write {_FORMER_MODE_NAMES[value]}"
            )
        return value


class Autoscaling(_Model):
    """Replica bounds and the metric the autoscaler follows."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || "
                "self.minReplicas <= self.maxReplicas",
                "message": "spec.autoscaling.maxReplicas must be at least minReplicas",
                "fieldPath": ".maxReplicas",
            }
        )
    )

    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Fewest replicas; 0 allows scale to zero where the deployment mode supports it."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Most replicas."""
    metric: Literal["cpu", "memory", "concurrency", "rps"] = "cpu"
    """Scaling metric: cpu/memory (utilisation percent) or concurrency/rps per replica."""
    target: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Target value of the metric per replica; the deployment mode's default when unset."""

    @field_validator("max_replicas")
    @classmethod
    def _bounds(cls, max_replicas: int, info: ValidationInfo) -> int:
        min_replicas = info.data.get("min_replicas")
        if min_replicas is not None and min_replicas > max_replicas:
            raise ValueError(
                f"maxReplicas ({max_replicas}) must be at least minReplicas ({min_replicas})"
            )
        return max_replicas


class Analysis(_Model):
    """Health thresholds a canary step must hold, judged on live Prometheus metrics."""

    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Largest tolerated fraction of 5xx responses from the canary."""
    max_latency_p99_ms: Annotated[int, Field(ge=1, le=600000)] | None = None
    """Largest tolerated p99 latency of the canary, in milliseconds."""
    min_requests: Annotated[int, Field(ge=0, le=1000000)] = 20
    """Requests the canary must have answered in a step before the step is judged."""


class Rollout(_Model):
    """How a new model version replaces the served one."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "!has(self.steps) || "
                "(self.steps.isSorted() && self.steps[size(self.steps) - 1] == 100)",
                "message": "spec.rollout.steps must be strictly increasing and end at 100",
                "fieldPath": ".steps",
            }
        )
    )

    strategy: Literal["canary", "immediate"] = "immediate"
    """canary: shift traffic step by step while the analysis holds; immediate: switch at once."""
    steps: Annotated[
        list[Annotated[int, Field(ge=1, le=100)]],
        Field(min_length=1, max_length=10, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = [10, 50, 100]
    """Traffic percent sent to the canary at each step; strictly increasing, ending at 100."""
    step_interval: Duration = "5m"
    """Time each step must stay healthy before the next, e.g. 5m."""
    analysis: Analysis = Analysis()
    """Thresholds judged at each step."""

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps {steps} must be strictly increasing")
        if steps[-1] != 100:
            raise ValueError(f"steps {steps} must end at 100")
        return steps


class RetrainWhen(_Model):
    """The monitoring condition that fires a retraining trigger."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "has(self.above) != has(self.below)",
                "message": "exactly one of above or below must be set",
            }
        )
    )

    metric: Literal["feature_drift_psi", "error_rate", "request_rate"]
    """Runtime signal to watch: input drift (PSI), error rate, or request volume."""
    above: float | None = None
    """Fire when the metric stays above this value."""
    below: float | None = None
    """Fire when the metric stays below this value (e.g. traffic has dried up)."""
    for_: Annotated[Duration, Field(alias="for")] = "15m"
    """How long the condition must hold before it fires."""

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("exactly one of above or below must be set")
        return self


class Webhook(_Model):
    """A CloudEvent POSTed to this URL when retraining fires."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """http(s) URL that receives the CloudEvent."""


class Retrain(_Model):
    """A retraining trigger: when the condition holds, run a Job and/or call a webhook."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "has(self.job) || has(self.webhook)",
                "message": "set spec.monitoring.retrain.job, webhook, or both",
            }
        )
    )

    when: RetrainWhen
    """The condition that fires the trigger."""
    cooldown: Duration = "24h"
    """Least time between two triggers of this model."""
    job: FreeForm | None = None
    """A batch/v1 Job spec template started when the trigger fires."""
    webhook: Webhook | None = None
    """A webhook that receives a CloudEvent when the trigger fires."""

    @model_validator(mode="after")
    def _action(self) -> Self:
        if self.job is None and self.webhook is None:
            raise ValueError("set spec.monitoring.retrain.job, webhook, or both")
        return self


class Monitoring(_Model):
    """Monitoring hooks on the runtime's metrics."""

    retrain: Retrain | None = None
    """Retraining trigger; omit for none."""


class InferenceModelSpec(_Model):
    """Desired state: which registered model to serve, and how."""

    model: ModelRef
    """The MLflow registered model and the alias or version to serve."""
    predictor: Predictor = Predictor()
    """Runtime, resources, GPUs and batching of the predictor."""
    autoscaling: Autoscaling = Autoscaling()
    """Replica bounds and scaling metric."""
    rollout: Rollout = Rollout()
    """How new versions are rolled out."""
    monitoring: Monitoring | None = None
    """Monitoring hooks and retraining triggers."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(_Model):
    """A Kubernetes API convention condition."""

    type: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=64)]
    """CamelCase condition type, e.g. Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=128)]
    """CamelCase reason for the last transition."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """Human-readable details."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The .metadata.generation this condition was set from."""


class CanaryStatus(_Model):
    """The version being rolled out, and how far it has got."""

    version: str
    """Model version under canary."""
    step: Annotated[int, Field(ge=0)] = 0
    """Index into spec.rollout.steps."""
    traffic_percent: Annotated[int, Field(ge=0, le=100)] = 0
    """Traffic percent currently sent to the canary."""
    started_at: datetime | None = None
    """When the canary started."""


class InferenceModelStatus(_Model):
    """Observed state, written only by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The .metadata.generation the operator last acted on."""
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=16,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ] = []
    """Current conditions: ModelResolved, InferenceServiceReady, Ready, ..."""
    served_version: str | None = None
    """Model version receiving the stable traffic."""
    served_alias: str | None = None
    """Alias that resolved to the served version, when following one."""
    model_digest: str | None = None
    """Content digest of the served version's artifacts, when known."""
    canary: CanaryStatus | None = None
    """The canary in progress, if any."""
    url: str | None = None
    """Where the model answers."""


class InferenceModel(_Model):
    """An MLflow registered model served through KServe."""

    api_version: Literal["seaway.dev/v1alpha1"] = "seaway.dev/v1alpha1"
    kind: Literal["InferenceModel"] = "InferenceModel"
    metadata: dict[str, Any] = {}
    spec: InferenceModelSpec
    status: InferenceModelStatus | None = None


def parse_spec(spec: dict[str, Any]) -> InferenceModelSpec:
    """Validate a raw `.spec` mapping (as read from the API server)."""
    return InferenceModelSpec.model_validate(spec)


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the API server stores it: camelCase keys, unset optionals omitted."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def field_errors(error: ValidationError, prefix: str = "spec") -> list[str]:
    """One line per problem, each starting with the field path a user must fix.

    `spec.autoscaling.minReplicas: minReplicas (5) must not exceed maxReplicas (2)`
    """
    lines = []
    for item in error.errors(include_url=False):
        path = ".".join([prefix, *(str(part) for part in item["loc"])])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return lines
