"""Settings of the operator: environment variables prefixed SEAWAY_OPERATOR_.

Built once in the operator's main() and passed down; nothing here is read at
import time. The Helm chart maps its values one-to-one onto these variables.
Lists and maps are JSON (`SEAWAY_OPERATOR_NAMESPACES='["ml", "ml-staging"]'`).
The registry client has its own settings (SEAWAY_REGISTRY_*); the MLflow
address the runtime pods use defaults to the registry's, so one variable
serves both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DeploymentMode = Literal["Standard", "Knative"]
"""KServe's deployment modes as KServe v0.20 spells them. KServe still accepts the
older names (RawDeployment, Serverless) but its webhook compares the annotation with
"Standard" verbatim when it validates autoscaling, so only the new names are written."""

_LEGACY_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

ObjectName = Annotated[str, StringConstraints(max_length=253)]
Namespace = Annotated[str, StringConstraints(pattern=_DNS_LABEL, max_length=63)]


class OperatorSettings(BaseSettings):
    """Every knob of the operator process."""

    model_config = SettingsConfigDict(
        env_prefix="SEAWAY_OPERATOR_",
        frozen=True,
        use_attribute_docstrings=True,
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    runtime_image: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """Image of the Seaway serving runtime that every predictor runs (serving_runtime/
    Dockerfile), e.g. `registry.example.com/seaway-runtime:0.1.0`. Required: the chart sets
    it to the runtime image of the same release. `spec.predictor.image` overrides it per
    InferenceModel."""

    image_pull_secrets: tuple[ObjectName, ...] = ()
    """Secrets (in each model's namespace) used to pull the runtime image from a private
    registry. Default: none."""

    default_deployment_mode: DeploymentMode = "Standard"
    """KServe deployment mode of the InferenceServices: `Standard` (a Deployment with
    HPA or KEDA autoscaling; KServe's former RawDeployment) or `Knative` (Knative
    Services, scale to zero; KServe's former Serverless). The legacy names are accepted
    and normalised. Written explicitly on every InferenceService because KServe's
    default differs between its kustomize and Helm installs. KServe refuses to change
    the mode of an existing InferenceService. Default Standard."""

    namespaces: tuple[Namespace, ...] = ()
    """Namespaces whose InferenceModels this operator serves. Empty: every namespace
    (the chart then binds a ClusterRole instead of one Role per namespace)."""

    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000",
        validation_alias=AliasChoices(
            "SEAWAY_OPERATOR_MLFLOW_TRACKING_URI",
            "SEAWAY_REGISTRY_TRACKING_URI",
            "MLFLOW_TRACKING_URI",
        ),
    )
    """MLflow server the runtime pods download pinned `models:/NAME/VERSION` URIs from,
    when a version's files are not in an object store KServe can fetch. Read from
    SEAWAY_OPERATOR_MLFLOW_TRACKING_URI, else the registry's SEAWAY_REGISTRY_TRACKING_URI,
    else MLFLOW_TRACKING_URI; set the first when the pods reach MLflow at another address
    than the operator does. Never holds credentials (see `mlflow_credentials_secret`)."""

    mlflow_credentials_secret: ObjectName | None = None
    """Name of a Secret, in each model's namespace, with the MLflow credentials the
    runtime pods use: key MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD (each optional). Referenced from the pod, never read by the
    operator, so the operator needs no access to Secrets. Unset: no credentials."""

    predictor_service_account: ObjectName | None = None
    """ServiceAccount of the predictor pods, e.g. one whose Secrets give KServe's storage
    initializer read access to the object store. Unset: the namespace's default account."""

    resync_interval_seconds: float = Field(300.0, ge=10, le=86400)
    """How often every InferenceModel is reconciled even when nothing announced a change:
    the bound on how long a drifted InferenceService stays drifted. Default 300 s."""

    registry_refresh_seconds: float = Field(3600.0, ge=10, le=86400)
    """How long a resolved model version is trusted without asking MLflow again. Alias
    moves are noticed by the registry watcher (polls and webhooks) regardless; this
    bounds how long a deleted pinned version or a changed artifact location goes
    unnoticed. Errors are never trusted: each retry asks again. Default 3600 s."""

    metrics_port: int = Field(8000, ge=1, le=65535)
    """Port of the operator's own Prometheus /metrics endpoint. Default 8000."""

    metrics_host: str = "0.0.0.0"
    """Address the /metrics, /healthz and /readyz server listens on. Default all
    interfaces, so that Prometheus and the kubelet's probes reach the pod."""

    workers: int = Field(8, ge=1, le=64)
    """Reconciles that run at once (each on its own thread; distinct InferenceModels
    only). A reconcile mostly waits on MLflow and the API server: 8 rendered 500 new
    models 20% faster than 4 (loadtests/README.md). Default 8."""

    retry_backoff_max_seconds: float = Field(60.0, ge=1, le=3600)
    """Cap of the exponential backoff (0.5 s doubling) after a failed reconcile, e.g.
    while MLflow is unreachable; recovery is noticed within this long. Default 60 s."""

    progress_deadline_seconds: float = Field(600.0, ge=10, le=86400)
    """How long a new version may take to become Ready after the operator applied it
    before it is marked `failed` on the MLflow version (and Ready says so). What was
    serving keeps serving. Default 600 s, as a Deployment's progressDeadlineSeconds."""

    leader_election: bool = True
    """Run only while holding the Lease `lease_name`, so that of several replicas
    exactly one acts and the others wait to take over. Default on."""

    lease_name: ObjectName = "seaway-operator"
    """Name of the coordination.k8s.io Lease used for leader election."""

    lease_namespace: Namespace | None = None
    """Namespace of that Lease. Default: the operator's own namespace (POD_NAMESPACE, or
    the ServiceAccount's namespace file), else `default`."""

    lease_duration_seconds: float = Field(15.0, ge=1, le=600)
    """How long a standby waits after the leader's last renewal before taking over."""

    renew_deadline_seconds: float = Field(10.0, ge=0.5, le=600)
    """The leader steps down (and the process exits) if it cannot renew within this long;
    must be shorter than `lease_duration_seconds`."""

    retry_period_seconds: float = Field(2.0, ge=0.1, le=60)
    """How often the leader renews and a standby retries."""

    identity: str | None = Field(
        None,
        validation_alias=AliasChoices("SEAWAY_OPERATOR_IDENTITY", "POD_NAME"),
    )
    """This replica's name in the Lease and in Events. Default: POD_NAME (the chart sets
    it from the downward API), else the host name and process id."""

    keda_prometheus_address: str | None = None
    """Prometheus that KEDA queries for the `concurrency` and `rps` metrics in Standard
    mode, e.g. `http://prometheus.monitoring:9090`; it must scrape the runtime pods (they
    carry prometheus.io/* annotations). Needs KEDA in the cluster. Unset: those metrics
    are refused in Standard mode, because KServe's HPA silently ignores them."""

    prometheus_namespace_label: Annotated[
        str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128)
    ] = "namespace"
    """Label in which that Prometheus's scrape configuration records the pod's namespace
    (`namespace` in kube-prometheus and in the usual relabelling). The KEDA query selects
    a model's series by this label and the runtime's `model` label."""

    gpu_toleration_key: ObjectName | None = None
    """Taint key of the GPU nodes, tolerated (operator Exists, effect NoSchedule) by every
    predictor that asks for GPUs. Default: the GPU's resource name (nvidia.com/gpu, the
    NVIDIA GPU operator's taint)."""

    gpu_node_selector: dict[str, str] = {}
    """Node labels added to the node selector of GPU predictors, e.g.
    {"nvidia.com/gpu.present": "true"}; `spec.predictor.nodeSelector` wins on a clash.
    Default: none."""

    @field_validator("default_deployment_mode", mode="before")
    @classmethod
    def _normalise_mode(cls, value: Any) -> Any:
        return _LEGACY_MODES.get(value, value) if isinstance(value, str) else value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _check_tracking_uri(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("the MLflow tracking URI must be an http(s) URL of an MLflow server")
        if "@" in urlsplit(value).netloc:
            raise ValueError(
                "the MLflow tracking URI holds credentials: put them in the Secret named by "
                "SEAWAY_OPERATOR_MLFLOW_CREDENTIALS_SECRET instead"
            )
        return value.rstrip("/")

    @field_validator("image_pull_secrets", "mlflow_credentials_secret", "predictor_service_account")
    @classmethod
    def _check_names(cls, value: Any) -> Any:
        for name in value if isinstance(value, tuple) else (value,):
            if name is not None and not _DNS_SUBDOMAIN.match(name):
                raise ValueError(f"{name!r} is not a Kubernetes object name")
        return value

    @field_validator("gpu_toleration_key")
    @classmethod
    def _check_taint_key(cls, value: str | None) -> str | None:
        if value is not None and not _LABEL_KEY.match(value):
            raise ValueError(f"{value!r} is not a taint key")
        return value

    @field_validator("gpu_node_selector")
    @classmethod
    def _check_selector(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(label) or len(label) > 63:
                raise ValueError(f"{key}={label} is not a node label")
        return value

    @field_validator("keda_prometheus_address")
    @classmethod
    def _check_prometheus(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the Prometheus address must be an http(s) URL")
        return value.rstrip("/") if value is not None else None

    @model_validator(mode="after")
    def _check_lease(self) -> OperatorSettings:
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be shorter than lease_duration_seconds")
        if self.retry_period_seconds >= self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must be shorter than renew_deadline_seconds")
        return self
